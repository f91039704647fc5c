package onnxio

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxModelSize is the largest model file a protobuf parser accepts (2 GiB - 1 bytes). Save puts
// weights into an external data file when a model would be larger; Write and Encode refuse.
const MaxModelSize = math.MaxInt32

// DefaultIRVersion is written for a model built from scratch whose IRVersion is 0.
const DefaultIRVersion = 8

// externalAlign is the alignment of tensor offsets in external data files.
const externalAlign = 4096

// chunk is a piece of output: bytes to write, and the mapping they lie in when they come
// straight from a model or data file (so their pages can be dropped once written).
type chunk struct {
	b []byte
	m *mapping
	// res keeps the mapping alive until the chunk is written: b alone does not, since the
	// garbage collector does not see pointers into mapped memory.
	res *resources
}

// plan is a model laid out for writing: the model file's chunks and, when weights go to an
// external file, that file's chunks. Sizes are known before anything is written.
type plan struct {
	chunks  []chunk
	size    int64
	ext     []chunk
	extSize int64
}

// encoder turns the IR into a plan.
type encoder struct {
	m         *graph.Model
	external  bool
	threshold int64
	extLoc    string
	ext       []chunk
	extSize   int64
}

var (
	graphDesc  = (&onnxpb.GraphProto{}).ProtoReflect().Descriptor()
	modelDesc  = (&onnxpb.ModelProto{}).ProtoReflect().Descriptor()
	tensorDesc = (&onnxpb.TensorProto{}).ProtoReflect().Descriptor()
	zeros      = make([]byte, externalAlign)
)

// splitAt returns where a field numbered num goes in b, a message as the protobuf library
// writes it (known fields by number, then unknown fields): before the first known field with a
// larger number or the first unknown field.
func splitAt(b []byte, md protoreflect.MessageDescriptor, num protowire.Number) int {
	off := 0
	for off < len(b) {
		n, typ, l := protowire.ConsumeTag(b[off:])
		if l < 0 || n > num || md.Fields().ByNumber(n) == nil {
			return off
		}
		v := protowire.ConsumeFieldValue(n, typ, b[off+l:])
		if v < 0 {
			return off
		}
		off += l + v
	}
	return off
}

// header returns the tag and length prefix of a length-delimited field.
func header(num protowire.Number, size int64) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}

// strField returns the pointer to write for a string field whose original record had orig and
// whose IR value is now: the original pointer when unchanged (so presence is kept), nil for an
// absent empty field, a new pointer otherwise.
func strField(orig *string, now string) *string {
	if orig != nil && *orig == now {
		return orig
	}
	if orig == nil && now == "" {
		return nil
	}
	return &now
}

// strNew returns a pointer to s, or nil when s is empty.
func strNew(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newPlan lays out the model. With external set, initializers of threshold bytes or more go to
// an external file named extLoc.
func newPlan(m *graph.Model, external bool, threshold int64, extLoc string) (*plan, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("the model has no graph")
	}
	e := &encoder{m: m, external: external, threshold: threshold, extLoc: extLoc}
	g := m.Graph
	gp, err := e.graphProto(g)
	if err != nil {
		return nil, err
	}
	gb, err := proto.Marshal(gp)
	if err != nil {
		return nil, fmt.Errorf("encoding graph %q: %w", g.Name, err)
	}
	gs := splitAt(gb, graphDesc, graphInitField)
	gchunks := []chunk{{b: gb[:gs]}}
	gsize := int64(len(gb))
	for _, v := range g.Initializers {
		if v.Const == nil {
			return nil, fmt.Errorf("initializer %q has no tensor", v.Name)
		}
		cs, size, err := e.initializer(v)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", v.Name, err)
		}
		h := header(graphInitField, size)
		gchunks = append(gchunks, chunk{b: h})
		gchunks = append(gchunks, cs...)
		gsize += int64(len(h)) + size
	}
	gchunks = append(gchunks, chunk{b: gb[gs:]})

	mp, err := e.modelProto()
	if err != nil {
		return nil, err
	}
	mb, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("encoding the model: %w", err)
	}
	ms := splitAt(mb, modelDesc, modelGraphField)
	h := header(modelGraphField, gsize)
	p := &plan{ext: e.ext, extSize: e.extSize}
	p.chunks = append(p.chunks, chunk{b: mb[:ms]}, chunk{b: h})
	p.chunks = append(p.chunks, gchunks...)
	p.chunks = append(p.chunks, chunk{b: mb[ms:]})
	p.size = int64(len(mb)) + int64(len(h)) + gsize
	return p, nil
}

