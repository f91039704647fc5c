package rewrite

import (
	"encoding/binary"
	"math"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/tensorio"
)

// UpcastFloat16 is the pass form of UpcastToFloat32. Its result (ResultOf) is the map of
// converted initializers to their original dtype.
var UpcastFloat16 = Register(&Pass{
	Name: "upcast-float16",
	Doc: `compute in float32: float16 and bfloat16 weights, constants, inputs, outputs and casts become float32

Training keeps float32 master weights; export writes the trained weights back in the source's
dtype. The pass leaves float32 and float64 alone.`,
	Run: func(c *Context) (bool, error) {
		changed := UpcastToFloat32(c.Model)
		c.SetResult(changed)
		return len(changed) > 0, nil
	},
})

// isHalf reports whether dt is a 16-bit float type.
func isHalf(dt graph.DType) bool { return dt == graph.Float16 || dt == graph.BFloat16 }

// UpcastToFloat32 rewrites a float16/bfloat16 model to compute in float32: initializers and
// Constant values are converted, Cast and ConstantOfShape targets follow, and graph inputs,
// outputs and recorded value types become float32. It returns the initializers it converted,
// with their original dtype.
func UpcastToFloat32(m *graph.Model) map[string]graph.DType {
	g := m.Graph
	orig := map[string]graph.DType{}
	for _, v := range g.Initializers {
		if isHalf(v.Const.DType) {
			orig[v.Name] = v.Const.DType
			v.Const = toFloat32(v.Const)
			v.Type.Elem = graph.Float
			v.Src = nil
		}
	}
	for _, n := range g.Nodes() {
		touched := false
		for i := range n.Attrs {
			a := &n.Attrs[i]
			switch {
			case a.Type == graph.AttrTensor && a.T != nil && isHalf(a.T.DType):
				a.T, touched = toFloat32(a.T), true
			case (n.OpType == "Cast" || n.OpType == "EyeLike" || n.OpType == "RandomNormalLike") && (a.Name == "to" || a.Name == "dtype") && isHalf(graph.DType(a.I)):
				a.I, touched = int64(graph.Float), true
			}
			if touched {
				a.Src = nil
			}
		}
		if touched {
			n.Src = nil
		}
		for _, o := range n.Outputs() {
			if o != nil && isHalf(o.Type.Elem) {
				o.Type.Elem, o.Src = graph.Float, nil
			}
		}
	}
	for _, list := range [][]*graph.Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			if isHalf(v.Type.Elem) {
				v.Type.Elem, v.Src = graph.Float, nil
			}
		}
	}
	return orig
}

// toFloat32 converts a 16-bit float tensor to float32.
func toFloat32(t *graph.Tensor) *graph.Tensor {
	raw, err := t.Bytes()
	if err != nil {
		// an unreadable tensor stays as it is; writing the model will report it
		return t
	}
	n := len(raw) / 2
	out := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		h := binary.LittleEndian.Uint16(raw[2*i:])
		var f float32
		if t.DType == graph.BFloat16 {
			f = tensorio.BFloat16ToFloat32(h)
		} else {
			f = tensorio.Float16ToFloat32(h)
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return graph.NewTensor(graph.Float, t.Dims, out)
}
