package plugin_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugin"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// source loads the reference fixture once per test.
func source(t *testing.T) *bundle.SourceModel {
	t.Helper()
	src, err := bundle.LoadSource(filepath.Join(testenv.Fixture(t, "clip-hf-tiny"), "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// open starts a plugin binary, stopping it when the test ends.
func open(t *testing.T, name string, timeout time.Duration) *plugin.Plugin {
	t.Helper()
	bins(t)
	p, err := plugin.Open(context.Background(), bin(name), plugin.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestConformance: the built-in strategies give byte-identical bundles in-process and as plugin
// binaries, manifest included.
func TestConformance(t *testing.T) {
	src := source(t)
	ls, cs := open(t, "lskip", 0), open(t, "cskip", 0)
	for _, tc := range []struct {
		name    string
		builtin []bundle.StrategySpec
		plugged []bundle.StrategySpec
	}{
		{"lskip", []bundle.StrategySpec{{Strategy: lskip.Strategy{}}}, []bundle.StrategySpec{{Strategy: ls}}},
		{"lskip-start1+cskip",
			[]bundle.StrategySpec{{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}, {Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5", "seed": "7"}}},
			[]bundle.StrategySpec{{Strategy: ls, Args: map[string]string{"start": "1"}}, {Strategy: cs, Args: map[string]string{"ratio": "0.5", "seed": "7"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			ctx := plugin.WithTensors(context.Background(), plugin.ModelTensors(src.Model))
			a, b := filepath.Join(tmp, "builtin"), filepath.Join(tmp, "plugin")
			if _, err := bundle.Convert(ctx, src, a, bundle.Options{Strategies: tc.builtin}); err != nil {
				t.Fatal(err)
			}
			if _, err := bundle.Convert(ctx, src, b, bundle.Options{Strategies: tc.plugged}); err != nil {
				t.Fatal(err)
			}
			fa, fb := readTree(t, a), readTree(t, b)
			if len(fa) != len(fb) {
				t.Fatalf("in-process bundle has %d files, plugin bundle %d", len(fa), len(fb))
			}
			for name, data := range fa {
				if !bytes.Equal(data, fb[name]) {
					t.Errorf("%s differs between the in-process and the plugin bundle", name)
				}
			}
			t.Logf("%d files identical", len(fa))
		})
	}
}

// TestExample: the example plugin, built from its own folder, converts the fixture, trains
// exactly the attention projections of the deep layers, and the bundle trains on ONNX Runtime.
func TestExample(t *testing.T) {
	src := source(t)
	p := open(t, "attnonly", 0)
	out := filepath.Join(t.TempDir(), "bundle")
	man, err := bundle.Convert(context.Background(), src, out, bundle.Options{Strategies: []bundle.StrategySpec{{Strategy: p, Args: map[string]string{"start": "1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, tw := range src.Structure.Towers() {
		for _, l := range tw.Layers[1:] {
			a := l.Attention
			for _, n := range []string{a.Q.Weight, a.Q.Bias, a.K.Weight, a.K.Bias, a.V.Weight, a.V.Bias, a.Out.Weight, a.Out.Bias} {
				if n != "" {
					want[n] = true
				}
			}
		}
	}
	got := man.Trainable()
	if len(got) != len(want) {
		t.Errorf("%d trainable parameters, want the %d attention projections", len(got), len(want))
	}
	for _, prm := range got {
		if !want[prm.Initializer] {
			t.Errorf("%s trains, but it is not an attention projection of layer >= 1", prm.Initializer)
		}
	}
	if man.Graphs["features"] == nil {
		t.Fatal("no features.onnx: the frozen prefix is not cached")
	}

	// Train a few steps on the fixture's batch.
	dir := testenv.Fixture(t, "clip-hf-tiny")
	inputs, err := tensorio.LoadJSONMap(filepath.Join(dir, "reference.json"), "inputs")
	if err != nil {
		t.Fatal(err)
	}
	labels := testenv.Tensor(t, testenv.LoadJSON(t, filepath.Join(dir, "reference.json"))["labels"])
	run := bundle.NewRunner(out, man, nil)
	inputs["labels"] = labels
	if _, err := run.Features(inputs); err != nil {
		t.Fatal(err)
	}
	st, err := run.OpenFed(inputs, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var losses []float64
	for step := 1; step <= 4; step++ {
		st.FeedScalar("step", float64(step))
		loss, err := st.Step()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, loss)
	}
	t.Logf("losses %v", losses)
	for i := 1; i < len(losses); i++ {
		if !(losses[i] < losses[i-1]) {
			t.Fatalf("loss does not decrease: %v", losses)
		}
	}
}

// TestMisbehaving: a plugin that crashes, hangs, answers garbage or patches a node that does not
// exist is reported in one line naming it, as an input error; nothing is written and the process
// is gone.
func TestMisbehaving(t *testing.T) {
	src := source(t)
	bins(t)
	for _, tc := range []struct {
		mode string
		want string
	}{
		{"crash", "crashed during Plan (panic: boom)"},
		{"hang", "did not answer Plan within 1s"},
		{"hangstart", "did not complete the handshake within 1s"},
		{"exit", "exited before the handshake (misbehave: refusing to start)"},
		{"malformed", "returned a malformed plan: json: cannot unmarshal number"},
		{"badpatch", `returned an invalid plan: patch rewires node "no/such/node", which does not exist`},
		{"cycle", `returned an invalid plan: patch makes a cycle through node`},
		{"v2", "speaks skipgraph plugin protocol 2, but this skipgraph speaks protocol 1"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			tmp := t.TempDir()
			start := time.Now()
			err := func() error {
				p, err := plugin.Open(context.Background(), bin(tc.mode), plugin.Options{Timeout: time.Second})
				if err != nil {
					return err
				}
				defer p.Close()
				_, err = bundle.Convert(context.Background(), src, filepath.Join(tmp, "out"), bundle.Options{Strategies: []bundle.StrategySpec{{Strategy: p}}})
				if err == nil {
					t.Fatal("no error")
				}
				if !p.Closed() && tc.mode != "malformed" && tc.mode != "badpatch" && tc.mode != "cycle" {
					t.Error("the plugin process is still running")
				}
				return err
			}()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Logf("%s (%.1fs)", msg, time.Since(start).Seconds())
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, bin(tc.mode)) {
				t.Errorf("error %q does not say %q and name %s", msg, tc.want, bin(tc.mode))
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine ") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !errs.IsInput(err) {
				t.Errorf("not an input error (exit 2): %v", err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("something was written: %v", ents)
			}
		})
	}
}

// TestTensors: a plugin reads the largest weight of a ViT-B/16-size model from the host in
// chunks and gets the host's values.
func TestTensors(t *testing.T) {
	res, err := synth.Build(synth.Config{Style: "hf", Size: "vit-b-16", Opset: 17})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	req := request(t, m)
	p := open(t, "tensors", 0)
	ctx := plugin.WithTensors(context.Background(), plugin.ModelTensors(m))
	plan, err := p.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.Graph.Value(plan.Params["name"]).Const.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, x := range w {
		sum += float64(x)
	}
	if n, _ := strconv.Atoi(plan.Params["n"]); n != len(w) || plan.Params["sum"] != strconv.FormatFloat(sum, 'g', -1, 64) {
		t.Fatalf("plugin read %s elements summing to %s; host has %d summing to %g", plan.Params["n"], plan.Params["sum"], len(w), sum)
	}
	t.Logf("%s: %d elements (%d chunks)", plan.Params["name"], len(w), (4*len(w)+plugin.MaxChunkBytes-1)/plugin.MaxChunkBytes)

	// Without tensors attached, the plugin's read fails with a message, not a crash.
	if _, err := p.Plan(context.Background(), req); err == nil || !strings.Contains(err.Error(), "no tensor data") {
		t.Fatalf("want a no-tensor-data error, got %v", err)
	}
}

func TestCatalog(t *testing.T) {
	dir := bins(t)
	other := t.TempDir()
	if err := os.Link(bin("lskip"), filepath.Join(other, "lskip-renamed")); err != nil {
		t.Fatal(err)
	}
	cands, err := plugin.Find([]string{filepath.Join(other, "lskip-renamed")}, []string{dir, filepath.Join(other, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	cat := plugin.NewCatalog(cands, plugin.Options{Timeout: 2 * time.Second})
	defer cat.Close()
	for _, tc := range []struct {
		name     string
		explicit bool
		path     string
		err      string
	}{
		{"lskip", true, filepath.Join(other, "lskip-renamed"), ""},
		{"lskip", false, bin("lskip"), ""},
		{"attnonly", false, bin("attnonly"), ""},
		{"attnonly", true, "", ""},
		{"nosuch", false, "", ""},
		{"exit", false, "", "exited before the handshake"},
	} {
		p, err := cat.Lookup(context.Background(), tc.name, tc.explicit)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Lookup(%s): error %v, want %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("Lookup(%s, %v): %v", tc.name, tc.explicit, err)
		case tc.path == "" && p != nil:
			t.Errorf("Lookup(%s, %v) = %s, want none", tc.name, tc.explicit, p.Path())
		case tc.path != "" && (p == nil || p.Path() != tc.path):
			t.Errorf("Lookup(%s, %v) = %v, want %s", tc.name, tc.explicit, p, tc.path)
		}
	}
}

// request builds a planning request for a model, as bundle.Plan does.
func request(t testing.TB, m *graph.Model) *strategy.Request {
	t.Helper()
	st, err := clip.Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := strategy.ResolveArgs(lskip.Strategy{}.Info(), nil)
	return &strategy.Request{Skeleton: strategy.SkeletonOf(m), Structure: st, Args: args, Prior: &strategy.Plan{}}
}
