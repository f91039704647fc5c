package rewrite

import (
	"fmt"

	"github.com/skipgraph/skipgraph/graph"
)

// Names of the graph inputs the class-gather pass adds.
const (
	// CSkipPrototypes is the [C,E] float input of normalised zero-shot text features.
	CSkipPrototypes = "cskip.prototypes"
	// CSkipK is the int64 [1] input holding K, the number of top classes kept.
	CSkipK = "cskip.k"
	// CSkipTail is the int64 [T] input of rank positions beyond K that are kept (may be empty).
	CSkipTail = "cskip.tail"
)

// ClassAxisValue is a value indexed by class and the axis that does it.
type ClassAxisValue struct {
	Value *graph.Value
	Axis  int64
}

// ClassGatherSpec says where the class-gather pass finds what it needs.
type ClassGatherSpec struct {
	// ImageFeatures are the current normalised image features [B,E].
	ImageFeatures *graph.Value
	// Labels are the int64 [B] class ids of the batch.
	Labels *graph.Value
	// Gathered are the values to gather on their class axis (cached text states, input_ids,
	// attention_mask, ...). Every use of each is redirected to the gathered value.
	Gathered []ClassAxisValue
}

// ClassGather adds CSkip's class selection to g, as ONNX ops:
//
//	sim    = ImageFeatures @ prototypesᵀ                        [B,C]
//	sim[b, labels[b]] = 1e4                                     ground truth forced in
//	score  = max over the batch of sim                          [C]
//	ranked = class ids by descending score                      [C]
//	kept   = ranked[concat(0..K-1, tail)] sorted ascending      [K+T]
//	x      = Gather(x, kept, axis) for every class-indexed x
//	labels = position of each label in kept                     [B]
//
// opset is the graph's default-domain opset (at least 13). It returns the remapped labels (the loss must use them) and the kept class ids.
func ClassGather(g *graph.Graph, opset int64, spec ClassGatherSpec) (labels, kept *graph.Value, err error) {
	if spec.ImageFeatures == nil || spec.Labels == nil || len(spec.Gathered) == 0 {
		return nil, nil, fmt.Errorf("class-gather needs image features, labels and class-indexed values")
	}
	protos, err := g.AddInput(CSkipPrototypes, graph.Type{Elem: graph.Float, Shape: []graph.Dim{graph.Sym("classes"), graph.Sym("embed")}, HasShape: true})
	if err != nil {
		return nil, nil, err
	}
	k, err := g.AddInput(CSkipK, graph.TensorType(graph.Int64, 1))
	if err != nil {
		return nil, nil, err
	}
	tail, err := g.AddInput(CSkipTail, graph.Type{Elem: graph.Int64, Shape: []graph.Dim{graph.Sym("tail")}, HasShape: true})
	if err != nil {
		return nil, nil, err
	}
	b := graph.NewBuilder(g, "cskip")
	op := func(name string, in ...*graph.Value) *graph.Value { return b.Op(name, in) }
	opA := func(name string, in []*graph.Value, attrs ...graph.Attr) *graph.Value {
		return b.Op(name, in, attrs...)
	}

	sim := op("MatMul", spec.ImageFeatures, opA("Transpose", []*graph.Value{protos}, graph.IntsAttr("perm", 1, 0)))
	lab2 := opA("Unsqueeze", []*graph.Value{spec.Labels, b.Int64s(1)})
	big := opA("Expand", []*graph.Value{b.Const(graph.ScalarFloat(graph.Float, 1e4)), op("Shape", lab2)})
	sim = opA("ScatterElements", []*graph.Value{sim, lab2, big}, graph.IntAttr("axis", 1))
	var score *graph.Value
	if opset >= 18 {
		score = opA("ReduceMax", []*graph.Value{sim, b.Int64s(0)}, graph.IntAttr("keepdims", 0))
	} else {
		score = opA("ReduceMax", []*graph.Value{sim}, graph.IntsAttr("axes", 0), graph.IntAttr("keepdims", 0))
	}
	nclass := op("Shape", score)
	ranked := b.OpN("TopK", "", []*graph.Value{score, nclass}, 2, graph.IntAttr("axis", 0), graph.IntAttr("largest", 1), graph.IntAttr("sorted", 1))[1]
	zero, one := b.Const(graph.FromInt64(nil, []int64{0})), b.Const(graph.FromInt64(nil, []int64{1}))
	kScalar := opA("Squeeze", []*graph.Value{k, b.Int64s(0)})
	top := op("Range", zero, kScalar, one)
	positions := opA("Concat", []*graph.Value{top, tail}, graph.IntAttr("axis", 0))
	ids := opA("Gather", []*graph.Value{ranked, positions}, graph.IntAttr("axis", 0))
	kept = b.OpN("TopK", "", []*graph.Value{ids, op("Shape", ids)}, 2, graph.IntAttr("axis", 0), graph.IntAttr("largest", 0), graph.IntAttr("sorted", 1))[0]

	for _, cv := range spec.Gathered {
		uses := cv.Value.Uses()
		gathered := opA("Gather", []*graph.Value{cv.Value, kept}, graph.IntAttr("axis", cv.Axis))
		for _, u := range uses {
			u.Node.SetInput(u.Index, gathered)
		}
	}
	match := opA("Cast", []*graph.Value{opA("Equal", []*graph.Value{lab2, opA("Unsqueeze", []*graph.Value{kept, b.Int64s(0)})})}, graph.IntAttr("to", int64(graph.Int32)))
	labels = opA("ArgMax", []*graph.Value{match}, graph.IntAttr("axis", 1), graph.IntAttr("keepdims", 0))
	return labels, kept, g.Sort()
}