// modelProto builds the ModelProto without its graph.
func (e *encoder) modelProto() (*onnxpb.ModelProto, error) {
	m := e.m
	var mp *onnxpb.ModelProto
	if ms, ok := m.Src.(*modelSrc); ok && ms.proto != nil {
		mp = proto.Clone(ms.proto).(*onnxpb.ModelProto)
	} else {
		mp = &onnxpb.ModelProto{}
	}
	mp.Graph = nil
	ir := m.IRVersion
	if ir == 0 && mp.IrVersion == nil {
		ir = DefaultIRVersion
	}
	if mp.IrVersion == nil || *mp.IrVersion != ir {
		mp.IrVersion = proto.Int64(ir)
	}
	same := len(mp.OpsetImport) == len(m.Opsets)
	for i := 0; same && i < len(m.Opsets); i++ {
		same = mp.OpsetImport[i].GetDomain() == m.Opsets[i].Domain && mp.OpsetImport[i].GetVersion() == m.Opsets[i].Version
	}
	if !same {
		old := mp.OpsetImport
		used := make([]bool, len(old))
		mp.OpsetImport = nil
		for _, o := range m.Opsets {
			var rec *onnxpb.OperatorSetIdProto
			for i, r := range old {
				if !used[i] && r.GetDomain() == o.Domain {
					used[i] = true
					rec = proto.Clone(r).(*onnxpb.OperatorSetIdProto)
					break
				}
			}
			if rec == nil {
				rec = &onnxpb.OperatorSetIdProto{Domain: proto.String(o.Domain)}
			}
			rec.Version = proto.Int64(o.Version)
			mp.OpsetImport = append(mp.OpsetImport, rec)
		}
	}
	return mp, nil
}

// graphProto builds the GraphProto without its initializers.
func (e *encoder) graphProto(g *graph.Graph) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{}
	gs, _ := g.Src.(*graphSrc)
	if gs != nil && gs.proto != nil {
		gp.Name = strField(gs.proto.Name, g.Name)
		gp.DocString = strField(gs.proto.DocString, g.Doc)
		gp.QuantizationAnnotation = gs.proto.QuantizationAnnotation
		gp.ProtoReflect().SetUnknown(gs.proto.ProtoReflect().GetUnknown())
	} else {
		gp.Name = strNew(g.Name)
		gp.DocString = strNew(g.Doc)
	}
	for _, n := range g.Nodes() {
		np, err := e.nodeProto(n)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	for _, v := range g.Inputs {
		gp.Input = append(gp.Input, valueInfo(v, roleInput))
	}
	for _, v := range g.Outputs {
		gp.Output = append(gp.Output, valueInfo(v, roleOutput))
	}
	for _, v := range g.ValueInfo {
		gp.ValueInfo = append(gp.ValueInfo, valueInfo(v, roleInfo))
	}
	if gs != nil {
		gp.ValueInfo = append(gp.ValueInfo, gs.extraVIs...)
	}
	return gp, nil
}

// Roles of a ValueInfoProto.
const (
	roleInput = iota
	roleOutput
	roleInfo
)

// typeProto converts an IR type; the zero Type gives nil (no type recorded).
func typeProto(t graph.Type) *onnxpb.TypeProto {
	if t.Elem == graph.Undefined && !t.HasShape {
		return nil
	}
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(t.Elem))}
	if t.HasShape {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, 0, len(t.Shape))}
		for _, d := range t.Shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.Param != "":
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			case d.Value >= 0:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
}

// valueInfo builds the ValueInfoProto of v in a role, from its original record when it has one.
func valueInfo(v *graph.Value, role int) *onnxpb.ValueInfoProto {
	vs, _ := v.Src.(*valueSrc)
	var rec *onnxpb.ValueInfoProto
	if vs != nil {
		switch role {
		case roleInput:
			rec = vs.input
		case roleOutput:
			rec = vs.output
		default:
			rec = vs.info
		}
	}
	if rec == nil {
		return &onnxpb.ValueInfoProto{Name: proto.String(v.Name), Type: typeProto(v.Type), DocString: strNew(v.Doc)}
	}
	vi := &onnxpb.ValueInfoProto{Name: strField(rec.Name, v.Name)}
	if typeFromProto(rec.Type).Equal(v.Type) {
		vi.Type = rec.Type
	} else {
		vi.Type = typeProto(v.Type)
	}
	if v.Doc == vs.doc {
		vi.DocString = rec.DocString
	} else {
		vi.DocString = strNew(v.Doc)
	}
	vi.ProtoReflect().SetUnknown(rec.ProtoReflect().GetUnknown())
	return vi
}

