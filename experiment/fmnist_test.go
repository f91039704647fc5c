package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/train"
)

// TestFashionMNISTBase2New imports Fashion-MNIST from Debian's dataset-fashion-mnist package
// (16 training and 20 test images per class) and runs base-to-new on it with the tiny synthetic
// CLIP: trained on the 5 base classes, base accuracy rises well above chance; new accuracy (5
// classes never trained on, with a random text tower) is reported whatever it is.
func TestFashionMNISTBase2New(t *testing.T) {
	src := data.FashionMNISTDir
	file := func(name string) string { return filepath.Join(src, name) }
	if _, err := os.Stat(file("train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed (%v); install Debian's dataset-fashion-mnist package", err)
	}
	dir := fixture(t)
	root := filepath.Join(t.TempDir(), "fashion-mnist")
	for _, s := range []struct {
		split, prefix string
		n             int
	}{{"train", "train", 16}, {"test", "t10k", 20}} {
		counts, err := data.ImportIDX(data.IDXImport{Images: file(s.prefix + "-images-idx3-ubyte.gz"), Labels: file(s.prefix + "-labels-idx1-ubyte.gz"),
			Classes: data.FashionMNISTClasses, Out: filepath.Join(root, s.split), PerClass: s.n})
		if err != nil {
			t.Fatal(err)
		}
		for c, n := range counts {
			if n != s.n {
				t.Fatalf("%s: class %s has %d images, want %d", s.split, data.FashionMNISTClasses[c], n, s.n)
			}
		}
	}
	model := filepath.Join(dir, "model", "model.onnx")
	zero, err := train.Evaluate(train.EvalConfig{Model: model, Data: root, Classes: data.ClassesBase, Split: "test", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "fmnist.yaml")
	body := fmt.Sprintf(`name: Fashion-MNIST base-to-new
model: %s
datasets: [{name: fashion-mnist, data: %s}]
shots: 16
seeds: [1]
strategies: [{name: lskip}]
train: {epochs: 15, batch: 8, lr: {text: 0.01, vision: 0.01}, warmup_epochs: 1, warmup_lr: 0.001, no_augment: true, threads: 1}
`, model, root)
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), load(t, cfgPath), Options{Out: filepath.Join(t.TempDir(), "out")})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Summary.Jobs[0]
	chance := 1.0 / float64(data.BaseCount(len(data.FashionMNISTClasses)))
	t.Logf("Fashion-MNIST, 5 base / 5 new classes, 16 shots: zero-shot base %.1f%%; trained base %.1f%%, new %.1f%%, H %.1f%% (chance %.0f%%); %.1f s",
		100*zero.Accuracy, 100*r.Accuracy["base"], 100*r.Accuracy["new"], 100*r.H, 100*chance, r.TrainSeconds)
	if r.Accuracy["base"] < 2*chance || r.Accuracy["base"] < zero.Accuracy+0.15 {
		t.Errorf("base accuracy %.1f%% after training: want at least twice chance (%.0f%%) and 15 points over zero-shot (%.1f%%)",
			100*r.Accuracy["base"], 100*chance, 100*zero.Accuracy)
	}
}
