package strategy

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
)

// Strategy is a skip strategy: it turns a model's skeleton and structure into a Plan.
type Strategy interface {
	// Info describes the strategy and its parameters.
	Info() Info
	// Plan computes the strategy's plan for a model. Args hold the resolved parameters (every
	// parameter of Info present, defaults filled in, values validated by ResolveArgs).
	Plan(ctx context.Context, req *Request) (*Plan, error)
}

// Info describes a strategy.
type Info struct {
	// Name is what --strategy selects.
	Name string `json:"name"`
	// Version is the strategy's own version.
	Version string `json:"version"`
	// Doc is a one-paragraph description.
	Doc string `json:"doc"`
	// Params are the strategy's parameters, each also a CLI flag --<name>-<param>.
	Params []Param `json:"params"`
}

// Param is one parameter of a strategy.
type Param struct {
	// Name is the parameter's name (lower case, dashes).
	Name string `json:"name"`
	// Type is int, float, string or bool.
	Type string `json:"type"`
	// Default is the value used when none is given ("" may mean "computed from the model").
	Default string `json:"default"`
	// Doc says what the parameter does.
	Doc string `json:"doc"`
}

// Request is what a strategy plans from.
type Request struct {
	// Skeleton is the model without weight data.
	Skeleton *Skeleton `json:"skeleton"`
	// Structure is the discovered CLIP structure.
	Structure *clip.Structure `json:"structure"`
	// Args are the strategy's resolved parameters.
	Args map[string]string `json:"args"`
	// Prior is the combined plan of the strategies before this one in the --strategy list.
	Prior *Plan `json:"prior,omitempty"`
}

// Int returns an integer argument.
func (r *Request) Int(name string) (int, error) {
	v, err := strconv.Atoi(r.Args[name])
	if err != nil {
		return 0, errs.Input("parameter %s=%q is not an integer", name, r.Args[name])
	}
	return v, nil
}

// Float returns a float argument.
func (r *Request) Float(name string) (float64, error) {
	v, err := strconv.ParseFloat(r.Args[name], 64)
	if err != nil {
		return 0, errs.Input("parameter %s=%q is not a number", name, r.Args[name])
	}
	return v, nil
}

// Plan is what a strategy asks of the host.
type Plan struct {
	// Freeze lists initializer names to keep frozen.
	Freeze []string `json:"freeze,omitempty"`
	// Train lists initializer names to train (applied after Freeze).
	Train []string `json:"train,omitempty"`
	// StopGradients are boundaries where the gradient stops; with Cache set, everything before
	// them that no trainable parameter feeds is split into features.onnx and cached.
	StopGradients []Boundary `json:"stop_gradients,omitempty"`
	// Passes are host passes to run, with arguments, in order.
	Passes []PassCall `json:"passes,omitempty"`
	// Patch is a small graph edit applied before the host passes.
	Patch *Patch `json:"patch,omitempty"`
	// Params records the strategy's resolved parameters and derived settings for the manifest.
	Params map[string]string `json:"params,omitempty"`
}

// Boundary is a value on the residual stream where the gradient stops.
type Boundary struct {
	// Tower is vision or text.
	Tower string `json:"tower"`
	// Layer is the index of the first layer after the boundary.
	Layer int `json:"layer"`
	// Value names the value entering that layer.
	Value string `json:"value"`
	// Cache asks the host to compute the frozen prefix once and feed its output.
	Cache bool `json:"cache"`
}

// PassCall asks the host to run one of its passes.
type PassCall struct {
	// Name is the host pass, e.g. class-gather.
	Name string `json:"name"`
	// Args are its arguments.
	Args map[string]string `json:"args,omitempty"`
}

// Patch is a small set of new nodes and rewired inputs.
type Patch struct {
	// Nodes are added to the graph; their outputs become new values.
	Nodes []PatchNode `json:"nodes,omitempty"`
	// Rewire points node inputs at other values.
	Rewire []Rewire `json:"rewire,omitempty"`
}

// PatchNode is a node to add. Attributes are limited to ints, floats, strings and their lists.
type PatchNode struct {
	Name    string      `json:"name"`
	OpType  string      `json:"op_type"`
	Domain  string      `json:"domain,omitempty"`
	Inputs  []string    `json:"inputs"`
	Outputs []string    `json:"outputs"`
	Attrs   []PatchAttr `json:"attrs,omitempty"`
}

