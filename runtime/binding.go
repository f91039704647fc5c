package runtime

import (
	"fmt"

	"github.com/skipgraph/skipgraph/tensorio"
	ort "github.com/yalue/onnxruntime_go"
)

// Binding binds Values to a session's inputs and outputs for repeated runs without copies or
// allocations, as a training loop needs. Typical use:
//
//	b, _ := sess.NewBinding()
//	b.BindInput("w", w)          // parameter
//	b.BindOutput("w.next", wNext) // pre-allocated, same dtype and shape
//	for step := range steps {
//		b.Run()
//		b.Swap("w", "w.next") // the update becomes the next step's input
//	}
//
// The caller owns the Values (and closes them); the Binding only refers to them. A Binding is
// not safe for concurrent use.
type Binding struct {
	s   *Session
	io  *ort.IoBinding
	in  map[string]*Value
	out map[string]*Value
}

// NewBinding returns an empty Binding for the session.
func (s *Session) NewBinding() (*Binding, error) {
	if s.sess == nil {
		return nil, fmt.Errorf("model %s: session is closed", s.name)
	}
	io, err := s.sess.CreateIoBinding()
	if err != nil {
		return nil, fmt.Errorf("model %s: creating I/O binding: %s", s.name, oneLine(err))
	}
	b := &Binding{s: s, io: io, in: map[string]*Value{}, out: map[string]*Value{}}
	s.mu.Lock()
	s.bindings[b] = struct{}{}
	s.mu.Unlock()
	return b, nil
}

func (b *Binding) open() error {
	if b.io == nil {
		return fmt.Errorf("model %s: binding is closed", b.s.name)
	}
	return nil
}

// BindInput binds v to the named input, replacing any earlier binding. dtype and shape are
// checked against the model.
func (b *Binding) BindInput(name string, v *Value) error {
	if err := b.open(); err != nil {
		return err
	}
	info, ok := b.s.Input(name)
	if !ok {
		return fmt.Errorf("model %s: unknown input %q (inputs: %s)", b.s.name, name, listNames(b.s.inputs))
	}
	if v.closed() {
		return fmt.Errorf("model %s: input %q: value is nil or closed", b.s.name, name)
	}
	if err := b.s.check("input", info, v.DType(), v.Shape()); err != nil {
		return err
	}
	if err := b.bind(name, v, false); err != nil {
		return fmt.Errorf("model %s: binding input %q: %s", b.s.name, name, oneLine(err))
	}
	b.in[name] = v
	return nil
}

// BindOutput binds v to the named output, replacing any earlier binding; runs write into it.
// Only bound outputs are computed.
func (b *Binding) BindOutput(name string, v *Value) error {
	if err := b.open(); err != nil {
		return err
	}
	info, ok := b.s.Output(name)
	if !ok {
		return fmt.Errorf("model %s: unknown output %q (outputs: %s)", b.s.name, name, listNames(b.s.outputs))
	}
	if v.closed() {
		return fmt.Errorf("model %s: output %q: value is nil or closed", b.s.name, name)
	}
	if err := b.s.check("output", info, v.DType(), v.Shape()); err != nil {
		return err
	}
	if err := b.bind(name, v, true); err != nil {
		return fmt.Errorf("model %s: binding output %q: %s", b.s.name, name, oneLine(err))
	}
	b.out[name] = v
	return nil
}

// Bind binds v to the input or output called name.
func (b *Binding) Bind(name string, v *Value) error {
	_, isIn := b.s.inIdx[name]
	_, isOut := b.s.outIdx[name]
	switch {
	case isIn && isOut:
		return fmt.Errorf("model %s: %q is both an input and an output; use BindInput or BindOutput", b.s.name, name)
	case isOut:
		return b.BindOutput(name, v)
	}
	return b.BindInput(name, v)
}

