// Package rewrite runs graph transformations. A Pass is a value, in the manner of go/analysis's
// Analyzer: a name, a doc, the passes it requires, and a run function that may leave a typed
// result for later passes (Context.SetResult, ResultOf) and reads the pipeline's input with
// EnvOf. A Manager runs a pipeline of passes: it checks that every required pass runs earlier,
// verifies the graph after every pass that changed it, wraps errors with the pass name, and can
// dump the graph after a named pass.
//
// This package holds the passes every pipeline shares (upcast-float16, lower-stop-gradient, dce,
// sort) and the graph surgery the others are made of (Cut, KeepOutputs, ClassGather,
// AppendOptimizer). The bundle's passes and their order, one table, are in package bundle
// (bundle.Pipelines); every pass registers itself (Register) so that Passes lists them all.
package rewrite
