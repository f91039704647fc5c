package rewrite

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
)

func small(t *testing.T) *graph.Model {
	t.Helper()
	g := graph.New("g")
	x, _ := g.AddInput("x", graph.TensorType(graph.Float, 2))
	unused, _ := g.AddInitializer("unused", graph.FromFloat32([]int64{1}, []float32{1}))
	_ = unused
	neg := g.NewNode("Neg", "", "neg", []*graph.Value{x}, []string{"y"})
	dead := g.NewNode("Exp", "", "dead", []*graph.Value{x}, []string{"d"})
	g.NewNode("Sqrt", "", "dead2", []*graph.Value{dead.Output(0)}, []string{"d2"})
	g.AddOutput(neg.Output(0))
	return &graph.Model{Graph: g, Opsets: []graph.Opset{{Version: 17}}}
}

func TestDCE(t *testing.T) {
	m := small(t)
	changed, err := EliminateDeadCode(m.Graph)
	if err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	if m.Graph.NumNodes() != 1 || m.Graph.Value("unused") != nil || len(m.Graph.Initializers) != 0 {
		t.Fatalf("after DCE:\n%s", m.Graph)
	}
	changed, err = EliminateDeadCode(m.Graph)
	if err != nil || changed {
		t.Fatalf("second run: changed %v err %v", changed, err)
	}
}

func TestManager(t *testing.T) {
	breaker := &Pass{Name: "breaker", Doc: "leaves a dangling input", Run: func(c *Context) (bool, error) {
		n := c.Graph().Nodes()[0]
		n.SetInput(0, &graph.Value{Name: "ghost"})
		return true, nil
	}}
	failing := &Pass{Name: "failing", Doc: "fails", Run: func(*Context) (bool, error) {
		return false, errors.New("boom")
	}}
	needsDCE := &Pass{Name: "late", Doc: "needs dce", Requires: []*Pass{DCE}, Run: func(*Context) (bool, error) { return false, nil }}
	cases := []struct {
		name  string
		steps []*Pass
		dump  string
		want  string
	}{
		{"ok", []*Pass{DCE, needsDCE}, "dce", ""},
		{"order", []*Pass{needsDCE, DCE}, "", `pass "late" requires "dce"`},
		{"wrapped", []*Pass{failing}, "", `pass "failing": boom`},
		{"verified", []*Pass{breaker}, "", `pass "breaker" left an invalid graph`},
		{"dump unknown", []*Pass{DCE}, "nope", `cannot dump after pass "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			m := NewManager(tc.steps...)
			m.DumpAfter, m.DumpTo = tc.dump, &buf
			_, err := m.Run(small(t))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.dump != "" && !strings.Contains(buf.String(), "y = Neg(x)") {
					t.Fatalf("dump missing: %q", buf.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	if p, ok := Lookup("dce"); !ok || p != DCE {
		t.Fatal("dce not registered")
	}
	if _, ok := Lookup("no-such-pass"); ok {
		t.Fatal("Lookup found a pass that does not exist")
	}
}

// TestResults checks that a pass's typed result reaches a later pass, and that the pipeline's
// input reaches every pass.
func TestResults(t *testing.T) {
	type count struct{ nodes int }
	counter := &Pass{Name: "count", Doc: "counts nodes", Run: func(c *Context) (bool, error) {
		c.SetResult(&count{nodes: c.Graph().NumNodes()})
		return false, nil
	}}
	var got []int
	reader := &Pass{Name: "read", Doc: "reads the count", Requires: []*Pass{counter}, Run: func(c *Context) (bool, error) {
		r, ok := ResultOf[*count](c, counter)
		if !ok {
			t.Fatal("no result from count")
		}
		got = append(got, r.nodes, EnvOf[int](c))
		return false, nil
	}}
	m := NewManager(counter, DCE, counter, reader)
	m.Env = 7
	if _, err := m.Run(small(t)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 7 {
		t.Fatalf("reader saw %v, want [1 7] (the count after dce, the input)", got)
	}
}
