package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/train"
)

// TestBaseToNewCLI trains a bundle on the base classes and evaluates it on the new ones with
// their own prompts, without retraining; the run folder records the images drawn.
func TestBaseToNewCLI(t *testing.T) {
	dir := trainFixture(t) // 3 classes: 2 base, 1 new
	run := filepath.Join(dir, "run")
	code, _, stderr := runCLI("train", filepath.Join(dir, "bundle"), "--data", filepath.Join(dir, "data"), "-o", run,
		"--classes", "base", "--shots", "2", "--seed", "3", "--epochs", "1", "--threads", "1", "-q")
	if code != 0 {
		t.Fatalf("train --classes base: exit %d: %s", code, stderr)
	}
	var rec data.DrawRecord
	b, err := os.ReadFile(filepath.Join(run, train.DrawFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Classes != "base" || len(rec.ClassNames) != 2 || len(rec.Train) != 4 || rec.Seed != 3 || rec.Shots != 2 {
		t.Errorf("draw record: %s %q, %d images, seed %d, shots %d", rec.Classes, rec.ClassNames, len(rec.Train), rec.Seed, rec.Shots)
	}
	names := data.SyntheticClasses(3)
	for _, tt := range []struct {
		classes string
		want    []string
		not     []string
	}{
		{"new", []string{data.DisplayName(names[2])}, []string{data.DisplayName(names[0]), data.DisplayName(names[1])}},
		{"base", []string{data.DisplayName(names[0]), data.DisplayName(names[1])}, []string{data.DisplayName(names[2])}},
	} {
		code, stdout, stderr := runCLI("eval", filepath.Join(dir, "bundle"), "--params", run, "--data", filepath.Join(dir, "data"),
			"--classes", tt.classes, "--confusion", "", "--threads", "1")
		if code != 0 {
			t.Fatalf("eval --classes %s: exit %d: %s", tt.classes, code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("eval --classes %s does not list %q:\n%s", tt.classes, w, stdout)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(stdout, w) {
				t.Errorf("eval --classes %s lists %q:\n%s", tt.classes, w, stdout)
			}
		}
	}
}

func TestProtocolBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	escape := write("split_zhou_Escape.json", `{"train": [["../outside.png", 0, "a"]]}`)
	malformed := write("split_zhou_Bad.json", `{"train": [["a.png", "zero", "a"]]}`)
	model := write("model.onnx", "not used: the split is read first")
	cfg := write("bad.yaml", "model: m.onnx\ndatasets: [{name: a, data: a}]\nepochs: 3\n")
	good := write("good.yaml", "model: m.onnx\ndatasets: [{name: a, data: a}]\n")
	gen := filepath.Join(dir, "gen")
	if err := data.GenerateDataset(gen, 2, 1, 8, 1); err != nil {
		t.Fatal(err)
	}
	var idx bytes.Buffer
	idx.Write([]byte{0, 0, 8, 1})
	binary.Write(&idx, binary.BigEndian, uint32(2))
	idx.Write([]byte{0, 1})
	labels := write("labels.idx", idx.String())
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"escaping split entry", []string{"eval", model, "--data", root, "--split-file", escape}, "leaves the data root"},
		{"malformed split entry", []string{"eval", model, "--data", root, "--split-file", malformed}, "train[0]"},
		{"bad class subset", []string{"eval", model, "--data", gen, "--classes", "novel"}, `class subset "novel": want base, new or all`},
		{"unknown config key", []string{"experiment", cfg}, "field epochs not found"},
		{"bad shard", []string{"experiment", good, "-o", filepath.Join(dir, "o"), "--shard", "2/2"}, "want I/N"},
		{"collect with shard", []string{"experiment", good, "--collect", "--shard", "0/2"}, "drop --shard"},
		{"collect before any run", []string{"experiment", good, "-o", filepath.Join(dir, "none"), "--collect"}, "run the experiment"},
		{"no experiment folder", []string{"experiment", good}, "no experiment folder"},
		{"missing data folder", []string{"experiment", good, "-o", filepath.Join(dir, "o")}, "data set a: " + filepath.Join(dir, "a") + ": no such file or directory; fix its data: entry"},
		{"labels as images", []string{"data", "import-idx", "--images", labels, "--labels", labels, "-o", filepath.Join(dir, "x")}, "want images x height x width"},
		{"unknown data tool", []string{"data", "export"}, "import-idx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q: want one line saying %q", stderr, tt.want)
			}
		})
	}
}
