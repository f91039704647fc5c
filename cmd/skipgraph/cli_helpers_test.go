package main

import (
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
