package bundle

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
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
//
// A resident Stepper (always on CUDA) keeps those buffers, the gradients and the large data
// inputs (boundary states, text inputs, prototypes) in memory the session's device allocator
// hands out, so a step moves nothing between host and device but the small inputs (labels,
// learning rates, step, CSkip's k and tail) in and the loss (and, when fetched, the logits and
// kept classes) out. On the CPU the same code runs over ORT-allocated host memory.
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

	// resident mode: device memory, the kernels that fill it, the inputs that stay on the host,
	// and the row indices of FeedRows.
	mem       *runtime.Memory
	kern      *runtime.Kernels
	hostInput map[string]bool
	rows      map[string]*runtime.Value

	// host update (UpdateHost): the session computes gradients only; upd applies the optimizer
	// in place; state holds the optimizer state by input name; hyper holds the role (RoleLR or
	// RoleStep) of the inputs upd reads instead of the session.
	upd   *hostUpdater
	state map[string]*tensorio.Tensor
	hyper map[string]Role
	// updTime is the time the host updates took, summed over the steps.
	updTime time.Duration
}

// hostRoles are the train-step input roles a resident Stepper leaves in host memory: small
// values that change every step, which ORT copies to the device as the step starts.
var hostRoles = map[Role]bool{RoleLabels: true, RoleLR: true, RoleStep: true, RoleCSkipK: true, RoleCSkipTail: true}

// OpenStepper opens the bundle's train step with the given initial parameters (from
// InitialParams, or a checkpoint) and optimizer state (nil for zeros).
//
// On the CPU the optimizer update is applied on the host in place when the step allows it
// (UpdateAuto); OpenStepperUpdate chooses.
func OpenStepper(dir string, man *Manifest, params, state map[string]*tensorio.Tensor, opts *runtime.Options) (*Stepper, error) {
	return OpenStepperUpdate(dir, man, params, state, opts, UpdateAuto)
}

// OpenStepperUpdate is OpenStepper with the update applied where u says. UpdateHost is refused
// on CUDA and for a step that cannot have it (16-bit compute, loss scaling, a bundle converted
// before gradients were named), with the reason.
func OpenStepperUpdate(dir string, man *Manifest, params, state map[string]*tensorio.Tensor, opts *runtime.Options, u Update) (*Stepper, error) {
	resident := opts != nil && strings.EqualFold(opts.Device, runtime.DeviceCUDA)
	if resident && u == UpdateHost {
		return nil, errs.Input("the host update needs the CPU; on CUDA the update runs in the graph (use --update graph or auto)")
	}
	return openStepper(dir, man, params, state, opts, resident, u)
}

// OpenResidentStepper is OpenStepper with every parameter, optimizer state, gradient and large
// data input in memory the session's device allocator hands out (what OpenStepper does on
// CUDA); on the CPU it runs the device code path over host memory.
func OpenResidentStepper(dir string, man *Manifest, params, state map[string]*tensorio.Tensor, opts *runtime.Options) (*Stepper, error) {
	return openStepper(dir, man, params, state, opts, true, UpdateGraph)
}

