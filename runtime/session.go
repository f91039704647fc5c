package runtime

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
	ort "github.com/yalue/onnxruntime_go"
)

// Session is a loaded model on ONNX Runtime. Run may be called from several goroutines at once;
// a Binding is for one goroutine at a time. Close it when done.
type Session struct {
	name    string
	device  string
	sess    *ort.DynamicAdvancedSession
	inputs  []IOInfo
	outputs []IOInfo
	inIdx   map[string]int
	outIdx  map[string]int

	mu       sync.Mutex
	bindings map[*Binding]struct{}
	memories []*Memory
}

// NewSession loads the ONNX model at path (external data is resolved next to it). opts may be
// nil for the defaults.
func NewSession(path string, opts *Options) (*Session, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, errs.Input("model %s: %s", path, oneLine(safeio.PathCause(err)))
	} else if st.IsDir() {
		return nil, errs.Input("model %s: is a directory, want an .onnx file", path)
	}
	ins, outs, err := readModelIO(path, nil)
	if err != nil {
		return nil, errs.Input("model %s: %s", path, oneLine(safeio.PathCause(err)))
	}
	return newSession(path, path, nil, ins, outs, opts)
}

// NewSessionFromBytes loads a serialised ONNX model from memory; name identifies it in errors.
// External data cannot be resolved for such a model.
func NewSessionFromBytes(name string, model []byte, opts *Options) (*Session, error) {
	if name == "" {
		name = "<in-memory model>"
	}
	if len(model) == 0 {
		return nil, fmt.Errorf("model %s: no bytes", name)
	}
	ins, outs, err := scanModel(model)
	if err != nil {
		return nil, fmt.Errorf("model %s: %s", name, oneLine(err))
	}
	return newSession(name, "", model, ins, outs, opts)
}

func newSession(name, path string, model []byte, ins, outs []IOInfo, opts *Options) (*Session, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	so, err := opts.sessionOptions()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	defer so.Destroy()
	s := &Session{
		name: name, device: strings.ToLower(opts.Device), inputs: ins, outputs: outs,
		inIdx: map[string]int{}, outIdx: map[string]int{}, bindings: map[*Binding]struct{}{},
	}
	if s.device == "" {
		s.device = DeviceCPU
	}
	inNames := make([]string, len(ins))
	for i, in := range ins {
		if !in.IsTensor {
			return nil, fmt.Errorf("model %s: input %q is not a tensor; only tensor inputs are supported", name, in.Name)
		}
		inNames[i] = in.Name
		s.inIdx[in.Name] = i
	}
	outNames := make([]string, len(outs))
	for i, out := range outs {
		outNames[i] = out.Name
		s.outIdx[out.Name] = i
	}
	if path != "" {
		s.sess, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	} else {
		s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outNames, so)
	}
	if err != nil {
		msg := oneLine(err)
		if s.device == DeviceCUDA {
			return nil, fmt.Errorf("model %s: device cuda: ONNX Runtime cannot create the session: %s%s; %s", name, msg, gpuNote(), cudaHint)
		}
		if path != "" {
			// a file on disk that ORT refuses was damaged or is not what its name says
			return nil, errs.Input("model %s: ONNX Runtime cannot load it: %s", name, msg)
		}
		return nil, fmt.Errorf("model %s: ONNX Runtime cannot load it: %s", name, msg)
	}
	return s, nil
}

// Name returns the model's path, or the name given to NewSessionFromBytes.
func (s *Session) Name() string { return s.name }

// Device returns "cpu" or "cuda".
func (s *Session) Device() string { return s.device }

// Inputs describes the inputs that must be fed (graph inputs that are not initializers), in graph
// order.
func (s *Session) Inputs() []IOInfo { return append([]IOInfo{}, s.inputs...) }

// Outputs describes the graph outputs, in graph order.
func (s *Session) Outputs() []IOInfo { return append([]IOInfo{}, s.outputs...) }

// InputNames returns the input names in graph order.
func (s *Session) InputNames() []string { return names(s.inputs) }

// OutputNames returns the output names in graph order.
func (s *Session) OutputNames() []string { return names(s.outputs) }

// Input returns the description of the named input.
func (s *Session) Input(name string) (IOInfo, bool) {
	i, ok := s.inIdx[name]
	if !ok {
		return IOInfo{}, false
	}
	return s.inputs[i], true
}

// Output returns the description of the named output.
func (s *Session) Output(name string) (IOInfo, bool) {
	i, ok := s.outIdx[name]
	if !ok {
		return IOInfo{}, false
	}
	return s.outputs[i], true
}

