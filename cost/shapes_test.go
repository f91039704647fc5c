package cost

import (
	"fmt"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// shaped is a value's concrete shape and, for small integer tensors, its contents.
type shaped struct {
	shape []int64
	ints  []int64 // nil when unknown or not an integer tensor
}

// matmulFLOPs evaluates the concrete shapes of every value of g for the given input shapes
// (and small integer inputs), then returns the FLOPs of its MatMul, Gemm and Conv nodes
// (2 per multiply-add). It is an independent count to check the package's formulas against.
func matmulFLOPs(g *graph.Graph, inputs map[string]shaped) (float64, map[string]float64, error) {
	vals := map[*graph.Value]shaped{}
	for _, v := range g.Values() {
		if v.Const != nil {
			s := shaped{shape: v.Const.Dims}
			if v.Const.DType == graph.Int64 && v.Const.NumElements() <= 64 {
				s.ints, _ = v.Const.Int64s()
			}
			vals[v] = s
		}
	}
	for _, v := range g.Inputs {
		if s, ok := inputs[v.Name]; ok {
			vals[v] = s
		}
	}
	var total float64
	perOp := map[string]float64{}
	for _, n := range g.Nodes() {
		in := make([]shaped, n.NumInputs())
		for i := range in {
			if v := n.Input(i); v != nil {
				s, ok := vals[v]
				if !ok {
					return 0, nil, fmt.Errorf("%s: input %s has no shape", n, v.Name)
				}
				in[i] = s
			}
		}
		outs, flops, err := evalShape(n, in)
		if err != nil {
			return 0, nil, fmt.Errorf("%s (%s): %w", n.Name, n.OpType, err)
		}
		total += flops
		perOp[n.OpType] += flops
		for i, s := range outs {
			if v := n.Output(i); v != nil {
				vals[v] = s
			}
		}
	}
	return total, perOp, nil
}

func prod(s []int64) int64 {
	p := int64(1)
	for _, d := range s {
		p *= d
	}
	return p
}

func axis(a, rank int64) int64 {
	if a < 0 {
		return a + rank
	}
	return a
}

func broadcast(shapes ...[]int64) ([]int64, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int64, r)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			switch {
			case d == out[off+i] || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("cannot broadcast %v", shapes)
			}
		}
	}
	return out, nil
}

// intsBinary applies f elementwise to two known integer tensors (scalar or same length).
func intsBinary(a, b []int64, f func(x, y int64) int64) []int64 {
	if a == nil || b == nil {
		return nil
	}
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range out {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		out[i] = f(x, y)
	}
	return out
}

