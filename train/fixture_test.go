package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
)

// fixtureDir holds what the tests share: a tiny model with its tokenizer, a data set and
// bundles; made once per test binary.
var (
	fixtureDir  string
	fixtureOnce sync.Once
	fixtureErr  error
	bundlesMu   sync.Mutex
	bundles     = map[string]string{}
)

const (
	fixClasses  = 6
	fixPerClass = 16
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skipgraph-train-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture returns the model folder and the data set folder (train/, val/, test/).
func fixture(t testing.TB) (model, dataDir string) {
	t.Helper()
	fixtureOnce.Do(func() {
		classes := data.SyntheticClasses(fixClasses)
		var names []string
		for _, c := range classes {
			names = append(names, data.DisplayName(c))
		}
		if _, fixtureErr = synth.WriteDemo(filepath.Join(fixtureDir, "model"), synth.PromptWords(names, []string{data.DefaultTemplate}), 2); fixtureErr != nil {
			return
		}
		for i, split := range []string{"train", "val", "test"} {
			n := fixPerClass
			if split != "train" {
				n = 6
			}
			if fixtureErr = data.GenerateDataset(filepath.Join(fixtureDir, "data", split), fixClasses, n, 32, uint64(100+i)); fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return filepath.Join(fixtureDir, "model"), filepath.Join(fixtureDir, "data")
}

// fixtureBundle converts the fixture model with the named strategies ("full" or "lskip,cskip").
func fixtureBundle(t testing.TB, strategies string) string {
	t.Helper()
	model, _ := fixture(t)
	bundlesMu.Lock()
	defer bundlesMu.Unlock()
	if b := bundles[strategies]; b != "" {
		return b
	}
	var specs []bundle.StrategySpec
	switch strategies {
	case "full":
		specs = []bundle.StrategySpec{{Strategy: full.Strategy{}}}
	case "lskip,cskip":
		specs = []bundle.StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: cskip.Strategy{}}}
	case "lskip":
		specs = []bundle.StrategySpec{{Strategy: lskip.Strategy{}}}
	default:
		t.Fatalf("unknown strategies %q", strategies)
	}
	src, err := bundle.LoadSource(filepath.Join(model, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fixtureDir, "bundle-"+strategies)
	if _, err := bundle.Convert(context.Background(), src, out, bundle.Options{Strategies: specs}); err != nil {
		t.Fatal(err)
	}
	bundles[strategies] = out
	return out
}

// quickConfig is a short run on the fixture with learning rates a random tiny model needs.
func quickConfig(t testing.TB, b, out string) Config {
	_, dataDir := fixture(t)
	cfg := DefaultConfig()
	cfg.Bundle, cfg.Data, cfg.Out = b, dataDir, out
	cfg.Epochs = 8
	cfg.Batch = 8
	cfg.Seed = 3
	cfg.WarmupEpochs = 1
	cfg.WarmupLR = 1e-3
	cfg.NoAugment = true
	lr := 0.05
	if filepath.Base(b) == "bundle-full" {
		lr = 0.01
	}
	cfg.LR = map[string]float64{"text": lr, "vision": lr}
	cfg.Threads = 1
	return cfg
}
