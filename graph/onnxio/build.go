package onnxio

import (
	"fmt"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

// valueSrc is the codec's record of a value, kept in graph.Value.Src: the ValueInfoProtos that
// described it as a graph input, a graph output and in value_info, and the doc string the
// decoder gave the value (so a change of Value.Doc can be told apart).
type valueSrc struct {
	input, output, info *onnxpb.ValueInfoProto
	doc                 string
}

// graphSrc is the codec's record of a graph, kept in graph.Graph.Src: the GraphProto with its
// nodes, initializers and value lists removed (name, doc, annotations and unknown fields stay),
// value_info entries that name no value of the graph, and the resources.
type graphSrc struct {
	proto    *onnxpb.GraphProto
	extraVIs []*onnxpb.ValueInfoProto
	res      *resources
}

// attrSrc is the codec's record of an attribute, kept in graph.Attr.Src.
type attrSrc struct {
	proto   *onnxpb.AttributeProto
	t       *graph.Tensor
	tensors []*graph.Tensor
}

// typeFromProto converts a TypeProto into the IR's type; only tensor types are represented, other
// kinds give the zero Type (their record is kept in the value's Src).
func typeFromProto(tp *onnxpb.TypeProto) graph.Type {
	tt := tp.GetTensorType()
	if tt == nil {
		return graph.Type{}
	}
	t := graph.Type{Elem: graph.DType(tt.GetElemType())}
	if tt.Shape != nil {
		t.HasShape = true
		t.Shape = make([]graph.Dim, len(tt.Shape.Dim))
		for i, d := range tt.Shape.Dim {
			switch v := d.Value.(type) {
			case *onnxpb.TensorShapeProto_Dimension_DimValue:
				t.Shape[i] = graph.Dim{Value: v.DimValue}
			case *onnxpb.TensorShapeProto_Dimension_DimParam:
				t.Shape[i] = graph.Dim{Value: -1, Param: v.DimParam}
			default:
				t.Shape[i] = graph.UnknownDim()
			}
		}
	}
	return t
}

// tensorFromInit decodes one initializer record.
func (d *decoder) tensorFromInit(r initRecord) (*graph.Tensor, *tensorSrc, error) {
	tp := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(r.meta, tp); err != nil {
		return nil, nil, d.inputErr("an initializer is corrupt (%v); export or copy the model again", err)
	}
	name := tp.GetName()
	if name == "" {
		return nil, nil, d.inputErr("an initializer has no name; fix or re-export the model")
	}
	data, external, err := d.payload(tp, r.raw, r.hasRaw)
	if err != nil {
		return nil, nil, err
	}
	t, src, err := tensorFrom(tp, data, r.hasRaw && !external, external)
	if err != nil {
		return nil, nil, d.inputErr("initializer %q: %v; fix or re-export the model", name, err)
	}
	src.res = d.res
	src.mapped = d.m
	if external {
		t.Location = externalKey(tp, "location")
		src.mapped = d.res.ext[cleanLoc(t.Location)]
	} else {
		src.orig = r.orig
	}
	return t, src, nil
}

// payload returns a tensor's data: raw_data, or its external bytes when it has external data.
func (d *decoder) payload(tp *onnxpb.TensorProto, raw []byte, hasRaw bool) ([]byte, bool, error) {
	if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
		return raw, false, nil
	}
	b, err := d.external(tp)
	return b, true, err
}

// tensorFromAttr decodes a tensor held in an attribute (e.g. a Constant node's value).
func (d *decoder) tensorFromAttr(tp *onnxpb.TensorProto, where string) (*graph.Tensor, error) {
	if tp == nil {
		return nil, d.inputErr("%s: the tensor attribute has no tensor; fix or re-export the model", where)
	}
	data, external, err := d.payload(tp, tp.RawData, tp.RawData != nil)
	if err != nil {
		return nil, err
	}
	t, src, err := tensorFrom(tp, data, tp.RawData != nil && !external, external)
	if err != nil {
		return nil, d.inputErr("%s: %v; fix or re-export the model", where, err)
	}
	src.res = d.res
	if external {
		t.Location = externalKey(tp, "location")
		src.mapped = d.res.ext[cleanLoc(t.Location)]
	}
	return t, nil
}

// attrFromProto converts an attribute; graph-valued and other rare kinds stay in Src only.
func (d *decoder) attrFromProto(ap *onnxpb.AttributeProto, node string) (graph.Attr, error) {
	a := graph.Attr{
		Name: ap.GetName(), Type: graph.AttrType(ap.GetType()), F: ap.GetF(), I: ap.GetI(), S: ap.S,
		Floats: ap.Floats, Ints: ap.Ints, Strings: ap.Strings, RefAttrName: ap.GetRefAttrName(), Doc: ap.GetDocString(),
	}
	src := &attrSrc{proto: ap}
	a.Src = src
	where := fmt.Sprintf("node %s, attribute %q", node, a.Name)
	if ap.T != nil {
		t, err := d.tensorFromAttr(ap.T, where)
		if err != nil {
			return a, err
		}
		a.T, src.t = t, t
	}
	for _, tp := range ap.Tensors {
		t, err := d.tensorFromAttr(tp, where)
		if err != nil {
			return a, err
		}
		a.Tensors = append(a.Tensors, t)
	}
	src.tensors = slices.Clone(a.Tensors)
	return a, nil
}