func evalShape(n *graph.Node, in []shaped) ([]shaped, float64, error) {
	one := func(s shaped) ([]shaped, float64, error) { return []shaped{s}, 0, nil }
	same := func() ([]shaped, float64, error) { return one(shaped{shape: in[0].shape}) }
	switch n.OpType {
	case "Constant":
		a := n.Attr("value")
		if a == nil || a.T == nil {
			return nil, 0, fmt.Errorf("constant without a tensor value")
		}
		s := shaped{shape: a.T.Dims}
		if a.T.DType == graph.Int64 {
			s.ints, _ = a.T.Int64s()
		}
		return one(s)
	case "Identity", "Sqrt", "Sigmoid", "Softmax", "Exp", "Erf", "Tanh", "Neg", "Trilu", "Relu", "Not", "Abs", "Reciprocal":
		return one(in[0])
	case "Cast":
		return one(in[0])
	case "Shape":
		sh := in[0].shape
		start, end := n.AttrInt("start", 0), n.AttrInt("end", int64(len(sh)))
		start, end = axis(start, int64(len(sh))), axis(end, int64(len(sh)))
		v := slices.Clone(sh[start:end])
		return one(shaped{shape: []int64{int64(len(v))}, ints: v})
	case "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "And", "Or", "Max", "Min":
		out, err := broadcast(in[0].shape, in[1].shape)
		if err != nil {
			return nil, 0, err
		}
		s := shaped{shape: out}
		switch n.OpType {
		case "Add":
			s.ints = intsBinary(in[0].ints, in[1].ints, func(x, y int64) int64 { return x + y })
		case "Sub":
			s.ints = intsBinary(in[0].ints, in[1].ints, func(x, y int64) int64 { return x - y })
		case "Mul":
			s.ints = intsBinary(in[0].ints, in[1].ints, func(x, y int64) int64 { return x * y })
		case "Div":
			s.ints = intsBinary(in[0].ints, in[1].ints, func(x, y int64) int64 { return x / y })
		case "Equal":
			s.ints = intsBinary(in[0].ints, in[1].ints, func(x, y int64) int64 {
				if x == y {
					return 1
				}
				return 0
			})
		}
		return one(s)
	case "Where":
		out, err := broadcast(in[0].shape, in[1].shape, in[2].shape)
		if err != nil {
			return nil, 0, err
		}
		s := shaped{shape: out}
		if c, a, b := in[0].ints, in[1].ints, in[2].ints; c != nil && a != nil && b != nil && len(out) == 1 {
			for i := range out[0] {
				pick := func(v []int64) int64 { return v[min(int(i), len(v)-1)] }
				if pick(c) != 0 {
					s.ints = append(s.ints, pick(a))
				} else {
					s.ints = append(s.ints, pick(b))
				}
			}
		}
		return one(s)
	case "Unsqueeze", "Squeeze":
		axes, ok := n.AttrInts("axes")
		if !ok && len(in) > 1 {
			if axes = in[1].ints; axes == nil {
				return nil, 0, fmt.Errorf("axes unknown")
			}
		}
		sh := in[0].shape
		if n.OpType == "Unsqueeze" {
			r := int64(len(sh) + len(axes))
			out := make([]int64, 0, r)
			norm := make([]int64, len(axes))
			for i, a := range axes {
				norm[i] = axis(a, r)
			}
			j := 0
			for i := int64(0); i < r; i++ {
				if slices.Contains(norm, i) {
					out = append(out, 1)
				} else {
					out = append(out, sh[j])
					j++
				}
			}
			return one(shaped{shape: out, ints: in[0].ints})
		}
		var out []int64
		for i, d := range sh {
			drop := d == 1 && (len(axes) == 0 || slices.ContainsFunc(axes, func(a int64) bool { return axis(a, int64(len(sh))) == int64(i) }))
			if !drop {
				out = append(out, d)
			}
		}
		return one(shaped{shape: out, ints: in[0].ints})
	case "Concat":
		ax := axis(n.AttrInt("axis", 0), int64(len(in[0].shape)))
		out := slices.Clone(in[0].shape)
		var ints []int64
		known := true
		for i, s := range in {
			if i > 0 {
				out[ax] += s.shape[ax]
			}
			if s.ints == nil && prod(s.shape) > 0 {
				known = false
			}
			ints = append(ints, s.ints...)
		}
		s := shaped{shape: out}
		if known {
			s.ints = ints
		}
		return one(s)
	case "Reshape":
		target := in[1].ints
		if target == nil {
			return nil, 0, fmt.Errorf("reshape target unknown")
		}
		out := slices.Clone(target)
		neg := -1
		known := int64(1)
		for i, d := range out {
			switch d {
			case 0:
				out[i] = in[0].shape[i]
				known *= out[i]
			case -1:
				neg = i
			default:
				known *= d
			}
		}
		if neg >= 0 {
			out[neg] = prod(in[0].shape) / known
		}
		return one(shaped{shape: out, ints: in[0].ints})
	case "Expand":
		if in[1].ints == nil {
			return nil, 0, fmt.Errorf("expand shape unknown")
		}
		out, err := broadcast(in[0].shape, in[1].ints)
		if err != nil {
			return nil, 0, err
		}
		return one(shaped{shape: out})
	case "ConstantOfShape":
		if in[0].ints == nil {
			return nil, 0, fmt.Errorf("shape unknown")
		}
		s := shaped{shape: slices.Clone(in[0].ints)}
		if a := n.Attr("value"); a != nil && a.T != nil && a.T.DType == graph.Int64 && len(s.shape) == 1 {
			v, _ := a.T.Int64s()
			for range s.shape[0] {
				s.ints = append(s.ints, v[0])
			}
		}
		return one(s)
	case "Range":
		if in[0].ints == nil || in[1].ints == nil || in[2].ints == nil {
			return nil, 0, fmt.Errorf("range bounds unknown")
		}
		a, b, d := in[0].ints[0], in[1].ints[0], in[2].ints[0]
		var v []int64
		for x := a; (d > 0 && x < b) || (d < 0 && x > b); x += d {
			v = append(v, x)
		}
		return one(shaped{shape: []int64{int64(len(v))}, ints: v})
	case "Transpose":
		perm, ok := n.AttrInts("perm")
		sh := in[0].shape
		out := make([]int64, len(sh))
		for i := range out {
			if ok {
				out[i] = sh[perm[i]]
			} else {
				out[i] = sh[len(sh)-1-i]
			}
		}
		return one(shaped{shape: out})
	case "Gather":
		sh := in[0].shape
		ax := axis(n.AttrInt("axis", 0), int64(len(sh)))
		out := append(append(slices.Clone(sh[:ax]), in[1].shape...), sh[ax+1:]...)
		s := shaped{shape: out}
		if in[0].ints != nil && in[1].ints != nil && len(sh) == 1 {
			for _, i := range in[1].ints {
				s.ints = append(s.ints, in[0].ints[axis(i, sh[0])])
			}
		}
		return one(s)
	case "Split":
		sh := in[0].shape
		ax := axis(n.AttrInt("axis", 0), int64(len(sh)))
		var sizes []int64
		if len(in) > 1 && in[1].ints != nil {
			sizes = in[1].ints
		} else {
			k := int64(n.NumOutputs())
			for range n.NumOutputs() {
				sizes = append(sizes, sh[ax]/k)
			}
		}
		var outs []shaped
		for _, size := range sizes {
			o := slices.Clone(sh)
			o[ax] = size
			outs = append(outs, shaped{shape: o})
		}
		return outs, 0, nil
	case "Slice":
		sh := slices.Clone(in[0].shape)
		starts, ends := in[1].ints, in[2].ints
		var axes, steps []int64
		if len(in) > 3 && in[3].shape != nil {
			axes = in[3].ints
		}
		if len(in) > 4 && in[4].shape != nil {
			steps = in[4].ints
		}
		if starts == nil || ends == nil {
			return nil, 0, fmt.Errorf("slice bounds unknown")
		}
		var ints []int64
		for i := range starts {
			a := int64(i)
			if axes != nil {
				a = axis(axes[i], int64(len(sh)))
			}
			step := int64(1)
			if steps != nil {
				step = steps[i]
			}
			if step != 1 {
				return nil, 0, fmt.Errorf("slice step %d unsupported", step)
			}
			lo, hi := starts[i], ends[i]
			if lo < 0 {
				lo += sh[a]
			}
			if hi < 0 {
				hi += sh[a]
			}
			lo, hi = max(0, min(lo, sh[a])), max(0, min(hi, sh[a]))
			if in[0].ints != nil && len(sh) == 1 {
				ints = in[0].ints[lo:hi]
			}
			sh[a] = hi - lo
		}
		return one(shaped{shape: sh, ints: ints})
	case "ReduceMean", "ReduceL2", "ReduceMax", "ReduceSum":
		sh := in[0].shape
		axes, ok := n.AttrInts("axes")
		if !ok && len(in) > 1 {
			axes = in[1].ints
		}
		keep := n.AttrInt("keepdims", 1)
		var out []int64
		for i, d := range sh {
			red := len(axes) == 0 || slices.ContainsFunc(axes, func(a int64) bool { return axis(a, int64(len(sh))) == int64(i) })
			switch {
			case !red:
				out = append(out, d)
			case keep == 1:
				out = append(out, 1)
			}
		}
		return one(shaped{shape: out})
	case "ArgMax":
		sh := in[0].shape
		ax := axis(n.AttrInt("axis", 0), int64(len(sh)))
		out := slices.Clone(sh)
		if n.AttrInt("keepdims", 1) == 1 {
			out[ax] = 1
		} else {
			out = append(out[:ax], out[ax+1:]...)
		}
		return one(shaped{shape: out})
	case "Flatten":
		sh := in[0].shape
		ax := axis(n.AttrInt("axis", 1), int64(len(sh)))
		return one(shaped{shape: []int64{prod(sh[:ax]), prod(sh[ax:])}})
	case "LayerNormalization":
		return same()
	case "MatMul":
		a, b := in[0].shape, in[1].shape
		if len(a) < 2 || len(b) < 2 {
			return nil, 0, fmt.Errorf("matmul of rank < 2 unsupported")
		}
		batch, err := broadcast(a[:len(a)-2], b[:len(b)-2])
		if err != nil {
			return nil, 0, err
		}
		m, k, nn := a[len(a)-2], a[len(a)-1], b[len(b)-1]
		if b[len(b)-2] != k {
			return nil, 0, fmt.Errorf("matmul %v x %v", a, b)
		}
		out := append(batch, m, nn)
		return []shaped{{shape: out}}, 2 * float64(prod(batch)) * float64(m*k*nn), nil
	case "Gemm":
		a, b := in[0].shape, in[1].shape
		m, k := a[0], a[1]
		if n.AttrInt("transA", 0) == 1 {
			m, k = k, m
		}
		nn := b[1]
		if n.AttrInt("transB", 0) == 1 {
			nn = b[0]
		}
		return []shaped{{shape: []int64{m, nn}}}, 2 * float64(m*k*nn), nil
	case "Conv":
		x, w := in[0].shape, in[1].shape
		strides, _ := n.AttrInts("strides")
		pads, _ := n.AttrInts("pads")
		if len(x) != 4 || len(w) != 4 || n.AttrInt("group", 1) != 1 {
			return nil, 0, fmt.Errorf("only 2-D ungrouped Conv")
		}
		out := []int64{x[0], w[0], 0, 0}
		for i := 0; i < 2; i++ {
			s := int64(1)
			if len(strides) == 2 {
				s = strides[i]
			}
			p := int64(0)
			if len(pads) == 4 {
				p = pads[i] + pads[i+2]
			}
			out[2+i] = (x[2+i]+p-w[2+i])/s + 1
		}
		return []shaped{{shape: out}}, 2 * float64(prod(out)) * float64(prod(w[1:])), nil
	}
	return nil, 0, fmt.Errorf("no shape rule")
}
