package grad

import (
	"github.com/skipgraph/skipgraph/graph"
)

// SoftmaxCrossEntropy emits the mean softmax cross-entropy of logits [B, C] against integer class
// labels [B] and returns the scalar loss:
//
//	loss = -mean_b log_softmax(logits)[b, labels[b]]
//
// The nodes are valid for opset 13 and newer (Unsqueeze takes its axes as an input).
func SoftmaxCrossEntropy(b *graph.Builder, logits, labels *graph.Value) *graph.Value {
	logp := b.Op("LogSoftmax", []*graph.Value{logits}, graph.IntAttr("axis", 1))
	idx := b.Op("Unsqueeze", []*graph.Value{labels, b.Int64s(1)})
	picked := b.Op("GatherElements", []*graph.Value{logp, idx}, graph.IntAttr("axis", 1))
	mean := b.Op("ReduceMean", []*graph.Value{picked}, graph.IntAttr("keepdims", 0))
	return b.Op("Neg", []*graph.Value{mean})
}
