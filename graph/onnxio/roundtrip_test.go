package onnxio_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// firstDiff returns the first position where a and b differ.
func firstDiff(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestFixtureRoundTripIdentical(t *testing.T) {
	path := fixture(t)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(t *testing.T) []byte
	}{
		{"Load+Save", func(t *testing.T) []byte {
			m, err := onnxio.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.onnx")
			if err := onnxio.Save(m, out, onnxio.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}},
		{"Decode+Encode", func(t *testing.T) []byte {
			m, err := onnxio.Decode(slices.Clone(want), filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			got, err := onnxio.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}},
		{"Load+Clone+Write", func(t *testing.T) []byte {
			m, err := onnxio.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := onnxio.Write(&buf, m.Clone()); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run(t)
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from the input at byte %d (lengths %d and %d)", firstDiff(got, want), len(got), len(want))
			}
		})
	}
}

func TestFixtureInfo(t *testing.T) {
	m, err := onnxio.Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	info := onnxio.ModelInfo(m)
	if info.ProducerName != "pytorch" || m.IRVersion == 0 || m.Opset("") != 14 {
		t.Fatalf("info %+v, IR %d, opsets %v", info, m.IRVersion, m.Opsets)
	}
	onnxio.SetProducer(m, "skipgraph", "test")
	onnxio.SetMetadata(m, "k", "v")
	b, err := onnxio.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := onnxio.Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	info = onnxio.ModelInfo(m2)
	if info.ProducerName != "skipgraph" || info.ProducerVersion != "test" || len(info.Metadata) != 1 || info.Metadata[0] != (onnxio.Metadata{Key: "k", Value: "v"}) {
		t.Fatalf("after edit: %+v", info)
	}
}

// dumpLines returns the graph's text dump as lines.
func dumpLines(t *testing.T, g *graph.Graph) []string {
	var sb strings.Builder
	if err := g.Dump(&sb); err != nil {
		t.Fatal(err)
	}
	return strings.Split(sb.String(), "\n")
}

func TestFixtureEditSaveReload(t *testing.T) {
	path := fixture(t)
	orig, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	// Rename a node, change an attribute of another, replace an initializer.
	var renamed, changed *graph.Node
	for _, n := range g.Nodes() {
		if renamed == nil && n.OpType == "MatMul" {
			renamed = n
		}
		if changed == nil && n.OpType == "Softmax" {
			changed = n
		}
	}
	if renamed == nil || changed == nil {
		t.Fatal("the fixture lacks a MatMul or a Softmax node")
	}
	oldName := renamed.Name
	renamed.Name = "renamed_matmul"
	changed.SetAttr(graph.IntAttr("axis", 1))
	var init *graph.Value
	for _, v := range g.Initializers {
		if v.Const.DType == graph.Float && v.Const.NumElements() > 16 {
			init = v
			break
		}
	}
	vals := make([]float32, init.Const.NumElements())
	for i := range vals {
		vals[i] = float32(i)
	}
	init.Const = graph.FromFloat32(init.Const.Dims, vals)

	out := filepath.Join(t.TempDir(), "edited.onnx")
	if err := onnxio.Save(m, out, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	back, err := onnxio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	bg := back.Graph
	var found bool
	for _, n := range bg.Nodes() {
		if n.Name == "renamed_matmul" {
			found = true
		}
		if n.Name == oldName {
			t.Errorf("old node name %q still present", oldName)
		}
		if n.Name == changed.Name && n.AttrInt("axis", -99) != 1 {
			t.Errorf("node %s: axis %d, want 1", n, n.AttrInt("axis", -99))
		}
	}
	if !found {
		t.Error("renamed node not found after reload")
	}
	got, err := bg.Value(init.Name).Const.Float32s()
	if err != nil || !slices.Equal(got, vals) {
		t.Errorf("replaced initializer %q not read back (%v)", init.Name, err)
	}
	// Everything else is unchanged: other initializers' bytes, and the dump but for the edits.
	for _, v := range orig.Graph.Initializers {
		if v.Name == init.Name {
			continue
		}
		a, _ := v.Const.Bytes()
		b, err := bg.Value(v.Name).Const.Bytes()
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("initializer %q changed", v.Name)
		}
	}
	before, after := dumpLines(t, orig.Graph), dumpLines(t, bg)
	if len(before) != len(after) {
		t.Fatalf("dump has %d lines, want %d", len(after), len(before))
	}
	diff := 0
	for i := range before {
		if before[i] != after[i] {
			diff++
		}
	}
	if diff > 3 {
		t.Errorf("%d dump lines differ, want at most 3 (the edits)", diff)
	}
}

func TestSmallModelRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := testmodelSmall()
	p := filepath.Join(dir, "small.onnx")
	if err := onnxio.Save(m, p, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(p)
	back, err := onnxio.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	assertSameModel(t, m, back)
	again, err := onnxio.Encode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatalf("re-encoding differs at byte %d", firstDiff(first, again))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the folder holds %d files, want only the model", len(entries))
	}
}

