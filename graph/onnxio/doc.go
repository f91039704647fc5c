// Package onnxio reads and writes ONNX model files (ModelProto) as skipgraph's IR (package graph).
//
// # Reading
//
// Load memory-maps the file and walks the protobuf wire format at the top levels (model, graph,
// initializers), so raw_data payloads are never copied: every initializer becomes a lazy
// graph.Tensor whose Bytes returns a slice of the mapping. Initializers with external data
// (data_location EXTERNAL) are resolved against the model's folder and their files mapped the
// same way; a location that is absolute or leads out of the folder, through ".." or a symbolic
// link, is refused. Everything else (nodes, attributes, Constant tensors, value_info, metadata,
// functions, opset imports, unknown fields) is unmarshalled normally. Decode does the same for
// bytes already in memory, sharing them.
//
// After decoding, the graph is checked with graph.Verify. Bad input (an empty, truncated or
// foreign file, duplicate value names, a node input nothing produces, a cycle, an unknown tensor
// data type, bad external data) gives a one-line error for which errs.IsInput is true. Decoding
// never panics, whatever the bytes.
//
// # Lifetime of mappings
//
// The mappings of a loaded model (and the open files behind them) belong to a shared record
// referred to by every tensor read from the file, by Model.Src and by Graph.Src. They are
// unmapped and closed by a runtime cleanup once none of these is reachable any more, so there
// is nothing to close. Clones of the model share them. The slice returned by a loaded
// tensor's Bytes points into the mapping: keep the tensor (or the model) reachable while using
// it, with runtime.KeepAlive if need be; the slice is read-only memory, and writing to it
// crashes the program. The file must not be truncated or rewritten in place while it is mapped;
// replacing it by rename, as Save does, is safe.
//
// # Writing
//
// Save, Write and Encode write the IR back. Each element keeps, in its Src field, the record it
// was read from (payloads stripped); an element that has a record is written from it, with only
// what the IR changed overwritten (names, inputs, outputs, op type, domain, doc strings,
// attributes, types), and new elements are built from scratch. An unchanged initializer is
// copied byte for byte from the mapped file into the output stream, never decoded; a renamed one
// gets new metadata with its data spliced in at raw_data's place, where protobuf would write it.
// Message lengths are computed up front, so nothing large is buffered. An unmodified model read
// from a deterministically serialised file (as PyTorch and the onnx package write them) is
// written back byte for byte; any model is written back semantically identical.
//
// Save writes through a temporary file in the destination folder, synced and renamed, and can
// put large initializers into an external data file (4096-byte aligned offsets), which it does
// by itself for models over 2 GiB.
//
// Graph-valued attributes (If and Loop bodies), sparse tensors and type-proto attributes are not
// represented in the IR: they stay opaque in Attr.Src and are written back unchanged. Sparse
// initializers are refused.
package onnxio
