// Package graph is skipgraph's in-memory representation of an ONNX model: a Model holds one Graph
// of Nodes connected by Values, with Tensors for weights and constants.
//
// Every Value has at most one producer (a node output, a graph input or an initializer) and a list
// of uses; the mutation API keeps both sides consistent. Tensors are immutable: a pass that changes
// a weight makes a new Tensor, so a codec can tell untouched weights from new ones and copy the
// former without decoding them. Fields named Src hold a codec's original record of an element
// (opaque here) so that an unmodified model is written back exactly as it was read.
//
// The package knows nothing of protobuf; graph/onnxio converts between ONNX files and this IR.
package graph
