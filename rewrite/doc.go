// Package rewrite runs graph transformations. A Pass is a value with a name, a doc and a run
// function, kept in a registry; a Manager runs a pipeline of passes in an order whose rules are
// data (Requires), verifies the graph after every pass that changed it, wraps errors with the
// pass name, and can dump the graph after a named pass.
//
// The built-in passes of skipgraph (dead-code elimination here; stop-gradient insertion, class
// gather, backward, loss, optimizer, lowering and prefix/suffix split in the packages that own
// them) register themselves with Register.
package rewrite
