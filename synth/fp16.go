package synth

import (
	"encoding/binary"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/tensorio"
)

// ToFloat16 turns a float32 export into a float16 one, as exporting a model after .half()
// does: weights, constants, graph inputs and outputs and Cast targets become float16. Integer
// inputs (token ids, masks) are unchanged.
func ToFloat16(m *graph.Model) {
	g := m.Graph
	for _, v := range g.Initializers {
		if v.Const.DType == graph.Float {
			v.Const = halfTensor(v.Const)
			v.Type.Elem, v.Src = graph.Float16, nil
		}
	}
	for _, n := range g.Nodes() {
		for i := range n.Attrs {
			a := &n.Attrs[i]
			switch {
			case a.Type == graph.AttrTensor && a.T != nil && a.T.DType == graph.Float:
				a.T, a.Src, n.Src = halfTensor(a.T), nil, nil
			case n.OpType == "Cast" && a.Name == "to" && a.I == int64(graph.Float):
				a.I, a.Src, n.Src = int64(graph.Float16), nil, nil
			}
		}
		for _, o := range n.Outputs() {
			if o != nil && o.Type.Elem == graph.Float {
				o.Type.Elem, o.Src = graph.Float16, nil
			}
		}
	}
	for _, list := range [][]*graph.Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			if v.Type.Elem == graph.Float {
				v.Type.Elem, v.Src = graph.Float16, nil
			}
		}
	}
}

// maxHalf is the largest finite float16.
const maxHalf = 65504

func halfTensor(t *graph.Tensor) *graph.Tensor {
	f, err := t.Float32s()
	if err != nil {
		return t
	}
	b := make([]byte, 2*len(f))
	for i, x := range f {
		// finite values beyond float16's range (the float32 minimum used for masks) become
		// float16's own extremes, as torch.finfo(torch.float16).min in a half-precision trace
		x = max(min(x, maxHalf), -maxHalf)
		binary.LittleEndian.PutUint16(b[2*i:], tensorio.Float32ToFloat16(x))
	}
	return graph.NewTensor(graph.Float16, t.Dims, b)
}
