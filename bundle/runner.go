package bundle

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Runner drives a converted bundle in the order every caller needs: the features phase
// (features.onnx computes the cached boundary states), the initial parameters, the Stepper that
// runs train_step.onnx, and its feeds. The trainer, the step benchmark and the tests all open
// a bundle through it.
type Runner struct {
	// Dir is the bundle's folder.
	Dir string
	// Man is its manifest.
	Man *Manifest
	// Opts are the sessions' options (device, threads); nil for the CPU defaults.
	Opts *runtime.Options
	// Resident opens a resident Stepper even on the CPU (on CUDA it always is).
	Resident bool
	// Update is where a non-resident Stepper applies the optimizer update (UpdateAuto: on the
	// host when the step allows it).
	Update Update
}

// NewRunner returns a Runner of the bundle in dir with manifest man.
func NewRunner(dir string, man *Manifest, opts *runtime.Options) *Runner {
	return &Runner{Dir: dir, Man: man, Opts: opts}
}

// OpenRunner reads the manifest of the bundle in dir and returns its Runner.
func OpenRunner(dir string, opts *runtime.Options) (*Runner, error) {
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	return NewRunner(dir, man, opts), nil
}

// DataRoles are the train-step input roles a caller feeds with data (not parameters, optimizer
// state or hyper-parameters, nor the source model's own extra inputs, RoleInput).
var DataRoles = []Role{RoleImage, RoleTextInput, RoleState, RoleLabels, RoleCSkipPrototypes, RoleCSkipK, RoleCSkipTail}

// Features runs features.onnx on the inputs it reads from data and adds the boundary states it
// computes to data. A bundle without a features graph (nothing frozen) leaves data as it is. It
// returns the time of the run alone (zero when there was none).
func (r *Runner) Features(data map[string]*tensorio.Tensor) (time.Duration, error) {
	rec := r.Man.Graphs[GraphFeatures]
	if rec == nil {
		return 0, nil
	}
	fs, err := runtime.NewSession(filepath.Join(r.Dir, rec.File), r.Opts)
	if err != nil {
		return 0, err
	}
	defer fs.Close()
	in := map[string]*tensorio.Tensor{}
	for _, i := range rec.Inputs {
		if data[i.Name] == nil {
			return 0, fmt.Errorf("%s: no value for input %s", rec.File, i.Name)
		}
		in[i.Name] = data[i.Name]
	}
	t0 := time.Now()
	states, err := fs.Run(in)
	if err != nil {
		return 0, err
	}
	took := time.Since(t0)
	for k, v := range states {
		data[k] = v
	}
	return took, nil
}

// InitialParams reads the trainable parameters' initial values (see the function of that name).
func (r *Runner) InitialParams() (map[string]*tensorio.Tensor, error) {
	return InitialParams(r.Dir, r.Man)
}

// Open opens the train step with the given parameters (nil: the initial ones) and optimizer
// state (nil: zeros); resident when r.Resident is set or the device is CUDA.
func (r *Runner) Open(params, state map[string]*tensorio.Tensor) (*Stepper, error) {
	if params == nil {
		var err error
		if params, err = r.InitialParams(); err != nil {
			return nil, err
		}
	}
	if r.Resident {
		return OpenResidentStepper(r.Dir, r.Man, params, state, r.Opts)
	}
	return OpenStepperUpdate(r.Dir, r.Man, params, state, r.Opts, r.Update)
}

// OpenFed opens the train step from the initial parameters and zero optimizer state, feeds
// every data input from data, every learning rate lr and the step number step: a step is ready
// to run.
func (r *Runner) OpenFed(data map[string]*tensorio.Tensor, lr, step float64) (*Stepper, error) {
	st, err := r.Open(nil, nil)
	if err != nil {
		return nil, err
	}
	if err := r.Feed(st, data); err != nil {
		st.Close()
		return nil, err
	}
	if err := r.FeedHyper(st, lr, step); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Feed sets the train-step inputs of the given roles (every data role when none is given:
// DataRoles) from data, keyed by input name. An input
// of those roles with no value in data is an error.
func (r *Runner) Feed(st *Stepper, data map[string]*tensorio.Tensor, roles ...Role) error {
	if len(roles) == 0 {
		roles = DataRoles
	}
	rec, err := r.Man.Graph(GraphTrainStep)
	if err != nil {
		return errs.AsInput(err)
	}
	for _, in := range rec.Inputs {
		if !slices.Contains(roles, in.Role) {
			continue
		}
		t := data[in.Name]
		if t == nil {
			return fmt.Errorf("no value for train-step input %s", in.Name)
		}
		if err := st.Feed(in.Name, t); err != nil {
			return fmt.Errorf("train-step input %s: %w", in.Name, err)
		}
	}
	return nil
}

// FeedHyper sets every learning rate (lr.<group>) to lr and the step number to step.
func (r *Runner) FeedHyper(st *Stepper, lr, step float64) error {
	rec, err := r.Man.Graph(GraphTrainStep)
	if err != nil {
		return errs.AsInput(err)
	}
	for _, in := range rec.Inputs {
		switch in.Role {
		case RoleLR:
			err = st.FeedScalar(in.Name, lr)
		case RoleStep:
			err = st.FeedScalar(in.Name, step)
		}
		if err != nil {
			return fmt.Errorf("train-step input %s: %w", in.Name, err)
		}
	}
	return nil
}

// OpenPart opens the part of model m that computes the named values, as a session whose outputs
// are exactly those values (graph inputs that part does not read are dropped); name names it
// in errors. The trainer opens each tower of features.onnx and of a scorer this way.
func OpenPart(m *graph.Model, name string, outputs []string, opts *runtime.Options) (*runtime.Session, error) {
	c := m.Clone()
	g := c.Graph
	var outs []*graph.Value
	for _, o := range outputs {
		v := g.Value(o)
		if v == nil {
			return nil, fmt.Errorf("%s: no value %q", name, o)
		}
		if v.Type.Elem == 0 {
			v.Type.Elem = graph.Float
		}
		outs = append(outs, v)
	}
	return openPruned(c, name, outs, opts)
}

// openPruned opens model m, changed in place, as a session whose outputs are outs: the nodes
// and graph inputs none of them needs are dropped. name names it in errors.
func openPruned(m *graph.Model, name string, outs []*graph.Value, opts *runtime.Options) (*runtime.Session, error) {
	g := m.Graph
	g.Outputs = outs
	if _, err := rewrite.EliminateDeadCode(g); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rewrite.RemoveUnusedInputs(g)
	b, err := onnxio.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return runtime.NewSessionFromBytes(name, b, opts)
}
