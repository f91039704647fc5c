package shapes

import (
	"testing"

	"github.com/skipgraph/skipgraph/graph"
)

// arg is a node input in a rule test: a graph input of a type, or a constant.
type arg struct {
	t graph.Type
	c *graph.Tensor
}

// in is a float32 graph input; dims are ints (sizes) or strings (dim_params).
func in(dims ...any) arg { return typed(graph.Float, dims...) }

func typed(elem graph.DType, dims ...any) arg {
	t := graph.Type{Elem: elem, HasShape: true, Shape: []graph.Dim{}}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			t.Shape = append(t.Shape, graph.Fixed(int64(d)))
		case string:
			t.Shape = append(t.Shape, graph.Sym(d))
		}
	}
	return arg{t: t}
}

func ints(v ...int64) arg { return arg{c: graph.FromInt64([]int64{int64(len(v))}, v)} }

func scalarInt(v int64) arg { return arg{c: graph.FromInt64(nil, []int64{v})} }

var none = arg{}

// build makes a graph holding one node of op over args and returns it.
func build(t *testing.T, op string, args []arg, nout int, attrs ...graph.Attr) *graph.Node {
	t.Helper()
	g := graph.New("t")
	var ins []*graph.Value
	for k, a := range args {
		var v *graph.Value
		var err error
		switch {
		case a.c != nil:
			v, err = g.AddInitializer(g.UniqueName("c"), a.c)
		case a.t.Elem != graph.Undefined:
			v, err = g.AddInput(g.UniqueName("x"+string(rune('0'+k))), a.t)
		}
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, v)
	}
	outs := make([]string, nout)
	for k := range outs {
		outs[k] = "y"
	}
	return g.NewNode(op, "", "n", ins, outs, attrs...)
}

