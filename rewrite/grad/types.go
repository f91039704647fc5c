package grad

import "github.com/skipgraph/skipgraph/graph"

// Types answers what element type a value carries, following the producers of values that
// record none (best effort: graph.Undefined when it cannot tell). Answers are memoised, so ask
// before changing the graph.
type Types struct{ f *infer }

// NewTypes returns an empty Types.
func NewTypes() *Types { return &Types{f: newInfer()} }

// DType returns v's element type.
func (t *Types) DType(v *graph.Value) graph.DType { return t.f.dtype(v) }