func openStepper(dir string, man *Manifest, params, state map[string]*tensorio.Tensor, opts *runtime.Options, resident bool, u Update) (*Stepper, error) {
	rec, err := man.Graph("train_step")
	if err != nil {
		return nil, errs.AsInput(err)
	}
	var sess *runtime.Session
	host := false
	if !resident && u != UpdateGraph {
		sess, err = openGradientSession(dir, rec, man, opts, u == UpdateHost)
		if err != nil {
			return nil, err
		}
		host = sess != nil
	}
	if sess == nil {
		if sess, err = runtime.NewSession(filepath.Join(dir, rec.File), opts); err != nil {
			return nil, err
		}
	}
	s := &Stepper{man: man, sess: sess, fed: map[string]*runtime.Value{}}
	if resident {
		deviceID := 0
		if opts != nil {
			deviceID = opts.DeviceID
		}
		if s.mem, err = sess.NewMemory(deviceID); err != nil {
			s.Close()
			return nil, err
		}
		s.kern = runtime.NewKernels(opts)
		s.hostInput = map[string]bool{}
		s.rows = map[string]*runtime.Value{}
		for _, in := range rec.Inputs {
			if hostRoles[in.Role] {
				s.hostInput[in.Name] = true
			}
		}
	}
	for i := range s.binds {
		if s.binds[i], err = sess.NewBinding(); err != nil {
			s.Close()
			return nil, err
		}
	}
	// newValue holds t: on the host, the Value is t's memory; resident, t is copied into
	// device memory.
	newValue := func(t *tensorio.Tensor) (*runtime.Value, error) {
		v, err := s.deviceValue(t, true)
		if err == nil {
			s.owned = append(s.owned, v)
		}
		return v, err
	}
	// pairs[name] are the two buffers of a parameter or optimizer state: binding 0 reads [0]
	// and writes [1], binding 1 the reverse.
	pairs := map[string][2]*runtime.Value{}
	var hp map[string]*hostParam
	if host {
		s.state, s.hyper, hp = map[string]*tensorio.Tensor{}, map[string]Role{}, map[string]*hostParam{}
	}
	for _, in := range rec.Inputs {
		if host && (in.Role == RoleLR || in.Role == RoleStep) {
			s.hyper[in.Name] = in.Role
			continue
		}
		var t *tensorio.Tensor
		switch in.Role {
		case RoleParam:
			if t = params[in.Name]; t == nil {
				s.Close()
				return nil, fmt.Errorf("no initial value for parameter %s", in.Name)
			}
			t = t.Clone()
		case RoleLossScale:
			if t = state[in.Name]; t != nil {
				t = t.Clone()
			} else {
				init := 0.0
				if in.Name == LossScaleInput && man.LossScale != nil {
					init = man.LossScale.Init
				}
				t = tensorio.Scalar(float32(init))
			}
		case RoleOptimizerState:
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
		if host {
			if err := s.bindHost(in, t, hp); err != nil {
				s.Close()
				return nil, err
			}
			continue
		}
		a, err := newValue(t)
		if err != nil {
			s.Close()
			return nil, err
		}
		other, _ := tensorio.New(t.DType, t.Shape...)
		b, err := s.deviceValue(other, false)
		if err == nil {
			s.owned = append(s.owned, b)
		}
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
		if host && gradientStepDrops(out.Role) {
			continue // not computed, or bound by bindHost
		}
		switch out.Role {
		case "param_next", "state_next", "loss_scale_next":
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
			if out.Role == RoleGrad {
				pair, ok := pairs[out.Param]
				if !ok {
					s.Close()
					return nil, fmt.Errorf("output %s has no matching parameter", out.Name)
				}
				shape = pair[0].Shape()
			}
			t, _ := tensorio.New(tensorio.Float32, shape...)
			var v *runtime.Value
			if out.Role == RoleLoss {
				v, err = runtime.NewValue(t) // the loss is read on the host every step
			} else {
				v, err = s.deviceValue(t, false)
			}
			if err == nil {
				s.owned = append(s.owned, v)
				err = s.bindBoth(out.Name, v, true)
			}
			if err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	if host {
		if err := s.newUpdater(rec, hp, opts); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// openGradientSession opens the gradient part of the train step for the host update: the step
// without the update's nodes, with every parameter's gradient value as an output. It returns
// nil (and no error) when the step cannot have a host update, unless must is set.
func openGradientSession(dir string, rec *GraphRecord, man *Manifest, opts *runtime.Options, must bool) (*runtime.Session, error) {
	path := filepath.Join(dir, rec.File)
	blocked := func(why string) (*runtime.Session, error) {
		if must {
			return nil, errs.Input("%s: no host update: %s", path, why)
		}
		return nil, nil
	}
	if why := hostUpdateBlocker(man); why != "" {
		return blocked(why) // known from the manifest: the graph is not read
	}
	m, err := onnxio.Load(path)
	if err != nil {
		return nil, err
	}
	g := m.Graph
	if why := gradientsMissing(man, g); why != "" {
		return blocked(why)
	}
	drop := map[string]bool{}
	for _, o := range rec.Outputs {
		if gradientStepDrops(o.Role) {
			drop[o.Name] = true
		}
	}
	var outs []*graph.Value
	for _, o := range g.Outputs {
		if !drop[o.Name] {
			outs = append(outs, o)
		}
	}
	for _, p := range man.Trainable() {
		v := g.Value(p.Initializer + GradSuffix)
		v.Type = g.Value(p.Initializer).Type // the parameter's: a value inside a graph may carry no type
		outs = append(outs, v)
	}
	return openPruned(m, rec.File+" (gradients)", outs, opts)
}

// bindHost sets up parameter or optimizer-state input in of a host-update Stepper with initial
// value t: a parameter is bound to the session (one buffer, updated in place) with its gradient
// output; an optimizer state stays on the host.
func (s *Stepper) bindHost(in IORecord, t *tensorio.Tensor, hp map[string]*hostParam) error {
	switch in.Role {
	case RoleParam:
		v, err := runtime.NewValue(t)
		if err != nil {
			return err
		}
		s.owned = append(s.owned, v)
		if err := s.bindBoth(in.Name, v, false); err != nil {
			return err
		}
		gt, _ := tensorio.New(tensorio.Float32, t.Shape...)
		gv, err := runtime.NewValue(gt)
		if err != nil {
			return err
		}
		s.owned = append(s.owned, gv)
		if err := s.bindBoth(in.Name+GradSuffix, gv, true); err != nil {
			return err
		}
		p := hp[in.Name]
		if p == nil {
			p = &hostParam{}
			hp[in.Name] = p
		}
		p.p, p.g = t.Float32s(), gt.Float32s()
		if mp := s.man.Param(in.Name); mp != nil {
			p.lr = "lr." + mp.Group
		}
	case RoleOptimizerState:
		s.state[in.Name] = t
	default:
		return fmt.Errorf("train step: input %s (%s) has no host update", in.Name, in.Role)
	}
	return nil
}

// newUpdater makes the host updater over the parameters in hp, with each one's optimizer state in
// the order the optimizer names it.
func (s *Stepper) newUpdater(rec *GraphRecord, hp map[string]*hostParam, opts *runtime.Options) error {
	var list []hostParam
	for _, in := range rec.Inputs {
		if in.Role != RoleParam {
			continue
		}
		p := hp[in.Name]
		for _, slot := range s.man.Optimizer.OptimizerState() {
			st := s.state[in.Name+"."+slot]
			if st == nil {
				return fmt.Errorf("train step: no optimizer state %s.%s", in.Name, slot)
			}
			p.state = append(p.state, st.Float32s())
		}
		if s.hyper[p.lr] != RoleLR {
			return fmt.Errorf("train step: parameter %s: no learning-rate input %s", in.Name, p.lr)
		}
		list = append(list, *p)
	}
	threads := 0
	if opts != nil {
		threads = opts.IntraOpThreads
	}
	s.upd = newHostUpdater(s.man.Optimizer, list, defaultUpdateWorkers(threads))
	return nil
}

// UpdateTime returns the time the host update took over all steps so far (zero when the update
// runs in the graph, where it is part of the session's run).
func (s *Stepper) UpdateTime() time.Duration { return s.updTime }

// HostUpdate reports whether the Stepper applies the optimizer update on the host (UpdateHost).
func (s *Stepper) HostUpdate() bool { return s.upd != nil }

// deviceValue returns a Value for t: t's own memory for a host Stepper; for a resident one, a
// tensor in device memory, with t's elements copied in when fill is set.
func (s *Stepper) deviceValue(t *tensorio.Tensor, fill bool) (*runtime.Value, error) {
	if s.mem == nil {
		return runtime.NewValue(t)
	}
	v, err := s.mem.New(t.DType, t.Shape...)
	if err != nil || !fill {
		return v, err
	}
	if err := s.copyIn(v, t); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// copyIn copies a host tensor into a (device) Value.
func (s *Stepper) copyIn(dst *runtime.Value, t *tensorio.Tensor) error {
	hv, err := runtime.NewValue(t)
	if err != nil {
		return err
	}
	defer hv.Close()
	return s.kern.Copy(dst, hv)
}

// copyOut returns a host copy of a (device) Value.
func (s *Stepper) copyOut(v *runtime.Value) *tensorio.Tensor {
	if t := v.Tensor(); t != nil && s.mem == nil {
		return t
	}
	t, err := tensorio.New(v.DType(), v.Shape()...)
	if err != nil {
		return nil
	}
	hv, err := runtime.NewValue(t)
	if err != nil {
		return nil
	}
	defer hv.Close()
	if err := s.kern.Copy(hv, v); err != nil {
		return nil
	}
	return t
}

// Trim releases the sessions of a resident Stepper's kernels, with the device scratch memory
// they hold (a host-to-device copy stages its input on the device in the kernel's own arena);
// they are made again when next needed. Call it after the setup copies (parameters, cached
// inputs), before the steps.
func (s *Stepper) Trim() {
	if s.kern != nil {
		s.kern.Close()
	}
}

// Resident reports whether parameters, state and large inputs live in device memory.
func (s *Stepper) Resident() bool { return s.mem != nil }

// Memory returns the device memory of a resident Stepper (nil otherwise), where a caller may
// keep data the step reads, such as a feature cache for FeedRows.
func (s *Stepper) Memory() *runtime.Memory { return s.mem }

// Kernels returns the resident Stepper's device kernels (nil otherwise).
func (s *Stepper) Kernels() *runtime.Kernels { return s.kern }

// FeedRows sets a data input of a resident Stepper to the slices of cache at the indices rows
// along axis, gathered on the device (nothing crosses to the host but the indices).
func (s *Stepper) FeedRows(name string, cache *runtime.Value, rows []int64, axis int) error {
	if s.mem == nil {
		return fmt.Errorf("train step: FeedRows needs a resident stepper")
	}
	shape := append([]int64{}, cache.Shape()...)
	if axis < 0 || axis >= len(shape) {
		return fmt.Errorf("train step: input %s: axis %d out of range for %v", name, axis, cache)
	}
	shape[axis] = int64(len(rows))
	idx := s.rows[name]
	if idx == nil || idx.Shape()[0] != int64(len(rows)) {
		t, _ := tensorio.New(tensorio.Int64, int64(len(rows)))
		v, err := runtime.NewValue(t)
		if err != nil {
			return err
		}
		if idx != nil {
			idx.Close()
		}
		idx, s.rows[name] = v, v
	}
	copy(idx.Tensor().Int64s(), rows)
	dst := s.fed[name]
	if dst == nil || dst.DType() != cache.DType() || !tensorio.SameShape(dst.Shape(), shape) {
		v, err := s.mem.New(cache.DType(), shape...)
		if err != nil {
			return err
		}
		if err := s.bindBoth(name, v, false); err != nil {
			v.Close()
			return err
		}
		if dst != nil {
			dst.Close()
		}
		dst, s.fed[name] = v, v
	}
	return s.kern.Gather(dst, cache, idx, axis)
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
	if _, ok := s.hyper[name]; ok {
		if len(t.Shape) != 0 || t.DType != tensorio.Float32 {
			return fmt.Errorf("train step: input %s must be a float scalar", name)
		}
		return s.setHyper(name, float64(t.Float32s()[0]))
	}
	resident := s.mem != nil && !s.hostInput[name]
	if v := s.fed[name]; v != nil && v.DType() == t.DType && tensorio.SameShape(v.Shape(), t.Shape) {
		if resident {
			return s.copyIn(v, t)
		}
		return v.CopyFrom(t)
	}
	var v *runtime.Value
	var err error
	if resident {
		v, err = s.deviceValue(t, true)
	} else {
		v, err = runtime.NewValue(t.Clone())
	}
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
	if _, ok := s.hyper[name]; ok {
		return s.setHyper(name, x)
	}
	if v := s.fed[name]; v != nil {
		return v.SetScalar(x)
	}
	return s.Feed(name, tensorio.Scalar(float32(x)))
}

// setHyper sets a learning rate or the step number of the host update.
func (s *Stepper) setHyper(name string, x float64) error {
	if s.hyper[name] == RoleStep {
		s.upd.step = float32(x)
	} else {
		s.upd.lr[name] = float32(x)
	}
	return nil
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
	if s.upd != nil {
		t0 := time.Now()
		if err := s.upd.apply(); err != nil {
			return 0, err
		}
		s.updTime += time.Since(t0)
	}
	s.cur = 1 - s.cur
	return float64(bd.Output("loss").Tensor().Float32s()[0]), nil
}

// Param returns the current value of a parameter or optimizer-state input (shared memory on a
// host Stepper: copy it to keep it past the next step; a copy from the device on a resident one).
func (s *Stepper) Param(name string) *tensorio.Tensor {
	if t := s.state[name]; t != nil {
		return t
	}
	if v := s.binds[s.cur].Input(name); v != nil {
		return s.copyOut(v)
	}
	return nil
}

// Output returns the last step's output of that name (e.g. a gradient), or nil.
func (s *Stepper) Output(name string) *tensorio.Tensor {
	if v := s.binds[1-s.cur].Output(name); v != nil {
		if v.Device() == runtime.DeviceCPU && v.Tensor() != nil {
			return v.Tensor()
		}
		return s.copyOut(v)
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
	for _, v := range s.rows {
		v.Close()
	}
	if s.kern != nil {
		s.kern.Close()
	}
	if s.upd != nil {
		s.upd.close()
		s.upd = nil
	}
	if s.mem != nil {
		s.mem.Close()
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