func names(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

// listNames returns up to 8 names for an error message.
func listNames(infos []IOInfo) string {
	n := names(infos)
	if len(n) > 8 {
		n = append(n[:8], fmt.Sprintf("... (%d in all)", len(infos)))
	}
	return strings.Join(n, ", ")
}

// check verifies that t fits the model's declared dtype and shape for value info (kind is
// "input" or "output").
func (s *Session) check(kind string, info IOInfo, dt DType, shape []int64) error {
	if dt != info.DType {
		return fmt.Errorf("model %s: %s %q wants %v, got %v", s.name, kind, info.Name, info.DType, dt)
	}
	if info.Shape == nil {
		return nil
	}
	bad := len(shape) != len(info.Shape)
	for i := 0; !bad && i < len(shape); i++ {
		bad = info.Shape[i] >= 0 && info.Shape[i] != shape[i]
	}
	if bad {
		return fmt.Errorf("model %s: %s %q wants shape %s, got %v", s.name, kind, info.Name, shapeString(info), shape)
	}
	return nil
}

func shapeString(info IOInfo) string {
	parts := make([]string, len(info.Shape))
	for i, d := range info.Shape {
		switch {
		case d >= 0:
			parts[i] = fmt.Sprint(d)
		case info.DimParams[i] != "":
			parts[i] = info.DimParams[i]
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Run feeds inputs by name and returns every output by name. Inputs are passed to ORT without
// copying; outputs of a fixed shape are written straight into new Go tensors, others are
// copied from ORT's buffers.
func (s *Session) Run(inputs map[string]*Tensor) (map[string]*Tensor, error) {
	if s.sess == nil {
		return nil, fmt.Errorf("model %s: session is closed", s.name)
	}
	for name := range inputs {
		if _, ok := s.inIdx[name]; !ok {
			return nil, fmt.Errorf("model %s: unknown input %q (inputs: %s)", s.name, name, listNames(s.inputs))
		}
	}
	var cleanup []*Value
	defer func() {
		for _, v := range cleanup {
			v.Close()
		}
	}()
	inVals := make([]ort.Value, len(s.inputs))
	var missing []string
	for i, info := range s.inputs {
		t, ok := inputs[info.Name]
		if !ok || t == nil {
			missing = append(missing, info.Name)
			continue
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("model %s: input %q: %s", s.name, info.Name, err)
		}
		if err := s.check("input", info, t.DType, t.Shape); err != nil {
			return nil, err
		}
		v, err := newOrtValue(t)
		if err != nil {
			return nil, fmt.Errorf("model %s: input %q: %s", s.name, info.Name, err)
		}
		cleanup = append(cleanup, v)
		inVals[i] = v.v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("model %s: missing input %s", s.name, strings.Join(quote(missing), ", "))
	}
	outVals := make([]ort.Value, len(s.outputs))
	fixed := make([]*Value, len(s.outputs))
	for i, info := range s.outputs {
		if !info.IsTensor || !info.Static() || !info.DType.Valid() {
			continue
		}
		t, err := tensorio.New(info.DType, info.Shape...)
		if err != nil {
			continue
		}
		v, err := newOrtValue(t)
		if err != nil {
			continue // let ORT allocate it
		}
		cleanup = append(cleanup, v)
		fixed[i] = v
		outVals[i] = v.v
	}
	if err := s.sess.Run(inVals, outVals); err != nil {
		for i, v := range outVals {
			if fixed[i] == nil && v != nil {
				destroyQuietly(v)
			}
		}
		return nil, fmt.Errorf("model %s: run failed: %s", s.name, oneLine(err))
	}
	res := make(map[string]*Tensor, len(s.outputs))
	var firstErr error
	for i, info := range s.outputs {
		if fixed[i] != nil {
			res[info.Name] = fixed[i].Tensor()
			continue
		}
		if outVals[i] == nil {
			continue
		}
		t, err := tensorFromOrt(outVals[i], info)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("model %s: %s", s.name, err)
			}
			continue
		}
		res[info.Name] = t
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return res, nil
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Close closes the Bindings made from the session, releases its Memory allocators, and
// releases the session. Closing twice is
// harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	bs := make([]*Binding, 0, len(s.bindings))
	for b := range s.bindings {
		bs = append(bs, b)
	}
	s.mu.Unlock()
	for _, b := range bs {
		b.Close()
	}
	s.mu.Lock()
	mems := s.memories
	s.memories = nil
	s.mu.Unlock()
	for _, m := range mems {
		m.release()
	}
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

// destroyQuietly releases an ORT value that ORT allocated for a failed run. onnxruntime_go can
// hand back a value wrapping no tensor in that case, whose Destroy dereferences nil; the run's
// own error is what matters then.
func destroyQuietly(v ort.Value) {
	defer func() { _ = recover() }()
	v.Destroy()
}