// nodeProto builds a NodeProto, from the node's original record when it has one.
func (e *encoder) nodeProto(n *graph.Node) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{Input: make([]string, n.NumInputs()), Output: make([]string, n.NumOutputs())}
	for i, v := range n.Inputs() {
		if v != nil {
			np.Input[i] = v.Name
		}
	}
	for i, v := range n.Outputs() {
		if v != nil {
			np.Output[i] = v.Name
		}
	}
	if rec, ok := n.Src.(*onnxpb.NodeProto); ok && rec != nil {
		np.Name = strField(rec.Name, n.Name)
		np.OpType = strField(rec.OpType, n.OpType)
		np.Domain = strField(rec.Domain, n.Domain)
		np.DocString = strField(rec.DocString, n.Doc)
		np.ProtoReflect().SetUnknown(rec.ProtoReflect().GetUnknown())
	} else {
		np.Name = strNew(n.Name)
		np.OpType = proto.String(n.OpType)
		np.Domain = strNew(n.Domain)
		np.DocString = strNew(n.Doc)
	}
	for i := range n.Attrs {
		ap, err := attrProto(&n.Attrs[i])
		if err != nil {
			return nil, fmt.Errorf("node %s: attribute %q: %w", n, n.Attrs[i].Name, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

// floatsEqual compares float lists bit for bit.
func floatsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// sameTensor reports whether an attribute's tensor is still the one read from the file, and
// can be written back as it was (data stored in the model file).
func sameTensor(now, was *graph.Tensor) bool {
	if now != was {
		return false
	}
	if now == nil {
		return true
	}
	s := srcOf(now)
	return s != nil && !s.external
}

// attrUnchanged reports whether a is exactly the attribute its record describes.
func attrUnchanged(a *graph.Attr, s *attrSrc) bool {
	p := s.proto
	if p == nil || a.Name != p.GetName() || a.Type != graph.AttrType(p.GetType()) || a.Doc != p.GetDocString() ||
		a.RefAttrName != p.GetRefAttrName() || math.Float32bits(a.F) != math.Float32bits(p.GetF()) || a.I != p.GetI() ||
		!bytes.Equal(a.S, p.S) || !floatsEqual(a.Floats, p.Floats) || !slices.Equal(a.Ints, p.Ints) ||
		!slices.EqualFunc(a.Strings, p.Strings, bytes.Equal) || !sameTensor(a.T, s.t) || len(a.Tensors) != len(s.tensors) {
		return false
	}
	for i := range a.Tensors {
		if !sameTensor(a.Tensors[i], s.tensors[i]) {
			return false
		}
	}
	return true
}

// attrProto builds an AttributeProto: the original record when the attribute is unchanged.
func attrProto(a *graph.Attr) (*onnxpb.AttributeProto, error) {
	s, _ := a.Src.(*attrSrc)
	if s != nil && attrUnchanged(a, s) {
		return s.proto, nil
	}
	switch a.Type {
	case graph.AttrGraph, graph.AttrGraphs, graph.AttrSparseTensor, graph.AttrTypeProto, 12, 14:
		// Kept opaque: only the original record can be written, renamed if need be.
		if s == nil || graph.AttrType(s.proto.GetType()) != a.Type {
			return nil, fmt.Errorf("attributes of kind %d can only be copied from a model file, not built", a.Type)
		}
		ap := proto.Clone(s.proto).(*onnxpb.AttributeProto)
		ap.Name = strField(s.proto.Name, a.Name)
		ap.DocString = strField(s.proto.DocString, a.Doc)
		return ap, nil
	}
	typ := onnxpb.AttributeProto_AttributeType(a.Type)
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name), Type: &typ, DocString: strNew(a.Doc), RefAttrName: strNew(a.RefAttrName)}
	if s != nil {
		ap.Name = strField(s.proto.Name, a.Name)
		ap.DocString = strField(s.proto.DocString, a.Doc)
		ap.RefAttrName = strField(s.proto.RefAttrName, a.RefAttrName)
		ap.ProtoReflect().SetUnknown(s.proto.ProtoReflect().GetUnknown())
	}
	var err error
	switch a.Type {
	case graph.AttrFloat:
		ap.F = proto.Float32(a.F)
	case graph.AttrInt:
		ap.I = proto.Int64(a.I)
	case graph.AttrString:
		ap.S = a.S
		if ap.S == nil {
			ap.S = []byte{}
		}
	case graph.AttrTensor:
		if a.T == nil {
			return nil, fmt.Errorf("tensor attribute without a tensor")
		}
		if s != nil && sameTensor(a.T, s.t) {
			ap.T = s.proto.T
		} else if ap.T, err = tensorProto(a.T, true); err != nil {
			return nil, err
		}
	case graph.AttrFloats:
		ap.Floats = a.Floats
	case graph.AttrInts:
		ap.Ints = a.Ints
	case graph.AttrStrings:
		ap.Strings = a.Strings
	case graph.AttrTensors:
		for i, t := range a.Tensors {
			var tp *onnxpb.TensorProto
			if s != nil && i < len(s.tensors) && sameTensor(t, s.tensors[i]) && i < len(s.proto.Tensors) {
				tp = s.proto.Tensors[i]
			} else if tp, err = tensorProto(t, true); err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	default:
		if a.RefAttrName == "" {
			return nil, fmt.Errorf("attribute of unknown kind %d", a.Type)
		}
		if a.Type == graph.AttrUndefined {
			ap.Type = nil
		}
	}
	return ap, nil
}

// tensorProto converts a tensor held in memory (an attribute's), keeping the name of its
// original record when keepName is set.
func tensorProto(t *graph.Tensor, keepName bool) (*onnxpb.TensorProto, error) {
	if t == nil {
		return nil, fmt.Errorf("missing tensor")
	}
	tp, err := TensorToProto(t)
	if err != nil {
		return nil, err
	}
	if s := srcOf(t); s != nil && keepName {
		tp.Name = s.meta.Name
	}
	return tp, nil
}

// initializer lays out one initializer: its TensorProto's chunks and their total size. An
// unchanged initializer stored in the model file is written as the very bytes that were read;
// otherwise its metadata is marshalled and its data spliced in at raw_data's place, or sent to
// the external file.
func (e *encoder) initializer(v *graph.Value) ([]chunk, int64, error) {
	t := v.Const
	ts := srcOf(t)
	vs, _ := v.Src.(*valueSrc)
	docChanged := (vs == nil && v.Doc != "") || (vs != nil && v.Doc != vs.doc)
	goExt := e.external && t.DType != graph.String && t.NumBytes() >= e.threshold
	if ts != nil && ts.orig != nil && !ts.external && !goExt && ts.meta.GetName() == v.Name && !docChanged {
		return []chunk{{b: ts.orig, m: ts.mapped, res: ts.res}}, int64(len(ts.orig)), nil
	}
	var meta *onnxpb.TensorProto
	if ts != nil {
		meta = proto.Clone(ts.meta).(*onnxpb.TensorProto)
		meta.RawData = nil
	} else {
		if !validDType(int32(t.DType)) {
			return nil, 0, fmt.Errorf("tensor of unknown data type %d", int32(t.DType))
		}
		meta = &onnxpb.TensorProto{Dims: slices.Clone(t.Dims), DataType: proto.Int32(int32(t.DType))}
		if len(t.Dims) == 0 {
			meta.Dims = nil
		}
	}
	meta.Name = strField(meta.Name, v.Name)
	if docChanged {
		meta.DocString = strNew(v.Doc)
	}
	if ts != nil && !ts.hasRaw && !ts.external && !goExt {
		// Data in the typed fields (or strings), kept as it was.
		b, err := proto.Marshal(meta)
		if err != nil {
			return nil, 0, err
		}
		return []chunk{{b: b}}, int64(len(b)), nil
	}
	if t.DType == graph.String {
		return nil, 0, fmt.Errorf("a new string tensor cannot be encoded: the IR holds no string data")
	}
	meta.FloatData, meta.Int32Data, meta.StringData, meta.Int64Data, meta.DoubleData, meta.Uint64Data = nil, nil, nil, nil, nil, nil
	meta.ExternalData, meta.DataLocation, meta.Segment = nil, nil, nil
	var data []byte
	var mapped *mapping
	var res *resources
	if ts != nil && (ts.hasRaw || ts.external) {
		data, mapped, res = ts.data, ts.mapped, ts.res
	} else {
		var err error
		if data, err = t.Bytes(); err != nil {
			return nil, 0, err
		}
	}
	if int64(len(data)) != t.NumBytes() {
		return nil, 0, fmt.Errorf("tensor %s%v has %d bytes of data, want %d", t.DType, t.Dims, len(data), t.NumBytes())
	}
	if goExt {
		if pad := (externalAlign - e.extSize%externalAlign) % externalAlign; pad > 0 {
			e.ext = append(e.ext, chunk{b: zeros[:pad]})
			e.extSize += pad
		}
		meta.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(e.extLoc)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(e.extSize, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(data)))},
		}
		meta.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		e.ext = append(e.ext, chunk{b: data, m: mapped, res: res})
		e.extSize += int64(len(data))
		b, err := proto.Marshal(meta)
		if err != nil {
			return nil, 0, err
		}
		return []chunk{{b: b}}, int64(len(b)), nil
	}
	b, err := proto.Marshal(meta)
	if err != nil {
		return nil, 0, err
	}
	s := splitAt(b, tensorDesc, tensorRawField)
	h := header(tensorRawField, int64(len(data)))
	cs := []chunk{{b: b[:s]}, {b: h}, {b: data, m: mapped, res: res}, {b: b[s:]}}
	return cs, int64(len(b)) + int64(len(h)) + int64(len(data)), nil
}