func TestRules(t *testing.T) {
	I, Is := graph.IntAttr, graph.IntsAttr
	cases := []struct {
		op    string
		args  []arg
		attrs []graph.Attr
		want  []string // per output
	}{
		// elementwise broadcasting
		{"Add", []arg{in("b", "s", 768), in(768)}, nil, []string{"float32[b,s,768]"}},
		{"Mul", []arg{in("b", 1, "s"), in("b", "h", 1)}, nil, []string{"float32[b,h,s]"}},
		{"Sub", []arg{in(4), in("n")}, nil, []string{"float32[4]"}},
		{"Add", []arg{in("m"), in("n")}, nil, []string{"float32[max(m,n)]"}},
		{"Where", []arg{typed(graph.Bool, "b", 1), in(), in("b", 7)}, nil, []string{"float32[b,7]"}},
		{"Equal", []arg{in("b", 3), in(3)}, nil, []string{"bool[b,3]"}},
		{"Sum", []arg{in(2, 1), in(1, 5), in(5)}, nil, []string{"float32[2,5]"}},
		// products
		{"MatMul", []arg{in("b", "s", 768), in(768, 512)}, nil, []string{"float32[b,s,512]"}},
		{"MatMul", []arg{in("b", 1, "s", 64), in(12, 64, "s")}, nil, []string{"float32[b,12,s,s]"}},
		{"MatMul", []arg{in(64), in("b", 64, 3)}, nil, []string{"float32[b,3]"}},
		{"MatMul", []arg{in("b", 3, 64), in(64)}, nil, []string{"float32[b,3]"}},
		{"Gemm", []arg{in("b", 64), in(10, 64), in(10)}, []graph.Attr{I("transB", 1)}, []string{"float32[b,10]"}},
		{"Einsum", []arg{in("h", "s", "t"), in("h", "u", "t")}, []graph.Attr{graph.StringAttr("equation", "...mn,...kn->...mk")}, []string{"float32[h,s,u]"}},
		// shapes and data movement
		{"Reshape", []arg{in("b", "s", 768), ints(0, 0, 12, -1)}, nil, []string{"float32[b,s,12,64]"}},
		{"Reshape", []arg{in("b", 12, "s", 64), ints(-1, 64)}, nil, []string{"float32[12*b*s,64]"}},
		{"Flatten", []arg{in("b", 3, 4)}, nil, []string{"float32[b,12]"}},
		{"Flatten", []arg{in("b", "s", 4)}, []graph.Attr{I("axis", -1)}, []string{"float32[b*s,4]"}},
		{"Flatten", []arg{in("b", 3)}, []graph.Attr{I("axis", 0)}, []string{"float32[1,3*b]"}},
		{"Transpose", []arg{in("b", "s", 12, 64)}, []graph.Attr{Is("perm", 0, 2, 1, 3)}, []string{"float32[b,12,s,64]"}},
		{"Transpose", []arg{in("a", "b")}, nil, []string{"float32[b,a]"}},
		{"Concat", []arg{in("b", 1, 768), in("b", 196, 768)}, []graph.Attr{I("axis", 1)}, []string{"float32[b,197,768]"}},
		{"Concat", []arg{in("s", "b", 8), in("t", "b", 8)}, []graph.Attr{I("axis", 0)}, []string{"float32[s+t,b,8]"}},
		{"Split", []arg{in("b", 2304)}, []graph.Attr{I("axis", 1)}, []string{"float32[b,768]", "float32[b,768]", "float32[b,768]"}},
		{"Split", []arg{in("b", 10), ints(3, 7)}, []graph.Attr{I("axis", -1)}, []string{"float32[b,3]", "float32[b,7]"}},
		{"Slice", []arg{in("b", 197, 768), ints(0), ints(1), ints(1)}, nil, []string{"float32[b,1,768]"}},
		{"Slice", []arg{in("b", "s", 8), ints(1), ints(1 << 62), ints(1)}, nil, []string{"float32[b,-1+s,8]"}},
		{"Slice", []arg{in(1, 77), ints(0), arg{t: graph.TensorType(graph.Int64, 1)}, ints(1)}, nil, []string{"float32[1,?y:1]"}},
		{"Slice", []arg{in(10, 4), ints(1), ints(-1), ints(0), ints(2)}, nil, []string{"float32[4,4]"}},
		{"Gather", []arg{in("b", 197, 768), scalarInt(0)}, []graph.Attr{I("axis", 1)}, []string{"float32[b,768]"}},
		{"Gather", []arg{in(49408, 512), typed(graph.Int64, "b", 77)}, nil, []string{"float32[b,77,512]"}},
		{"GatherElements", []arg{in("b", 10), typed(graph.Int64, "b", 1)}, []graph.Attr{I("axis", 1)}, []string{"float32[b,1]"}},
		{"Squeeze", []arg{in("b", 1, 768), ints(1)}, nil, []string{"float32[b,768]"}},
		{"Squeeze", []arg{in("b", 1, 768)}, []graph.Attr{Is("axes", 1)}, []string{"float32[b,768]"}},
		{"Unsqueeze", []arg{in("b", "s"), ints(1, -1)}, nil, []string{"float32[b,1,s,1]"}},
		{"Unsqueeze", []arg{in("b", "s")}, []graph.Attr{Is("axes", 0)}, []string{"float32[1,b,s]"}},
		{"Expand", []arg{in(768), ints(4, 1, -1)}, nil, []string{"float32[4,1,768]"}},
		{"Expand", []arg{in("b", 1, 5), ints(1, 3, 1)}, nil, []string{"float32[b,3,5]"}},
		{"Tile", []arg{in("b", 2), ints(1, 3)}, nil, []string{"float32[b,6]"}},
		{"Pad", []arg{in("b", 5), ints(0, 1, 0, 2)}, nil, []string{"float32[b,8]"}},
		{"Shape", []arg{in("b", "s", 768)}, nil, []string{"int64[3] = {b,s,768}"}},
		{"Shape", []arg{in("b", "s", 768)}, []graph.Attr{I("start", 1), I("end", -1)}, []string{"int64[1] = {s}"}},
		{"Size", []arg{in("b", "s", 4)}, nil, []string{"int64[] = {4*b*s}"}},
		{"ConstantOfShape", []arg{ints(2, 3)}, nil, []string{"float32[2,3]"}},
		{"Range", []arg{scalarInt(0), scalarInt(5), scalarInt(2)}, nil, []string{"int64[3] = {0,2,4}"}},
		{"NonZero", []arg{in("b", 3)}, nil, []string{"int64[2,?y:1]"}},
		{"OneHot", []arg{typed(graph.Int64, "b"), ints(10), ints(0, 1)}, nil, []string{"int64[b,10]"}},
		// reductions and nn
		{"ReduceMean", []arg{in("b", "s", 768)}, []graph.Attr{Is("axes", -1)}, []string{"float32[b,s,1]"}},
		{"ReduceSum", []arg{in("b", "s", 768), ints(0, 1)}, []graph.Attr{I("keepdims", 0)}, []string{"float32[768]"}},
		{"ReduceSum", []arg{in("b", 3), none}, []graph.Attr{I("keepdims", 0)}, []string{"float32[]"}},
		{"ReduceMax", []arg{in("b", 3), ints()}, []graph.Attr{I("noop_with_empty_axes", 1)}, []string{"float32[b,3]"}},
		{"ArgMax", []arg{typed(graph.Int32, "b", "s")}, []graph.Attr{I("axis", -1), I("keepdims", 0)}, []string{"int64[b]"}},
		{"Softmax", []arg{in("b", 12, "s", "s")}, nil, []string{"float32[b,12,s,s]"}},
		{"LayerNormalization", []arg{in("b", "s", 768), in(768), in(768)}, []graph.Attr{I("axis", -1)},
			[]string{"float32[b,s,768]", "float32[b,s,1]", "float32[b,s,1]"}},
		{"TopK", []arg{in("b", 100), ints(5)}, nil, []string{"float32[b,5]", "int64[b,5]"}},
		{"TopK", []arg{in(100), typed(graph.Int64, 1)}, []graph.Attr{I("axis", 0)}, []string{"float32[?y:0]", "int64[?y:0]"}},
		{"ScatterElements", []arg{in("b", 10), typed(graph.Int64, "b", 1), in("b", 1)}, []graph.Attr{I("axis", 1)}, []string{"float32[b,10]"}},
		{"ScatterND", []arg{in(100, 8), typed(graph.Int64, "n", 1), in("n", 8)}, nil, []string{"float32[100,8]"}},
		{"Cast", []arg{typed(graph.Int64, "b", "s")}, []graph.Attr{I("to", int64(graph.Float))}, []string{"float32[b,s]"}},
		{"CastLike", []arg{typed(graph.Int64, "b"), in()}, nil, []string{"float32[b]"}},
		{"Dropout", []arg{in("b", 3)}, nil, []string{"float32[b,3]", "bool[b,3]"}},
		{"Conv", []arg{in("b", 3, 224, 224), in(768, 3, 16, 16)}, []graph.Attr{Is("strides", 16, 16)}, []string{"float32[b,768,14,14]"}},
		{"Conv", []arg{in("b", 3, "h", "h"), in(8, 3, 3, 3)}, []graph.Attr{Is("pads", 1, 1, 1, 1)}, []string{"float32[b,8,h,h]"}},
		{"Conv", []arg{in("b", 3, "h", 9), in(8, 3, 3, 3)}, []graph.Attr{Is("strides", 2, 2)}, []string{"float32[b,8,1+floordiv(-3+h,2),4]"}},
		{"ConvTranspose", []arg{in("b", 8, 4, 4), in(8, 3, 3, 3)}, []graph.Attr{Is("strides", 2, 2), Is("pads", 1, 1, 1, 1)}, []string{"float32[b,3,7,7]"}},
		{"Trilu", []arg{in("s", "s"), scalarInt(1)}, nil, []string{"float32[s,s]"}},
		{"UnknownOp", []arg{in("s")}, nil, []string{"float32"}},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			n := build(t, tc.op, tc.args, len(tc.want), tc.attrs...)
			f := New()
			for k, want := range tc.want {
				if got := f.Infer(n.Output(k)).String(); got != want {
					t.Errorf("%s output %d: got %s, want %s", tc.op, k, got, want)
				}
			}
		})
	}
}