// PatchAttr is an attribute of a patch node; exactly one of the value fields is used.
type PatchAttr struct {
	Name   string    `json:"name"`
	Int    *int64    `json:"int,omitempty"`
	Float  *float32  `json:"float,omitempty"`
	String *string   `json:"string,omitempty"`
	Ints   []int64   `json:"ints,omitempty"`
	Floats []float32 `json:"floats,omitempty"`
}

// Rewire makes input Input of node Node read value Value.
type Rewire struct {
	Node  string `json:"node"`
	Input int    `json:"input"`
	Value string `json:"value"`
}

// Merge appends q's requests to p (later plans win on overlapping parameters).
func (p *Plan) Merge(q *Plan) {
	if q == nil {
		return
	}
	p.Freeze = append(p.Freeze, q.Freeze...)
	p.Train = append(p.Train, q.Train...)
	p.StopGradients = append(p.StopGradients, q.StopGradients...)
	p.Passes = append(p.Passes, q.Passes...)
	if q.Patch != nil {
		if p.Patch == nil {
			p.Patch = &Patch{}
		}
		p.Patch.Nodes = append(p.Patch.Nodes, q.Patch.Nodes...)
		p.Patch.Rewire = append(p.Patch.Rewire, q.Patch.Rewire...)
	}
}

// Trainable applies the plan to the discovered parameters and returns the initializers that
// train: every parameter but the logit scale trains unless Freeze names it; Train adds
// parameters (the logit scale too) that Freeze does not name, so Freeze wins when both do. The
// host (bundle) and the cost model both count with this one rule.
func (p *Plan) Trainable(st *clip.Structure) map[string]bool {
	set := map[string]bool{}
	for _, q := range st.Params {
		if q.Role != clip.RoleLogitScale {
			set[q.Initializer] = true
		}
	}
	frozen := map[string]bool{}
	for _, name := range p.Freeze {
		delete(set, name)
		frozen[name] = true
	}
	for _, name := range p.Train {
		if !frozen[name] {
			set[name] = true
		}
	}
	return set
}

var (
	mu       sync.RWMutex
	builtins = map[string]Strategy{}
)

// Register adds a built-in strategy; a duplicate name panics (a programming error).
func Register(s Strategy) {
	mu.Lock()
	defer mu.Unlock()
	name := s.Info().Name
	if _, dup := builtins[name]; dup {
		panic("strategy.Register: duplicate " + name)
	}
	builtins[name] = s
}

// Builtin returns the built-in strategy with the given name.
func Builtin(name string) (Strategy, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := builtins[name]
	return s, ok
}

// Builtins returns the built-in strategies sorted by name.
func Builtins() []Strategy {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Strategy, 0, len(builtins))
	for _, s := range builtins {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Info().Name < out[j].Info().Name })
	return out
}

// ResolveArgs fills defaults and checks types: unknown parameters and malformed values are input
// errors that name the strategy and the parameter.
func ResolveArgs(info Info, given map[string]string) (map[string]string, error) {
	out := map[string]string{}
	known := map[string]Param{}
	for _, p := range info.Params {
		known[p.Name] = p
		out[p.Name] = p.Default
	}
	for k, v := range given {
		p, ok := known[k]
		if !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, errs.Input("strategy %s has no parameter %q (it has: %s)", info.Name, k, strings.Join(names, ", "))
		}
		if err := CheckValue(p, v); err != nil {
			return nil, errs.Input("strategy %s: parameter %s=%q is %w", info.Name, p.Name, v, err)
		}
		out[k] = v
	}
	return out, nil
}

// CheckValue checks a value against a parameter's type (int, float, bool; string takes any).
func CheckValue(p Param, v string) error {
	var err error
	switch p.Type {
	case "int":
		_, err = strconv.Atoi(v)
	case "float":
		var x float64
		if x, err = strconv.ParseFloat(v, 64); err == nil && (math.IsNaN(x) || math.IsInf(x, 0)) {
			return fmt.Errorf("not a finite number")
		}
	case "bool":
		_, err = strconv.ParseBool(v)
	}
	if err != nil {
		return fmt.Errorf("not a valid %s", p.Type)
	}
	return nil
}