// AllocOutputs binds a new zero-filled Value to every output of a fixed shape that has no
// binding yet, and returns them by name; the caller closes them.
func (b *Binding) AllocOutputs() (map[string]*Value, error) {
	res := map[string]*Value{}
	for _, info := range b.s.outputs {
		if _, done := b.out[info.Name]; done || !info.IsTensor || !info.Static() {
			continue
		}
		v, err := NewEmptyValue(info.DType, info.Shape...)
		if err == nil {
			err = b.BindOutput(info.Name, v)
		}
		if err != nil {
			v.Close()
			for _, x := range res {
				x.Close()
			}
			return nil, fmt.Errorf("model %s: output %q: %s", b.s.name, info.Name, err)
		}
		res[info.Name] = v
	}
	return res, nil
}

// Input returns the Value bound to the named input, or nil.
func (b *Binding) Input(name string) *Value { return b.in[name] }

// Output returns the Value bound to the named output, or nil.
func (b *Binding) Output(name string) *Value { return b.out[name] }

// Run runs the session on the bound values. Every input must be bound, and at least one output.
func (b *Binding) Run() error {
	if err := b.open(); err != nil {
		return err
	}
	if len(b.in) != len(b.s.inputs) {
		for _, info := range b.s.inputs {
			if b.in[info.Name] == nil {
				return fmt.Errorf("model %s: input %q is not bound", b.s.name, info.Name)
			}
		}
	}
	if len(b.out) == 0 {
		return fmt.Errorf("model %s: no output is bound", b.s.name)
	}
	if b.s.sess == nil {
		return fmt.Errorf("model %s: session is closed", b.s.name)
	}
	if err := b.s.sess.RunWithBinding(b.io); err != nil {
		return fmt.Errorf("model %s: run failed: %s", b.s.name, oneLine(err))
	}
	return nil
}

// Swap exchanges the Values bound to input inName and output outName: the value the last run
// wrote becomes the input, and the old input's buffer receives the next run's output. Both must
// be bound, with the same dtype and shape. Nothing is copied.
func (b *Binding) Swap(inName, outName string) error {
	if err := b.open(); err != nil {
		return err
	}
	vi, vo := b.in[inName], b.out[outName]
	if vi == nil {
		return fmt.Errorf("model %s: swap: input %q is not bound", b.s.name, inName)
	}
	if vo == nil {
		return fmt.Errorf("model %s: swap: output %q is not bound", b.s.name, outName)
	}
	if vi.DType() != vo.DType() || !tensorio.SameShape(vi.Shape(), vo.Shape()) {
		return fmt.Errorf("model %s: swap: input %q is %v but output %q is %v", b.s.name, inName, vi, outName, vo)
	}
	if err := b.bind(inName, vo, false); err != nil {
		return fmt.Errorf("model %s: swap: rebinding input %q: %s", b.s.name, inName, oneLine(err))
	}
	if err := b.bind(outName, vi, true); err != nil {
		// Put the input back so that the binding stays consistent.
		b.bind(inName, vi, false)
		return fmt.Errorf("model %s: swap: rebinding output %q: %s", b.s.name, outName, oneLine(err))
	}
	b.in[inName], b.out[outName] = vo, vi
	return nil
}

// bind hands v to ORT's binding: a Go-memory value through onnxruntime_go, a value in
// ORT-allocated memory by its OrtValue.
func (b *Binding) bind(name string, v *Value, output bool) error {
	if v.dev != nil {
		return bindRaw(b.io, name, v.dev.ptr, output)
	}
	if output {
		return b.io.BindOutput(name, v.v)
	}
	return b.io.BindInput(name, v.v)
}

// clear unbinds every input and output.
func (b *Binding) clear() {
	b.io.ClearBoundInputs()
	b.io.ClearBoundOutputs()
	clear(b.in)
	clear(b.out)
}

// Close releases the ORT binding (not the bound Values). Closing twice is harmless.
func (b *Binding) Close() error {
	if b.io == nil {
		return nil
	}
	err := b.io.Destroy()
	b.io = nil
	b.s.mu.Lock()
	delete(b.s.bindings, b)
	b.s.mu.Unlock()
	return err
}
