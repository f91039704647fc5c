// Package shapes is symbolic shape inference over the graph IR: each dimension is an
// expression over named sizes (a graph input's dim_params such as batch or sequence_length) and
// known integers, e.g. 12*batch or sequence_length+1; the values of small integer tensors are
// tracked the same way (partial data propagation), so a Reshape whose target is built by
// Shape -> Gather -> Concat gets a proved shape. Rules are per operator type, as in the
// gradient registry; other packages register rules for their own operators.
//
// An Inferer answers for one graph, lazily: Infer(v) infers v's producers first. Sizes nothing
// proves are fresh symbols named after the value ("?name:axis"), so that equal sizes stay
// provably equal downstream; Expr.Unknown reports them. Equality is exact except for one fact
// learnt from broadcasting: a slice min(s, c) of a fixed table combined with a size s is s in
// every run that does not fail (Inferer.Same).
package shapes
