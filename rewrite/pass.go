package rewrite

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/skipgraph/skipgraph/graph"
)

// Args are a pass's arguments, by name.
type Args map[string]any

// Pass is one graph transformation.
type Pass struct {
	// Name identifies the pass in pipelines, errors and dumps.
	Name string
	// Doc says what the pass does, first line a summary.
	Doc string
	// Requires names passes that must have run earlier in the same pipeline.
	Requires []string
	// Run transforms the model in place and reports whether it changed anything.
	Run func(c *Context, args Args) (changed bool, err error)
}

// Context is what a pass sees: the model and what earlier passes left for later ones.
type Context struct {
	// Model is the model being transformed.
	Model *graph.Model
	// Done lists the passes that have run, in order.
	Done []string
	// State carries results between passes, keyed by the producing pass's name.
	State map[string]any
	// Logf reports progress; never nil inside a pass.
	Logf func(format string, args ...any)
}

// Graph returns the model's main graph.
func (c *Context) Graph() *graph.Graph { return c.Model.Graph }

var (
	regMu    sync.RWMutex
	registry = map[string]*Pass{}
)

// Register adds a pass to the registry. It panics on a duplicate name or a pass without Run,
// which are programming errors found at start-up.
func Register(p *Pass) *Pass {
	regMu.Lock()
	defer regMu.Unlock()
	if p.Name == "" || p.Run == nil {
		panic("rewrite.Register: a pass needs a name and a Run function")
	}
	if _, dup := registry[p.Name]; dup {
		panic("rewrite.Register: duplicate pass " + p.Name)
	}
	registry[p.Name] = p
	return p
}

// Lookup returns the registered pass with the given name.
func Lookup(name string) (*Pass, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	p, ok := registry[name]
	return p, ok
}

// Passes returns the registered passes sorted by name.
func Passes() []*Pass {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]*Pass, 0, len(registry))
	for _, p := range registry {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Step is one entry of a pipeline: a pass and its arguments.
type Step struct {
	Pass *Pass
	Args Args
}

// Manager runs a pipeline of passes.
type Manager struct {
	// Steps is the pipeline, in order.
	Steps []Step
	// Verify checks the graph after every pass that changed it (on by default via NewManager).
	Verify bool
	// DumpAfter names a pass after which the graph is written to DumpTo.
	DumpAfter string
	// DumpTo receives the dump.
	DumpTo io.Writer
	// Logf reports progress; nil discards.
	Logf func(format string, args ...any)
}

// NewManager returns a manager that verifies after each changing pass.
func NewManager(steps ...Step) *Manager { return &Manager{Steps: steps, Verify: true} }

// Add appends a registered pass by name. Unknown names are an error.
func (m *Manager) Add(name string, args Args) error {
	p, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown pass %q (known: %s)", name, strings.Join(passNames(), ", "))
	}
	m.Steps = append(m.Steps, Step{Pass: p, Args: args})
	return nil
}

func passNames() []string {
	var names []string
	for _, p := range Passes() {
		names = append(names, p.Name)
	}
	return names
}

// Check validates the pipeline's order without running it: every Requires of a pass must name a
// pass earlier in the pipeline.
func (m *Manager) Check() error {
	seen := map[string]bool{}
	for _, s := range m.Steps {
		for _, r := range s.Pass.Requires {
			if !seen[r] {
				return fmt.Errorf("pass %q requires %q to run before it", s.Pass.Name, r)
			}
		}
		seen[s.Pass.Name] = true
	}
	if m.DumpAfter != "" && !seen[m.DumpAfter] {
		return fmt.Errorf("cannot dump after pass %q: it is not in the pipeline", m.DumpAfter)
	}
	return nil
}

// Run runs the pipeline on model, returning the context with the passes' state.
func (m *Manager) Run(model *graph.Model) (*Context, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	logf := m.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := &Context{Model: model, State: map[string]any{}, Logf: logf}
	for _, s := range m.Steps {
		changed, err := s.Pass.Run(c, s.Args)
		if err != nil {
			return c, fmt.Errorf("pass %q: %w", s.Pass.Name, err)
		}
		c.Done = append(c.Done, s.Pass.Name)
		if changed && m.Verify {
			if err := model.Graph.Verify(); err != nil {
				return c, fmt.Errorf("pass %q left an invalid graph: %w", s.Pass.Name, err)
			}
		}
		if m.DumpAfter == s.Pass.Name && m.DumpTo != nil {
			if err := model.Graph.Dump(m.DumpTo); err != nil {
				return c, fmt.Errorf("dump after pass %q: %w", s.Pass.Name, err)
			}
		}
	}
	return c, nil
}