// TestShapeChain follows the shape computations of a torch export: the target of a Reshape is
// Concat(Unsqueeze(Gather(Shape(x), 0)), -1, 12, 64), so the -1 is computed from x's size.
func TestShapeChain(t *testing.T) {
	g := graph.New("t")
	x, _ := g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{graph.Sym("b"), graph.Sym("s"), graph.Fixed(768)}})
	b := graph.NewBuilder(g, "p")
	zero, _ := g.AddInitializer("zero", graph.FromInt64(nil, []int64{0}))
	bsz := b.Op("Gather", []*graph.Value{b.Op("Shape", []*graph.Value{x}), zero})
	heads := b.Op("Mul", []*graph.Value{bsz, b.Const(graph.FromInt64(nil, []int64{12}))})
	target := b.Op("Concat", []*graph.Value{b.Op("Unsqueeze", []*graph.Value{heads, b.Int64s(0)}), b.Int64s(-1, 64)}, graph.IntAttr("axis", 0))
	y := b.Op("Reshape", []*graph.Value{x, target})
	// numpy's expand(-1) as torch exports it: Where(Equal(shape, -1), ones, shape)
	shp := b.Op("Concat", []*graph.Value{b.Op("Unsqueeze", []*graph.Value{bsz, b.Int64s(0)}), b.Int64s(1, -1)}, graph.IntAttr("axis", 0))
	isNeg := b.Op("Equal", []*graph.Value{shp, b.Int64s(-1)})
	fixed := b.Op("Where", []*graph.Value{isNeg, b.Op("ConstantOfShape", []*graph.Value{b.Int64s(3)}, graph.TensorAttr("value", graph.FromInt64([]int64{1}, []int64{1}))), shp})
	cls, _ := g.AddInitializer("cls", graph.FromFloat32([]int64{768}, make([]float32, 768)))
	e := b.Op("Expand", []*graph.Value{cls, fixed})
	f := New()
	for _, c := range []struct {
		v    *graph.Value
		want string
	}{
		{target, "int64[3] = {12*b,-1,64}"},
		{y, "float32[12*b,s,64]"},
		{fixed, "int64[3] = {b,1,1}"},
		{e, "float32[b,1,768]"},
	} {
		if got := f.Infer(c.v).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.v.Name, got, c.want)
		}
	}
}

