package main

import (
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// resaveModel loads a model and saves it unchanged.
func resaveModel(t *testing.T, from, to string) {
	t.Helper()
	m, err := onnxio.Load(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := onnxio.Save(m, to, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// writeCyclic saves a copy of a model in which the first node reads the last node's output.
func writeCyclic(t *testing.T, from, to string) string {
	t.Helper()
	m, err := onnxio.Load(from)
	if err != nil {
		t.Fatal(err)
	}
	nodes := m.Graph.Nodes()
	var first = -1
	for i, n := range nodes {
		if n.NumInputs() > 0 && n.Input(0) != nil && !n.Input(0).IsGraphInput() && n.Input(0).Const == nil {
			first = i
			break
		}
	}
	last := nodes[len(nodes)-1]
	nodes[first].SetInput(0, last.Output(0))
	// encode without verifying: the codec writes what the IR holds
	if err := onnxio.Save(m, to, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return to
}

// checkInputError fails t unless a CLI run ended with exit code 2 and one line of standard
// error holding every string of want.
func checkInputError(t *testing.T, code int, stderr string, want ...string) {
	t.Helper()
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("want one line, got:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("message lacks %q: %s", w, stderr)
		}
	}
}