// assertSameModel checks that two models have the same dump and the same initializer data.
func assertSameModel(t *testing.T, a, b *graph.Model) {
	t.Helper()
	da, db := dumpLines(t, a.Graph), dumpLines(t, b.Graph)
	if !slices.Equal(da, db) {
		t.Fatalf("graphs differ:\n%s\n---\n%s", strings.Join(da, "\n"), strings.Join(db, "\n"))
	}
	for _, v := range a.Graph.Initializers {
		x, err1 := v.Const.Bytes()
		w := b.Graph.Value(v.Name)
		if w == nil || w.Const == nil {
			t.Fatalf("initializer %q missing", v.Name)
		}
		y, err2 := w.Const.Bytes()
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) || !slices.Equal(v.Const.Dims, w.Const.Dims) || v.Const.DType != w.Const.DType {
			t.Fatalf("initializer %q differs (%v, %v)", v.Name, err1, err2)
		}
	}
}

func TestFailedSaveLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(p, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := testmodelSmall()
	bad := graph.NewLazyTensor(graph.Float, []int64{1 << 20}, 4<<20, func() ([]byte, error) {
		return nil, os.ErrDeadlineExceeded
	}, nil)
	if _, err := m.Graph.AddInitializer("unreadable", bad); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []onnxio.SaveOptions{{}, {ExternalData: true}} {
		if err := onnxio.Save(m, p, opts); err == nil || !strings.Contains(err.Error(), "unreadable") {
			t.Fatalf("save with an unreadable tensor: %v", err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the folder holds %d entries after failed saves, want 1", len(entries))
	}
	if b, _ := os.ReadFile(p); string(b) != "previous" {
		t.Fatal("a failed save changed the existing file")
	}
}

func TestFixtureStructuralEdits(t *testing.T) {
	m, err := onnxio.Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	m.SetOpset("", 17)
	m.SetOpset("com.example", 1)
	out := g.Outputs[0]
	id := g.NewNode("Identity", "", "extra_identity", []*graph.Value{out}, []string{"extra_out"})
	id.Output(0).Type = out.Type
	g.AddOutput(id.Output(0))
	g.Doc = "edited"
	b, err := onnxio.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnxio.Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	if back.Opset("") != 17 || back.Opset("com.example") != 1 || len(back.Opsets) != 2 {
		t.Errorf("opsets %v", back.Opsets)
	}
	v := back.Graph.Value("extra_out")
	if v == nil || !v.IsGraphOutput() || !v.Type.Equal(out.Type) || back.Graph.Doc != "edited" {
		t.Fatalf("new output %v not read back (doc %q)", v, back.Graph.Doc)
	}
	if n, _ := v.Producer(); n == nil || n.Name != "extra_identity" || n.Input(0).Name != out.Name {
		t.Fatalf("new node not read back: %v", n)
	}
	if back.Graph.NumNodes() != g.NumNodes() {
		t.Fatalf("%d nodes, want %d", back.Graph.NumNodes(), g.NumNodes())
	}
}
