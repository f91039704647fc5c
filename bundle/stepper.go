package bundle

import (
	"fmt"
	"path/filepath"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// InitialParams reads the trainable parameters' initial values (float32) from the bundle's
// eval.onnx, where each is an input backed by an initializer.
func InitialParams(dir string, man *Manifest) (map[string]*tensorio.Tensor, error) {
	rec, err := man.Graph("eval")
	if err != nil {
		return nil, errs.AsInput(err)
	}
	m, err := onnxio.Load(filepath.Join(dir, rec.File))
	if err != nil {
		return nil, err
	}
	out := map[string]*tensorio.Tensor{}
	for _, p := range man.Trainable() {
		v := m.Graph.Value(p.Initializer)
		if v == nil || v.Const == nil {
			return nil, errs.Input("%s: parameter %s has no initial value; convert the model again", rec.File, p.Initializer)
		}
		f, err := v.Const.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: parameter %s: %w", rec.File, p.Initializer, err)
		}
		t, err := tensorio.FromSlice(append([]int64{}, v.Const.Dims...), f)
		if err != nil {
			return nil, err
		}
		out[p.Initializer] = t
	}
	return out, nil
}

// Stepper runs train_step.onnx repeatedly on ONNX Runtime. Parameters and optimizer state are
// bound once; after each step the buffers of X.next and X are swapped, so the update becomes
// the next step's input with nothing copied and nothing allocated.
type Stepper struct {
	man   *Manifest
	sess  *runtime.Session
	bind  *runtime.Binding
	owned []*runtime.Value
	swaps [][2]string
	fed   map[string]*runtime.Value
	// fetched are the buffers bound by Fetch.
	fetched map[string]*runtime.Value
}

