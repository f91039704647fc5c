package onnxio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers the decoder and encoder treat specially.
const (
	modelGraphField  protowire.Number = 7 // ModelProto.graph
	graphInitField   protowire.Number = 5 // GraphProto.initializer
	tensorRawField   protowire.Number = 9 // TensorProto.raw_data
	modelIRVersField protowire.Number = 1 // ModelProto.ir_version
)

// Load reads the ONNX model at path. The file is memory-mapped and weights are not copied: each
// initializer becomes a lazy tensor whose data is a slice of the mapping (or of the mapping of
// its external data file). See the package documentation for how long the mappings live.
//
// Bad input (an empty, truncated or foreign file, an invalid graph, external data outside the
// model's folder) gives an error for which errs.IsInput is true.
func Load(path string) (*graph.Model, error) {
	f, err := safeio.Open(path)
	if err != nil {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			return nil, errs.Input("%s: is a folder, not an ONNX model file; give the path of the .onnx file", path)
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, safeio.ErrNotRegular) {
			return nil, errs.Input("%s: cannot open the model: %w", path, safeio.PathCause(err))
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, errs.Input("%s: is a folder, not an ONNX model file; give the path of the .onnx file", path)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, errs.Input("%s: the file is empty, not an ONNX model; export or copy the model again", path)
	}
	m, err := mapFile(f, st.Size()) // m owns f from here on
	if err != nil {
		return nil, fmt.Errorf("%s: cannot map the file: %w", path, err)
	}
	res := newResources(path, filepath.Dir(path))
	res.add(m)
	model, err := decode(res, m)
	if err != nil {
		res.unmapNow()
		return nil, err
	}
	return model, nil
}

// Decode decodes an ONNX model held in memory. External data is resolved against dir ("" means
// the current folder) and memory-mapped. The model's tensors share data's bytes, which must not
// be modified while the model is in use.
func Decode(data []byte, dir string) (*graph.Model, error) {
	if dir == "" {
		dir = "."
	}
	res := newResources("ONNX data", dir)
	model, err := decode(res, &mapping{data: data})
	if err != nil {
		res.unmapNow()
		return nil, err
	}
	model.Dir = dir
	return model, nil
}

// initRecord is an initializer as found in the graph bytes.
type initRecord struct {
	orig   []byte // the whole encoded TensorProto
	meta   []byte // its fields other than raw_data, concatenated
	raw    []byte // raw_data
	hasRaw bool
}

// sniff names well-known non-ONNX formats from their first bytes, or returns "".
func sniff(b []byte) string {
	sigs := []struct {
		magic, what string
	}{
		{"\x89PNG\r\n\x1a\n", "a PNG image"},
		{"\xff\xd8\xff", "a JPEG image"},
		{"GIF8", "a GIF image"},
		{"%PDF", "a PDF document"},
		{"PK\x03\x04", "a zip archive (a PyTorch checkpoint?)"},
		{"\x1f\x8b", "a gzip archive"},
		{"\x7fELF", "an executable"},
		{"\x80\x02", "a Python pickle"},
		{"{", "a JSON or text file"},
		{"<", "an HTML or XML file"},
	}
	for _, s := range sigs {
		if bytes.HasPrefix(b, []byte(s.magic)) {
			return s.what
		}
	}
	head := b[:min(len(b), 64)]
	text := len(head) > 0
	for _, c := range head {
		if c != '\n' && c != '\r' && c != '\t' && (c < 0x20 || c > 0x7e) {
			text = false
			break
		}
	}
	if text {
		return "a text file"
	}
	return ""
}

// decoder carries the state of one decode.
type decoder struct {
	res  *resources
	m    *mapping
	name string
}

// inputErr returns an input error prefixed with the model's name.
func (d *decoder) inputErr(format string, args ...any) error {
	return errs.Input("%s: %s", d.name, fmt.Sprintf(format, args...))
}

// corrupt reports a protobuf framing error in field num (0 if unknown) of a message, at byte
// off of the data.
func (d *decoder) corrupt(what string, num protowire.Number, code, off int) error {
	field := what
	if num > 0 {
		field = fmt.Sprintf("%s field %d", what, num)
	}
	return d.inputErr("the file is truncated or is not an ONNX model (%s at byte %d: %v; the data has %d bytes); export or copy the model again",
		field, off, protowire.ParseError(code), len(d.m.data))
}

