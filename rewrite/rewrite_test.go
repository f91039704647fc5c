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
	breaker := &Pass{Name: "breaker", Doc: "leaves a dangling input", Run: func(c *Context, _ Args) (bool, error) {
		n := c.Graph().Nodes()[0]
		n.SetInput(0, &graph.Value{Name: "ghost"})
		return true, nil
	}}
	failing := &Pass{Name: "failing", Doc: "fails", Run: func(*Context, Args) (bool, error) {
		return false, errors.New("boom")
	}}
	needsDCE := &Pass{Name: "late", Doc: "needs dce", Requires: []string{"dce"}, Run: func(*Context, Args) (bool, error) { return false, nil }}
	cases := []struct {
		name  string
		steps []Step
		dump  string
		want  string
	}{
		{"ok", []Step{{Pass: DCE}, {Pass: needsDCE}}, "dce", ""},
		{"order", []Step{{Pass: needsDCE}, {Pass: DCE}}, "", `pass "late" requires "dce"`},
		{"wrapped", []Step{{Pass: failing}}, "", `pass "failing": boom`},
		{"verified", []Step{{Pass: breaker}}, "", `pass "breaker" left an invalid graph`},
		{"dump unknown", []Step{{Pass: DCE}}, "nope", `cannot dump after pass "nope"`},
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
	m := &Manager{}
	if err := m.Add("no-such-pass", nil); err == nil || !strings.Contains(err.Error(), "dce") {
		t.Fatalf("Add unknown: %v", err)
	}
}
