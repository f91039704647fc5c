package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/train"
)

// trainFixture makes a tiny model with its tokenizer, converts it to a bundle (lskip,cskip) and
// generates a three-class data set, in a temporary folder it returns.
func trainFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for _, c := range data.SyntheticClasses(3) {
		names = append(names, data.DisplayName(c))
	}
	model, err := synth.WriteDemo(filepath.Join(dir, "model"), synth.PromptWords(names, []string{data.DefaultTemplate}), 2)
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.LoadSource(model)
	if err != nil {
		t.Fatal(err)
	}
	specs := []bundle.StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: cskip.Strategy{}}}
	if _, err := bundle.Convert(context.Background(), src, filepath.Join(dir, "bundle"), bundle.Options{Strategies: specs}); err != nil {
		t.Fatal(err)
	}
	if err := data.GenerateDataset(filepath.Join(dir, "data"), 3, 4, 32, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyTree copies a folder of plain files.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrainCLI: train, eval and export through the CLI, and resume refusing a finished run.
func TestTrainCLI(t *testing.T) {
	fix := trainFixture(t)
	tmp := t.TempDir()
	run := filepath.Join(tmp, "run")
	b := filepath.Join(fix, "bundle")
	code, stdout, stderr := runCLI("train", b, "--data", filepath.Join(fix, "data"), "-o", run, "--epochs", "2", "--batch", "4", "--lr-text", "0.05", "--lr-vision", "0.05", "--threads", "1")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, f := range []string{train.MetricsFile, train.PlotFile, train.RunFile, train.ParamsFile, filepath.Join(train.CheckpointsDir, "epoch-2", train.CheckpointFile)} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("train wrote no %s: %v\n%s", f, err, stdout)
		}
	}
	png := filepath.Join(tmp, "confusion.png")
	code, stdout, stderr = runCLI("eval", b, "--params", run, "--data", filepath.Join(fix, "data"), "--confusion", png)
	if code != 0 || !strings.Contains(stdout, "top-1") {
		t.Fatalf("eval: exit %d: %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(png); err != nil {
		t.Error(err)
	}
	model := filepath.Join(tmp, "tuned.onnx")
	if code, _, stderr = runCLI("export", b, "--params", run, "-o", model); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	code, stdout, stderr = runCLI("eval", model, "--data", filepath.Join(fix, "data"), "--tokenizer", filepath.Join(fix, "model"), "--confusion", "")
	if code != 0 || !strings.Contains(stdout, "top-1") {
		t.Fatalf("eval of the export: exit %d: %s%s", code, stdout, stderr)
	}
	if code, _, stderr = runCLI("train", "--resume", run); code != 2 || !strings.Contains(stderr, "already finished") {
		t.Errorf("resuming a finished run: exit %d: %s", code, stderr)
	}
}

// TestTrainBadInput: each bad input gets exit code 2, one line naming the culprit, and no
// output written.
func TestTrainBadInput(t *testing.T) {
	fix := trainFixture(t)
	b := filepath.Join(fix, "bundle")
	dataDir := filepath.Join(fix, "data")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, tmp string) []string // returns the arguments
		want  []string
	}{
		{"empty data folder", func(t *testing.T, tmp string) []string {
			os.Mkdir(filepath.Join(tmp, "empty"), 0o755)
			return []string{"train", b, "--data", filepath.Join(tmp, "empty"), "-o", filepath.Join(tmp, "out")}
		}, []string{"empty", "no class sub-folders"}},
		{"class without images", func(t *testing.T, tmp string) []string {
			d := filepath.Join(tmp, "d")
			copyTree(t, dataDir, d)
			os.Remove(filepath.Join(d, data.ClassesFile))
			os.Mkdir(filepath.Join(d, "zzz_empty"), 0o755)
			return []string{"train", b, "--data", d, "-o", filepath.Join(tmp, "out")}
		}, []string{"zzz_empty", "no .jpg, .jpeg or .png images"}},
		{"corrupt image", func(t *testing.T, tmp string) []string {
			d := filepath.Join(tmp, "d")
			copyTree(t, dataDir, d)
			bad := filepath.Join(d, data.SyntheticClasses(3)[1], "0002.png")
			os.WriteFile(bad, []byte("not a png at all"), 0o644)
			return []string{"train", b, "--data", d, "-o", filepath.Join(tmp, "out")}
		}, []string{"0002.png"}},
		{"tokenizer of another vocabulary", func(t *testing.T, tmp string) []string {
			if _, err := synth.WriteTokenizer(filepath.Join(tmp, "tok"), []string{"photo"}); err != nil {
				t.Fatal(err)
			}
			return []string{"train", b, "--data", dataDir, "-o", filepath.Join(tmp, "out"), "--tokenizer", filepath.Join(tmp, "tok")}
		}, []string{"tokenizer.json", "token embedding has", "rows"}},
		{"output folder holds a run", func(t *testing.T, tmp string) []string {
			o := filepath.Join(tmp, "out")
			os.MkdirAll(o, 0o755)
			os.WriteFile(filepath.Join(o, train.MetricsFile), []byte("{}\n"), 0o644)
			return []string{"train", b, "--data", dataDir, "-o", o}
		}, []string{"already holds files", "--resume", "--force"}},
		{"export from a changed source", func(t *testing.T, tmp string) []string {
			src := filepath.Join(tmp, "src")
			copyTree(t, filepath.Join(fix, "model"), src)
			s, err := bundle.LoadSource(filepath.Join(src, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			nb := filepath.Join(tmp, "bundle")
			if _, err := bundle.Convert(context.Background(), s, nb, bundle.Options{Strategies: []bundle.StrategySpec{{Strategy: lskip.Strategy{}}}}); err != nil {
				t.Fatal(err)
			}
			params, err := bundle.InitialParams(nb, mustManifest(t, nb))
			if err != nil {
				t.Fatal(err)
			}
			pd := filepath.Join(tmp, "params")
			os.Mkdir(pd, 0o755)
			if err := train.SaveTensors(pd, params); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(filepath.Join(src, "model.onnx"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0})
			f.Close()
			return []string{"export", nb, "--params", pd, "-o", filepath.Join(tmp, "out")}
		}, []string{"model.onnx", "sha256", "--source"}},
		{"export from a moved source", func(t *testing.T, tmp string) []string {
			pd := filepath.Join(tmp, "params")
			os.Mkdir(pd, 0o755)
			params, _ := bundle.InitialParams(b, mustManifest(t, b))
			train.SaveTensors(pd, params)
			return []string{"export", b, "--params", pd, "--source", filepath.Join(tmp, "gone.onnx"), "-o", filepath.Join(tmp, "out")}
		}, []string{"--source", "gone.onnx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			args := tc.setup(t, tmp)
			var before []string
			if _, err := os.Stat(filepath.Join(tmp, "out")); err == nil {
				before = listTree(t, filepath.Join(tmp, "out"))
			}
			code, _, stderr := runCLI(args...)
			checkInputError(t, code, stderr, tc.want...)
			after := []string(nil)
			if _, err := os.Stat(filepath.Join(tmp, "out")); err == nil {
				after = listTree(t, filepath.Join(tmp, "out"))
			}
			if strings.Join(before, ",") != strings.Join(after, ",") {
				t.Errorf("output changed: %v -> %v", before, after)
			}
		})
	}
}

func mustManifest(t *testing.T, dir string) *bundle.Manifest {
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func listTree(t *testing.T, dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			out = append(out, p)
		}
		return nil
	})
	return out
}
