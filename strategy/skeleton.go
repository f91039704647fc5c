package strategy

import (
	"github.com/skipgraph/skipgraph/graph"
)

// InlineLimit is the largest constant, in elements, whose data a Skeleton carries.
const InlineLimit = 64

// Skeleton is a model without its weights: topology, names, types and shapes, initializer
// metadata, and the data of small constants only. It is what crosses a plugin boundary.
type Skeleton struct {
	// Opsets are the model's operator set imports.
	Opsets []graph.Opset `json:"opsets"`
	// Inputs and Outputs are the graph's interface.
	Inputs  []SkelValue `json:"inputs"`
	Outputs []SkelValue `json:"outputs"`
	// Initializers are the weights and constants, metadata only (Data for small ones).
	Initializers []SkelTensor `json:"initializers"`
	// Nodes are the graph's nodes in order.
	Nodes []SkelNode `json:"nodes"`
}

// SkelValue is a named value with its type rendered as in graph.Type.String.
type SkelValue struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// SkelTensor is an initializer's metadata; Data holds float64 or int64 values for small ones.
type SkelTensor struct {
	Name   string    `json:"name"`
	DType  string    `json:"dtype"`
	Dims   []int64   `json:"dims"`
	Floats []float64 `json:"floats,omitempty"`
	Ints   []int64   `json:"ints,omitempty"`
}

// SkelNode is a node; attributes are rendered as in graph dumps.
type SkelNode struct {
	Name    string            `json:"name,omitempty"`
	OpType  string            `json:"op"`
	Domain  string            `json:"domain,omitempty"`
	Inputs  []string          `json:"in"`
	Outputs []string          `json:"out"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// SkeletonOf builds the skeleton of m. Only initializers with at most InlineLimit elements have
// their data read.
func SkeletonOf(m *graph.Model) *Skeleton {
	g := m.Graph
	s := &Skeleton{Opsets: append([]graph.Opset(nil), m.Opsets...)}
	for _, v := range g.Inputs {
		if v.Const == nil {
			s.Inputs = append(s.Inputs, SkelValue{v.Name, v.Type.String()})
		}
	}
	for _, v := range g.Outputs {
		s.Outputs = append(s.Outputs, SkelValue{v.Name, v.Type.String()})
	}
	for _, v := range g.Initializers {
		t := v.Const
		st := SkelTensor{Name: v.Name, DType: t.DType.String(), Dims: append([]int64{}, t.Dims...)}
		if t.NumElements() <= InlineLimit {
			if t.DType.IsFloat() {
				st.Floats, _ = t.Float64s()
			} else {
				st.Ints, _ = t.Int64s()
			}
		}
		s.Initializers = append(s.Initializers, st)
	}
	for _, n := range g.Nodes() {
		sn := SkelNode{Name: n.Name, OpType: n.OpType, Domain: n.Domain}
		for _, in := range n.Inputs() {
			sn.Inputs = append(sn.Inputs, nameOf(in))
		}
		for _, o := range n.Outputs() {
			sn.Outputs = append(sn.Outputs, nameOf(o))
		}
		if len(n.Attrs) > 0 {
			sn.Attrs = map[string]string{}
			for _, a := range n.Attrs {
				sn.Attrs[a.Name] = attrString(a)
			}
		}
		s.Nodes = append(s.Nodes, sn)
	}
	return s
}

func nameOf(v *graph.Value) string {
	if v == nil {
		return ""
	}
	return v.Name
}

func attrString(a graph.Attr) string { return a.ValueString() }