// OpenStepper opens the bundle's train step with the given initial parameters (from
// InitialParams, or a checkpoint) and optimizer state (nil for zeros).
func OpenStepper(dir string, man *Manifest, params, state map[string]*tensorio.Tensor, opts *runtime.Options) (*Stepper, error) {
	rec, err := man.Graph("train_step")
	if err != nil {
		return nil, errs.AsInput(err)
	}
	sess, err := runtime.NewSession(filepath.Join(dir, rec.File), opts)
	if err != nil {
		return nil, err
	}
	s := &Stepper{man: man, sess: sess, fed: map[string]*runtime.Value{}}
	if s.bind, err = sess.NewBinding(); err != nil {
		s.Close()
		return nil, err
	}
	bindNew := func(name string, t *tensorio.Tensor, output bool) error {
		v, err := runtime.NewValue(t)
		if err != nil {
			return err
		}
		s.owned = append(s.owned, v)
		if output {
			return s.bind.BindOutput(name, v)
		}
		return s.bind.BindInput(name, v)
	}
	for _, in := range rec.Inputs {
		switch in.Role {
		case "param":
			t := params[in.Name]
			if t == nil {
				s.Close()
				return nil, fmt.Errorf("no initial value for parameter %s", in.Name)
			}
			if err := bindNew(in.Name, t.Clone(), false); err != nil {
				s.Close()
				return nil, err
			}
		case "optimizer_state":
			t := state[in.Name]
			if t == nil {
				p := params[in.Param]
				if p == nil {
					s.Close()
					return nil, fmt.Errorf("no parameter %s for optimizer state %s", in.Param, in.Name)
				}
				t, _ = tensorio.New(tensorio.Float32, p.Shape...)
			} else {
				t = t.Clone()
			}
			if err := bindNew(in.Name, t, false); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	for _, out := range rec.Outputs {
		var shape []int64
		switch out.Role {
		case "loss":
		case "param_next", "state_next", "grad":
			in := s.bind.Input(out.Param)
			if out.Role == "state_next" {
				in = s.bind.Input(out.Name[:len(out.Name)-len(".next")])
			}
			if in == nil {
				s.Close()
				return nil, fmt.Errorf("output %s has no matching input", out.Name)
			}
			shape = in.Shape()
		default:
			continue
		}
		t, _ := tensorio.New(tensorio.Float32, shape...)
		if err := bindNew(out.Name, t, true); err != nil {
			s.Close()
			return nil, err
		}
		if out.Role == "param_next" || out.Role == "state_next" {
			s.swaps = append(s.swaps, [2]string{out.Name[:len(out.Name)-len(".next")], out.Name})
		}
	}
	return s, nil
}

// Feed sets a data input (labels, states, learning rates, step, CSkip inputs ...). A tensor of
// the shape already bound is copied into the bound buffer; another shape rebinds.
func (s *Stepper) Feed(name string, t *tensorio.Tensor) error {
	if v := s.fed[name]; v != nil && v.DType() == t.DType && tensorio.SameShape(v.Shape(), t.Shape) {
		return v.CopyFrom(t)
	}
	v, err := runtime.NewValue(t.Clone())
	if err != nil {
		return err
	}
	if err := s.bind.BindInput(name, v); err != nil {
		v.Close()
		return err
	}
	if old := s.fed[name]; old != nil {
		old.Close()
	}
	s.fed[name] = v
	return nil
}

// FeedScalar sets a rank-0 float input (a learning rate, the step number).
func (s *Stepper) FeedScalar(name string, x float64) error {
	if v := s.fed[name]; v != nil {
		return v.SetScalar(x)
	}
	return s.Feed(name, tensorio.Scalar(float32(x)))
}

// Step runs one optimizer step, swaps the updated parameters and state into place and returns
// the loss (computed before the update).
func (s *Stepper) Step() (float64, error) {
	if err := s.bindKept(); err != nil {
		return 0, err
	}
	if err := s.bind.Run(); err != nil {
		return 0, err
	}
	loss, err := s.bind.Output("loss").Scalar()
	if err != nil {
		return 0, err
	}
	for _, sw := range s.swaps {
		if err := s.bind.Swap(sw[0], sw[1]); err != nil {
			return 0, err
		}
	}
	return loss, nil
}

// Param returns the current value of a parameter or optimizer-state input (shared memory: copy
// it to keep it past the next step).
func (s *Stepper) Param(name string) *tensorio.Tensor {
	if v := s.bind.Input(name); v != nil {
		return v.Tensor()
	}
	return nil
}

// Output returns the last step's output of that name (e.g. a gradient), or nil.
func (s *Stepper) Output(name string) *tensorio.Tensor {
	if v := s.bind.Output(name); v != nil {
		return v.Tensor()
	}
	return nil
}

// Fetch binds a float32 output of the given shape (e.g. LogitsOutput) so that the next Steps
// compute it; Output then reads it. Binding again with another shape replaces the buffer.
func (s *Stepper) Fetch(name string, shape ...int64) error {
	if cur := s.bind.Output(name); cur != nil && tensorio.SameShape(cur.Shape(), shape) {
		return nil
	}
	t, err := tensorio.New(tensorio.Float32, shape...)
	if err != nil {
		return err
	}
	v, err := runtime.NewValue(t)
	if err != nil {
		return err
	}
	if err := s.bind.BindOutput(name, v); err != nil {
		v.Close()
		return err
	}
	if s.fetched == nil {
		s.fetched = map[string]*runtime.Value{}
	}
	if old := s.fetched[name]; old != nil {
		old.Close()
	}
	s.fetched[name] = v
	return nil
}

// Close releases the session and every buffer.
func (s *Stepper) Close() error {
	if s.bind != nil {
		s.bind.Close()
	}
	for _, v := range s.owned {
		v.Close()
	}
	for _, v := range s.fed {
		v.Close()
	}
	for _, v := range s.fetched {
		v.Close()
	}
	if s.sess != nil {
		return s.sess.Close()
	}
	return nil
}

// bindKept binds the CSkip kept-classes output, whose length K+T is known once cskip.k and
// cskip.tail are fed.
func (s *Stepper) bindKept() error {
	k, tail := s.fed["cskip.k"], s.fed["cskip.tail"]
	if k == nil || tail == nil {
		return nil
	}
	if _, ok := s.sess.Output(CSkipClassesOutput); !ok {
		return nil
	}
	kv, err := k.Scalar()
	if err != nil {
		return err
	}
	n := int64(kv) + tail.Shape()[0]
	if cur := s.bind.Output(CSkipClassesOutput); cur != nil && cur.Shape()[0] == n {
		return nil
	}
	t, _ := tensorio.New(tensorio.Int64, n)
	v, err := runtime.NewValue(t)
	if err != nil {
		return err
	}
	s.owned = append(s.owned, v)
	return s.bind.BindOutput(CSkipClassesOutput, v)
}