// buildGraph makes the IR graph from the decoded GraphProto and the initializer records.
func (d *decoder) buildGraph(gp *onnxpb.GraphProto, inits []initRecord) (*graph.Graph, error) {
	if len(gp.SparseInitializer) > 0 {
		return nil, d.inputErr("the graph has sparse initializers (%q ...), which are not supported; convert them to dense initializers", gp.SparseInitializer[0].GetValues().GetName())
	}
	g := graph.New(gp.GetName())
	g.Doc = gp.GetDocString()
	srcs := map[*graph.Value]*valueSrc{}
	vsrc := func(v *graph.Value) *valueSrc {
		s := srcs[v]
		if s == nil {
			s = &valueSrc{}
			srcs[v] = s
		}
		return s
	}
	for _, r := range inits {
		t, ts, err := d.tensorFromInit(r)
		if err != nil {
			return nil, err
		}
		name := ts.meta.GetName()
		v, err := g.AddInitializer(name, t)
		if err != nil {
			return nil, d.inputErr("initializer %q is defined twice; fix or re-export the model", name)
		}
		v.Doc = ts.meta.GetDocString()
		vsrc(v)
	}
	for _, vi := range gp.Input {
		name := vi.GetName()
		if name == "" {
			return nil, d.inputErr("a graph input has no name; fix or re-export the model")
		}
		if v := g.Value(name); v != nil {
			if v.Const == nil || v.IsGraphInput() {
				return nil, d.inputErr("graph input %q is listed twice; fix or re-export the model", name)
			}
			if vi.Type != nil {
				v.Type = typeFromProto(vi.Type)
			}
			g.Inputs = append(g.Inputs, v)
			vsrc(v).input = vi
			if vi.GetDocString() != "" {
				v.Doc = vi.GetDocString()
			}
			continue
		}
		v, err := g.AddInput(name, typeFromProto(vi.Type))
		if err != nil {
			return nil, d.inputErr("graph input %q: %v; fix or re-export the model", name, err)
		}
		v.Doc = vi.GetDocString()
		vsrc(v).input = vi
	}
	// Node outputs first, so that a node may name a value produced later in the file (an
	// unsorted or cyclic graph is then reported by Verify).
	outs := make([][]*graph.Value, len(gp.Node))
	for i, np := range gp.Node {
		for _, name := range np.Output {
			if name == "" {
				outs[i] = append(outs[i], nil)
				continue
			}
			if g.Value(name) != nil {
				return nil, d.inputErr("value %q is defined twice (again as an output of node %q, %s); fix or re-export the model", name, np.GetName(), np.GetOpType())
			}
			v := &graph.Value{Name: name}
			if err := g.AttachValue(v); err != nil {
				return nil, d.inputErr("value %q: %v; fix or re-export the model", name, err)
			}
			outs[i] = append(outs[i], v)
		}
	}
	for i, np := range gp.Node {
		n := &graph.Node{Name: np.GetName(), OpType: np.GetOpType(), Domain: np.GetDomain(), Doc: np.GetDocString(), Src: np}
		if n.OpType == "" {
			return nil, d.inputErr("node %q has no operator type; fix or re-export the model", n.Name)
		}
		label := n.String()
		if n.Name == "" && len(np.Output) > 0 {
			label = fmt.Sprintf("%s -> %s", n.OpType, np.Output[0])
		}
		for _, ap := range np.Attribute {
			a, err := d.attrFromProto(ap, label)
			if err != nil {
				return nil, err
			}
			n.Attrs = append(n.Attrs, a)
		}
		ins := make([]*graph.Value, len(np.Input))
		for j, name := range np.Input {
			if name == "" {
				continue
			}
			ins[j] = g.Value(name)
			if ins[j] == nil {
				return nil, d.inputErr("node %s: input %q is not produced by any node, graph input or initializer; fix or re-export the model", label, name)
			}
		}
		if err := g.AddNodeWithOutputs(n, ins, outs[i]); err != nil {
			return nil, d.inputErr("%v; fix or re-export the model", err)
		}
	}
	for _, vi := range gp.Output {
		name := vi.GetName()
		v := g.Value(name)
		if v == nil {
			return nil, d.inputErr("graph output %q is not produced by any node, graph input or initializer; fix or re-export the model", name)
		}
		if vi.Type != nil && v.Type.Elem == graph.Undefined && !v.Type.HasShape {
			v.Type = typeFromProto(vi.Type)
		}
		if s := vsrc(v); s.output == nil {
			s.output = vi
		}
		if v.Doc == "" {
			v.Doc = vi.GetDocString()
		}
		g.AddOutput(v)
	}
	gs := &graphSrc{res: d.res}
	seen := map[*graph.Value]bool{}
	for _, vi := range gp.ValueInfo {
		v := g.Value(vi.GetName())
		if v == nil || seen[v] {
			gs.extraVIs = append(gs.extraVIs, vi)
			continue
		}
		seen[v] = true
		if vi.Type != nil && v.Type.Elem == graph.Undefined && !v.Type.HasShape {
			v.Type = typeFromProto(vi.Type)
		}
		vsrc(v).info = vi
		if v.Doc == "" {
			v.Doc = vi.GetDocString()
		}
		g.ValueInfo = append(g.ValueInfo, v)
	}
	for v, s := range srcs {
		s.doc = v.Doc
		v.Src = s
	}
	gp.Node, gp.Initializer, gp.Input, gp.Output, gp.ValueInfo = nil, nil, nil, nil, nil
	gs.proto = gp
	g.Src = gs
	return g, nil
}
