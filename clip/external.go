package clip

import (
	"slices"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
)

// External is a value that the layers from a boundary on (and the tower's suffix and the head)
// consume but that is computed before the boundary from the graph inputs, other than the
// residual stream itself: attention masks, end-of-text indices, shape values. A training graph
// that starts from cached boundary states needs these as extra inputs.
type External struct {
	// Name is the value's name and Type its type as recorded (empty when unknown).
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	// Kind is "mask" (added to attention scores), "eot_index" (end-of-text positions),
	// "shape" (computed from input shapes only: sizes, ranges, shape-built masks) or "other".
	Kind string `json:"kind"`
	// Inputs are the graph inputs it depends on.
	Inputs []string `json:"inputs"`
	// ShapeOnly is true when it depends on the inputs through their shapes only.
	ShapeOnly bool `json:"shape_only"`
	// ClassAxis is the axis indexing classes when the value depends on the text inputs' data
	// (0: masks [C,1,S,S] and indices [C] are batch-first), else -1.
	ClassAxis int `json:"class_axis"`
	// Consumers are the deep nodes using it.
	Consumers []string `json:"consumers"`

	value *graph.Value
}

// Value returns the graph value.
func (e *External) Value() *graph.Value { return e.value }

// ExternalInputs lists, for a boundary at layer omega of a tower (0 <= omega <= layers), the
// values that the nodes downstream of the boundary consume and that are produced before it and
// are not constants (parameters, buffers and anything computed from them only can be copied) nor
// the other tower's outputs. It reads the graph as discovered: call it before changing the graph.
func (s *Structure) ExternalInputs(tower TowerKind, omega int) ([]External, error) {
	t := s.Tower(tower)
	if t == nil {
		return nil, errs.Input("the model has no %s tower", tower)
	}
	if omega < 0 || omega > len(t.Layers) {
		return nil, errs.Input("boundary layer %d is out of range for the %s tower (0..%d)", omega, tower, len(t.Layers))
	}
	a := t.an
	b := t.Boundary(omega)
	deep := forward([]*graph.Value{b}, nil)
	var otherDeep map[*graph.Node]bool
	for _, o := range s.Towers() {
		if o != t && o.g == t.g && len(o.Layers) > 0 {
			otherDeep = forward([]*graph.Value{o.Boundary(0)}, nil)
		}
	}
	masks := map[*graph.Value]bool{}
	for _, l := range t.Layers {
		for _, m := range l.maskValues {
			masks[m] = true
		}
	}
	var out []External
	index := map[*graph.Value]int{}
	for _, n := range a.sorted(deep) {
		for _, v := range n.Inputs() {
			if v == nil || v == b || a.isConst(v) {
				continue
			}
			if p := producer(v); p != nil && (deep[p] || otherDeep[p]) {
				continue
			}
			if i, ok := index[v]; ok {
				if ref := NodeRef(n); !slices.Contains(out[i].Consumers, ref) {
					out[i].Consumers = append(out[i].Consumers, ref)
				}
				continue
			}
			e := External{Name: v.Name, Inputs: a.inputsOf(v), ClassAxis: -1,
				Consumers: []string{NodeRef(n)}, value: v}
			if v.Type.Elem != graph.Undefined {
				e.Type = v.Type.String()
			}
			anc := indexAncestors(v, 1<<20)
			dataIns := map[*graph.Value]bool{}
			argmax := false
			for m := range anc {
				if m.OpType == "ArgMax" {
					argmax = true
				}
				if m.OpType == "Shape" || m.OpType == "Size" {
					continue
				}
				for _, in := range m.Inputs() {
					if in != nil && in.IsGraphInput() && in.Const == nil {
						dataIns[in] = true
					}
				}
			}
			if v.IsGraphInput() {
				dataIns[v] = true
			}
			e.ShapeOnly = len(dataIns) == 0
			switch {
			case masks[v]:
				e.Kind = "mask"
			case argmax:
				e.Kind = "eot_index"
			case e.ShapeOnly:
				e.Kind = "shape"
			default:
				e.Kind = "other"
			}
			if !e.ShapeOnly && t.Kind == Text {
				e.ClassAxis = 0
			}
			index[v] = len(out)
			out = append(out, e)
		}
	}
	return out, nil
}