// fieldWalk calls fn for each field of the message b, which starts at byte base of the file.
func (d *decoder) fieldWalk(what string, b []byte, base int, fn func(num protowire.Number, typ protowire.Type, field, value []byte)) error {
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return d.corrupt(what, 0, n, base+off)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return d.corrupt(what, num, m, base+off)
		}
		fn(num, typ, b[off:off+n+m], b[off+n:off+n+m])
		off += n + m
	}
	return nil
}

// offsetOf returns the position of sub inside the file's bytes.
func (d *decoder) offsetOf(sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	return int(addrDiff(sub, d.m.data))
}

// decode parses the model in m.
func decode(res *resources, m *mapping) (model *graph.Model, err error) {
	d := &decoder{res: res, m: m, name: res.name}
	data := m.data
	if len(data) == 0 {
		return nil, d.inputErr("the file is empty, not an ONNX model; export or copy the model again")
	}
	if what := sniff(data); what != "" {
		return nil, d.inputErr("not an ONNX model: it looks like %s; give the path of an .onnx file", what)
	}
	var rest []byte
	var graphs [][]byte
	sawIR := false
	err = d.fieldWalk("model", data, 0, func(num protowire.Number, typ protowire.Type, field, value []byte) {
		if num == modelGraphField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(value)
			graphs = append(graphs, v)
			return
		}
		if num == modelIRVersField && typ == protowire.VarintType {
			sawIR = true
		}
		rest = append(rest, field...)
	})
	if err != nil {
		return nil, err
	}
	if !sawIR || len(graphs) == 0 {
		missing := "IR version"
		if len(graphs) == 0 {
			missing = "graph"
		}
		return nil, d.inputErr("not an ONNX model: it has no %s (truncated file, or another kind of protobuf?); give the path of an .onnx file", missing)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(rest, mp); err != nil {
		return nil, d.inputErr("the model's header is corrupt (%v); export or copy the model again", err)
	}
	if len(mp.OpsetImport) == 0 {
		return nil, d.inputErr("the model imports no operator set (a truncated file?); export or copy the model again")
	}

	var grest []byte
	var inits []initRecord
	for _, gb := range graphs {
		base := d.offsetOf(gb)
		err := d.fieldWalk("graph", gb, base, func(num protowire.Number, typ protowire.Type, field, value []byte) {
			if num == graphInitField && typ == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(value)
				inits = append(inits, initRecord{orig: v})
				return
			}
			grest = append(grest, field...)
		})
		if err != nil {
			return nil, err
		}
	}
	for i := range inits {
		r := &inits[i]
		err := d.fieldWalk("initializer", r.orig, d.offsetOf(r.orig), func(num protowire.Number, typ protowire.Type, field, value []byte) {
			if num == tensorRawField && typ == protowire.BytesType {
				r.raw, _ = protowire.ConsumeBytes(value)
				r.hasRaw = true
				return
			}
			r.meta = append(r.meta, field...)
		})
		if err != nil {
			return nil, err
		}
	}
	gp := &onnxpb.GraphProto{}
	if err := proto.Unmarshal(grest, gp); err != nil {
		return nil, d.inputErr("the graph is corrupt (%v); export or copy the model again", err)
	}
	g, err := d.buildGraph(gp, inits)
	if err != nil {
		return nil, err
	}
	if err := g.Verify(); err != nil {
		return nil, d.inputErr("invalid graph: %s; fix or re-export the model", oneLine(err))
	}
	model = &graph.Model{Graph: g, IRVersion: mp.GetIrVersion(), Dir: res.dir}
	for _, o := range mp.OpsetImport {
		model.Opsets = append(model.Opsets, graph.Opset{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	mp.Graph = nil
	model.Src = &modelSrc{proto: mp, res: res}
	return model, nil
}

// oneLine joins a multi-line error into one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// modelSrc is the codec's record of a model, kept in graph.Model.Src: the ModelProto without its
// graph, and the resources its tensors read from.
type modelSrc struct {
	proto *onnxpb.ModelProto
	res   *resources
}