// TestMinBroadcast: a slice min(s, 77) of a fixed table added to a value of size s is s in
// every run that does not fail, and inference proves it.
func TestMinBroadcast(t *testing.T) {
	g := graph.New("t")
	x, _ := g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{graph.Sym("b"), graph.Sym("s")}})
	tab, _ := g.AddInitializer("tab", graph.FromFloat32([]int64{1, 77}, make([]float32, 77)))
	b := graph.NewBuilder(g, "p")
	end := b.Op("Shape", []*graph.Value{x}, graph.IntAttr("start", 1))
	pos := b.Op("Slice", []*graph.Value{tab, b.Int64s(0), end, b.Int64s(1)})
	sum := b.Op("Add", []*graph.Value{x, pos})
	f := New()
	pi, si := f.Infer(pos), f.Infer(sum)
	if pi.String() != "float32[1,min(77,s)]" || si.String() != "float32[b,s]" {
		t.Fatalf("got %v and %v", pi, si)
	}
	if !f.Same(pi.Shape[1], si.Shape[1]) {
		t.Errorf("min(77,s) not proved equal to s after the broadcast")
	}
	if f.Same(pi.Shape[1], Sym("b")) {
		t.Errorf("min(77,s) proved equal to b")
	}
}

func TestExpr(t *testing.T) {
	b, s, k := Sym("b"), Sym("s"), Sym("k")
	cases := []struct {
		got  Expr
		want string
	}{
		{Add(Mul(Int(2), b), b), "3*b"},
		{Sub(Add(b, s), b), "s"},
		{Mul(Add(b, Int(1)), Add(b, Int(-1))), "-1+b*b"},
		{Product(b, Int(12), s), "12*b*s"},
		{Div(Mul(Int(24), Mul(b, s)), Mul(Int(12), b)), "2*s"},
		{Div(Mul(Add(k, s), Int(2)), Add(Mul(Int(2), k), Mul(Int(2), s))), "1"},
		{Div(Mul(Mul(Int(2), s), Add(k, b)), Add(b, k)), "2*s"},
		{Div(b, s), "floordiv(b,s)"},
		{Div(Int(7), Int(2)), "3"},
		{Min(s, Add(s, Int(1))), "s"},
		{Max(s, Add(s, Int(1))), "1+s"},
		{Min(Int(77), s), "min(77,s)"},
		{Min(s, Int(77)), "min(77,s)"},
	}
	for _, c := range cases {
		if c.got.String() != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	if _, ok := DivExact(Add(b, Int(1)), b); ok {
		t.Errorf("b+1 divided exactly by b")
	}
	if v, ok := Add(Mul(Int(3), b), Min(s, Int(8))).Eval(map[string]int64{"b": 2, "s": 5}); !ok || v != 11 {
		t.Errorf("Eval = %d, %v; want 11", v, ok)
	}
	if _, ok := b.Eval(map[string]int64{}); ok {
		t.Errorf("an unbound symbol evaluated")
	}
	if !unknown("v:0").Unknown() || Mul(b, Int(2)).Unknown() {
		t.Errorf("Unknown is wrong")
	}
}
