// Package grad builds the backward pass of an ONNX graph from standard ONNX operators only.
//
// Backward differentiates a scalar loss with respect to chosen parameter values (initializers or
// graph inputs) by reverse-mode accumulation over the nodes that lie on a path from a parameter
// to the loss. Each operator type has one small rule, registered next to its family
// (rules_elementwise.go, rules_matmul.go, rules_shape.go, rules_reduce.go, rules_nn.go); a rule
// reads like the math: it sees the forward inputs I(i), the forward outputs O(i) and the incoming
// gradients GO(i), and sets the input gradients with SetGI(i, ...), emitting ordinary ONNX nodes
// through a graph.Builder.
//
// Two kinds of "no gradient" are kept apart. A stop edge (RegisterNoGradient, or a rule that
// leaves an input alone, such as the indices of Gather) is a deliberate statement that no
// gradient flows there; a missing rule is an error naming the operator type and the node, raised
// only when a gradient actually has to flow through that node. Gradients only ever flow through
// floating-point values.
//
// StopGradient, in skipgraph's own domain ai.skipgraph, is a marker that the backward pass treats
// as a stop edge; LowerStopGradients turns every marker into an Identity before a graph is
// written, so no custom operator reaches ONNX Runtime.
package grad
