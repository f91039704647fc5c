package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// pythonPlugin returns the example Python plugin, skipping the test (unless
// SKIPGRAPH_REQUIRE_PYTHON_GRPC is set, as in CI) when Debian's python3-grpcio is missing.
func pythonPlugin(t *testing.T) string {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf").Run(); err != nil {
		testenv.Missing(t, "SKIPGRAPH_REQUIRE_PYTHON_GRPC", "/usr/bin/python3 cannot import grpc (install Debian's python3-grpcio): "+err.Error())
	}
	return filepath.Join(testenv.RepoRoot(t), "examples", "python-strategy", "skipgraph-strategy-pyskip")
}

// TestPythonPlugin: the Python strategy, loaded with --plugin, converts the fixture into the
// same graphs as the built-in LSkip, reads a weight from the host through the broker, and the
// bundle trains.
func TestPythonPlugin(t *testing.T) {
	py := pythonPlugin(t)
	fix := trainFixture(t)
	model := filepath.Join(fix, "model", "model.onnx")
	tmp := t.TempDir()
	pyBundle, lsBundle := filepath.Join(tmp, "py"), filepath.Join(tmp, "lskip")
	if code, _, stderr := runCLI("convert", model, "-o", pyBundle, "--plugin", py, "--strategy", "pyskip", "--set", "pyskip.start=1"); code != 0 {
		t.Fatalf("convert with the Python plugin: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI("convert", model, "-o", lsBundle, "--strategy", "lskip", "--lskip-start", "1"); code != 0 {
		t.Fatalf("convert with lskip: exit %d: %s", code, stderr)
	}
	pm, lm := mustManifest(t, pyBundle), mustManifest(t, lsBundle)
	for i, p := range pm.Parameters {
		if p.Trainable != lm.Parameters[i].Trainable {
			t.Errorf("parameter %s: trainable %v with pyskip, %v with lskip", p.Initializer, p.Trainable, lm.Parameters[i].Trainable)
		}
	}
	// The same graphs, once the strategy named in the metadata is set aside.
	for key, g := range lm.Graphs {
		if dumpGraph(t, filepath.Join(pyBundle, g.File)) != dumpGraph(t, filepath.Join(lsBundle, g.File)) {
			t.Errorf("%s differs between pyskip and lskip", key)
		}
	}
	// The plugin read the logit scale's initial value from the host.
	got, err := strconv.ParseFloat(pm.Strategies[0].Params["logit-scale-init"], 64)
	if err != nil || math.Abs(math.Exp(got)-pm.LogitScale) > 1e-3*pm.LogitScale {
		t.Errorf("logit-scale-init %q (%v), want log(%g)", pm.Strategies[0].Params["logit-scale-init"], err, pm.LogitScale)
	}

	run := filepath.Join(tmp, "run")
	code, stdout, stderr := runCLI("train", pyBundle, "--data", filepath.Join(fix, "data"), "-o", run, "--epochs", "2", "--batch", "4", "--lr-text", "0.05", "--lr-vision", "0.05", "--no-augment", "--threads", "1")
	if code != 0 {
		t.Fatalf("train the Python plugin's bundle: exit %d: %s", code, stderr)
	}
	var losses []float64
	b, _ := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r struct {
			Type string  `json:"type"`
			Loss float64 `json:"loss"`
		}
		if json.Unmarshal(line, &r) == nil && r.Type == "step" {
			losses = append(losses, r.Loss)
		}
	}
	if len(losses) < 2 || math.IsNaN(losses[len(losses)-1]) {
		t.Fatalf("losses %v\n%s", losses, stdout)
	}
}

// dumpGraph renders a model's graph as text (nodes, values, initializers), leaving out the
// file's metadata.
func dumpGraph(t *testing.T, path string) string {
	t.Helper()
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := m.Graph.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPythonStubsCurrent: the Python stubs committed beside the example are what
// python3-grpc-tools generates from plugin.proto today.
func TestPythonStubsCurrent(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc_tools.protoc").Run(); err != nil {
		testenv.Missing(t, "SKIPGRAPH_REQUIRE_PYTHON_GRPC", "/usr/bin/python3 has no grpc_tools (install Debian's python3-grpc-tools)")
	}
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", filepath.Join(root, "plugin", "pluginpb"),
		"--python_out="+out, "--grpc_python_out="+out, "plugin.proto")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for _, f := range []string{"plugin_pb2.py", "plugin_pb2_grpc.py"} {
		want, _ := os.ReadFile(filepath.Join(out, f))
		got, err := os.ReadFile(filepath.Join(root, "examples", "python-strategy", "pluginpb", f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("examples/python-strategy/pluginpb/%s is stale (%v); run examples/python-strategy/generate.sh", f, err)
		}
	}
}
