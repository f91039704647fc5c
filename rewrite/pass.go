package rewrite

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/skipgraph/skipgraph/graph"
)

// Pass is one graph transformation, a value in the manner of go/analysis's Analyzer: a name, a
// doc, the passes whose results it needs, and a run function that may leave a typed result for
// later passes (Context.SetResult, ResultOf).
type Pass struct {
	// Name identifies the pass in pipelines, errors and dumps.
	Name string
	// Doc says what the pass does, first line a summary.
	Doc string
	// Requires lists passes that must have run earlier in the same pipeline.
	Requires []*Pass
	// Run transforms the model in place and reports whether it changed anything.
	Run func(c *Context) (changed bool, err error)
}

// Context is what a pass sees: the model, the pipeline's input and earlier passes' results.
type Context struct {
	// Model is the model being transformed.
	Model *graph.Model
	// Done lists the passes that have run, in order.
	Done []string
	// Env is the pipeline's input, given by its driver (Manager.Env); passes read it with EnvOf.
	Env any
	// Logf reports progress; never nil inside a pass.
	Logf func(format string, args ...any)

	current *Pass
	results map[*Pass]any
}

// Graph returns the model's main graph.
func (c *Context) Graph() *graph.Graph { return c.Model.Graph }

// SetResult records the running pass's result, for the passes that require it.
func (c *Context) SetResult(v any) {
	if c.results == nil {
		c.results = map[*Pass]any{}
	}
	c.results[c.current] = v
}

// ResultOf returns the result that pass p left in c, and whether it left one of type T (a pass
// that had nothing to do may leave none).
func ResultOf[T any](c *Context, p *Pass) (T, bool) {
	v, ok := c.results[p].(T)
	return v, ok
}

// EnvOf returns the pipeline's input as a T. A driver that gives a pass the wrong input is a
// programming error, so this panics with both types named.
func EnvOf[T any](c *Context) T {
	v, ok := c.Env.(T)
	if !ok {
		var want T
		panic(fmt.Sprintf("rewrite: pass %q needs a %T input, the pipeline gave %T", c.current.Name, want, c.Env))
	}
	return v
}

var (
	regMu    sync.RWMutex
	registry = map[string]*Pass{}
)

// Register adds a pass to the registry of every pass skipgraph knows, for listings and lookups
// by name. It panics on a duplicate name or a pass without Run, which are programming errors
// found at start-up.
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

// Names returns the names of passes, in order.
func Names(passes []*Pass) []string {
	out := make([]string, len(passes))
	for i, p := range passes {
		out[i] = p.Name
	}
	return out
}

// Manager runs a pipeline of passes.
type Manager struct {
	// Passes is the pipeline, in order.
	Passes []*Pass
	// Env is the pipeline's input, handed to every pass (Context.Env).
	Env any
	// Verify checks the graph after every pass that changed it (on by default via NewManager).
	Verify bool
	// DumpAfter names a pass after which the graph is written to DumpTo.
	DumpAfter string
	// DumpTo receives the dump.
	DumpTo io.Writer
	// Logf reports progress; nil discards.
	Logf func(format string, args ...any)
	// After, when set, is called after every pass (after the check and the dump), for tests
	// that compare the graph after each pass with a golden file, and for tracing.
	After func(p *Pass, m *graph.Model) error
}

// NewManager returns a manager of the given pipeline that verifies after each changing pass.
func NewManager(passes ...*Pass) *Manager { return &Manager{Passes: passes, Verify: true} }

// Check validates the pipeline's order without running it: every Requires of a pass must name a
// pass earlier in the pipeline.
func (m *Manager) Check() error {
	seen := map[*Pass]bool{}
	names := map[string]bool{}
	for _, p := range m.Passes {
		for _, r := range p.Requires {
			if !seen[r] {
				return fmt.Errorf("pass %q requires %q to run before it", p.Name, r.Name)
			}
		}
		seen[p], names[p.Name] = true, true
	}
	if m.DumpAfter != "" && !names[m.DumpAfter] {
		return fmt.Errorf("cannot dump after pass %q: it is not in the pipeline", m.DumpAfter)
	}
	return nil
}

// Run runs the pipeline on model, returning the context with the passes' results.
func (m *Manager) Run(model *graph.Model) (*Context, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	logf := m.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := &Context{Model: model, Env: m.Env, Logf: logf}
	for _, p := range m.Passes {
		c.current = p
		changed, err := p.Run(c)
		if err != nil {
			return c, fmt.Errorf("pass %q: %w", p.Name, err)
		}
		c.Done = append(c.Done, p.Name)
		if changed && m.Verify {
			if err := model.Graph.Verify(); err != nil {
				return c, fmt.Errorf("pass %q left an invalid graph: %w", p.Name, err)
			}
		}
		if m.DumpAfter == p.Name && m.DumpTo != nil {
			if err := model.Graph.Dump(m.DumpTo); err != nil {
				return c, fmt.Errorf("dump after pass %q: %w", p.Name, err)
			}
		}
		if m.After != nil {
			if err := m.After(p, model); err != nil {
				return c, fmt.Errorf("after pass %q: %w", p.Name, err)
			}
		}
	}
	c.current = nil
	return c, nil
}
