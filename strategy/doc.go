// Package strategy defines the one interface every skip strategy implements, built-in or plugin:
// a Strategy looks at a weightless Skeleton of the model and the discovered CLIP structure and
// returns a Plan (parameters to train or freeze, stop-gradient boundaries, host passes with
// arguments, a small patch of nodes). The host validates a plan against its full graph and
// applies it; no weights cross the boundary.
//
// Built-in strategies register with Register; plugins reach the same interface through the
// transport in the plugin package.
package strategy
