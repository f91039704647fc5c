package bundle

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/rewrite"
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

// Stepper runs train_step.onnx repeatedly on ONNX Runtime. Each parameter and optimizer state
// has two buffers; two I/O bindings are made once, one reading the first buffer and writing
// the second, the other the reverse, and the steps alternate between them. So the update
// becomes the next step's input with nothing copied, nothing rebound and nothing allocated.
type Stepper struct {
	man   *Manifest
	sess  *runtime.Session
	binds [2]*runtime.Binding
	cur   int // the binding the next step runs
	owned []*runtime.Value
	fed   map[string]*runtime.Value
	// fetched are the buffers bound by Fetch.
	fetched map[string]*runtime.Value
	// keptDirty is set when cskip.k or cskip.tail change, so the kept-classes output is sized again.
	keptDirty bool
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
	for i := range s.binds {
		if s.binds[i], err = sess.NewBinding(); err != nil {
			s.Close()
			return nil, err
		}
	}
	newValue := func(t *tensorio.Tensor) (*runtime.Value, error) {
		v, err := runtime.NewValue(t)
		if err == nil {
			s.owned = append(s.owned, v)
		}
		return v, err
	}
	// pairs[name] are the two buffers of a parameter or optimizer state: binding 0 reads [0]
	// and writes [1], binding 1 the reverse.
	pairs := map[string][2]*runtime.Value{}
	for _, in := range rec.Inputs {
		var t *tensorio.Tensor
		switch in.Role {
		case "param":
			if t = params[in.Name]; t == nil {
				s.Close()
				return nil, fmt.Errorf("no initial value for parameter %s", in.Name)
			}
			t = t.Clone()
		case "optimizer_state":
			if t = state[in.Name]; t != nil {
				t = t.Clone()
			} else if p := params[in.Param]; p != nil {
				t, _ = tensorio.New(tensorio.Float32, p.Shape...)
			} else {
				s.Close()
				return nil, fmt.Errorf("no parameter %s for optimizer state %s", in.Param, in.Name)
			}
		default:
			continue
		}
		a, err := newValue(t)
		if err != nil {
			s.Close()
			return nil, err
		}
		other, _ := tensorio.New(t.DType, t.Shape...)
		b, err := newValue(other)
		if err != nil {
			s.Close()
			return nil, err
		}
		pairs[in.Name] = [2]*runtime.Value{a, b}
		for i, bd := range s.binds {
			if err := bd.BindInput(in.Name, pairs[in.Name][i]); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	for _, out := range rec.Outputs {
		switch out.Role {
		case "param_next", "state_next":
			pair, ok := pairs[strings.TrimSuffix(out.Name, ".next")]
			if !ok {
				s.Close()
				return nil, fmt.Errorf("output %s has no matching input", out.Name)
			}
			for i, bd := range s.binds {
				if err := bd.BindOutput(out.Name, pair[1-i]); err != nil {
					s.Close()
					return nil, err
				}
			}
		case "loss", "grad":
			var shape []int64
			if out.Role == "grad" {
				pair, ok := pairs[out.Param]
				if !ok {
					s.Close()
					return nil, fmt.Errorf("output %s has no matching parameter", out.Name)
				}
				shape = pair[0].Shape()
			}
			t, _ := tensorio.New(tensorio.Float32, shape...)
			v, err := newValue(t)
			if err == nil {
				err = s.bindBoth(out.Name, v, true)
			}
			if err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	return s, nil
}

// bindBoth binds one value to the named input or output of both bindings.
func (s *Stepper) bindBoth(name string, v *runtime.Value, output bool) error {
	for _, bd := range s.binds {
		var err error
		if output {
			err = bd.BindOutput(name, v)
		} else {
			err = bd.BindInput(name, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Feed sets a data input (labels, states, learning rates, step, CSkip inputs ...). A tensor of
// the shape already bound is copied into the bound buffer; another shape rebinds.
func (s *Stepper) Feed(name string, t *tensorio.Tensor) error {
	if name == rewrite.CSkipK || name == rewrite.CSkipTail {
		s.keptDirty = true
	}
	if v := s.fed[name]; v != nil && v.DType() == t.DType && tensorio.SameShape(v.Shape(), t.Shape) {
		return v.CopyFrom(t)
	}
	v, err := runtime.NewValue(t.Clone())
	if err != nil {
		return err
	}
	if err := s.bindBoth(name, v, false); err != nil {
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

// Step runs one optimizer step and returns the loss (computed before the update); the updated
// parameters and state are the next step's inputs.
func (s *Stepper) Step() (float64, error) {
	if s.keptDirty {
		if err := s.bindKept(); err != nil {
			return 0, err
		}
		s.keptDirty = false
	}
	bd := s.binds[s.cur]
	if err := bd.Run(); err != nil {
		return 0, err
	}
	s.cur = 1 - s.cur
	return float64(bd.Output("loss").Tensor().Float32s()[0]), nil
}

// Param returns the current value of a parameter or optimizer-state input (shared memory: copy
// it to keep it past the next step).
func (s *Stepper) Param(name string) *tensorio.Tensor {
	if v := s.binds[s.cur].Input(name); v != nil {
		return v.Tensor()
	}
	return nil
}

// Output returns the last step's output of that name (e.g. a gradient), or nil.
func (s *Stepper) Output(name string) *tensorio.Tensor {
	if v := s.binds[1-s.cur].Output(name); v != nil {
		return v.Tensor()
	}
	return nil
}

// Fetch binds a float32 output of the given shape (e.g. LogitsOutput) so that the next Steps
// compute it; Output then reads it. Binding again with another shape replaces the buffer.
func (s *Stepper) Fetch(name string, shape ...int64) error {
	if cur := s.binds[0].Output(name); cur != nil && tensorio.SameShape(cur.Shape(), shape) {
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
	if err := s.bindBoth(name, v, true); err != nil {
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
	for _, bd := range s.binds {
		if bd != nil {
			bd.Close()
		}
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
	k, tail := s.fed[rewrite.CSkipK], s.fed[rewrite.CSkipTail]
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
	if cur := s.binds[0].Output(CSkipClassesOutput); cur != nil && cur.Shape()[0] == n {
		return nil
	}
	t, _ := tensorio.New(tensorio.Int64, n)
	v, err := runtime.NewValue(t)
	if err != nil {
		return err
	}
	s.owned = append(s.owned, v)
	return s.bindBoth(CSkipClassesOutput, v, true)
}
