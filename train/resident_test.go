package train

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
)

// A resident run (the CUDA code path: parameters, optimizer state and the feature cache in
// ORT-allocated memory, batches gathered there; here on the CPU) trains exactly like the host
// run: same losses, accuracies and final parameters, for a bundle with cached image states and
// for full fine-tuning, whose cache holds pixels.
func TestResidentTrainingMatchesHost(t *testing.T) {
	for _, strategies := range []string{"lskip,cskip", "full"} {
		t.Run(strategies, func(t *testing.T) {
			b := fixtureBundle(t, strategies)
			man, err := bundle.ReadManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			var res [2]*Result
			var params [2]map[string][]float32
			for i, resident := range []bool{false, true} {
				out := filepath.Join(t.TempDir(), "run")
				cfg := quickConfig(t, b, out)
				cfg.Epochs, cfg.WarmupEpochs = 1, 0
				cfg.FeatureBatch = 5 // several chunks, joined on the device
				cfg.Resident = resident
				r, err := Train(context.Background(), cfg)
				if err != nil {
					t.Fatalf("resident=%v: %v", resident, err)
				}
				res[i] = r
				ps, err := LoadParams(out, man)
				if err != nil {
					t.Fatal(err)
				}
				params[i] = map[string][]float32{}
				for k, v := range ps {
					params[i][k] = v.Float32s()
				}
			}
			t.Logf("host loss %.6f acc %.3f; resident loss %.6f acc %.3f", res[0].Loss, res[0].TrainAcc, res[1].Loss, res[1].TrainAcc)
			if res[0].Steps != res[1].Steps || res[0].Loss != res[1].Loss || res[0].TrainAcc != res[1].TrainAcc {
				t.Errorf("host: %d steps, loss %v, train acc %v; resident: %d steps, loss %v, train acc %v",
					res[0].Steps, res[0].Loss, res[0].TrainAcc, res[1].Steps, res[1].Loss, res[1].TrainAcc)
			}
			if len(params[0]) == 0 || len(params[0]) != len(params[1]) {
				t.Fatalf("saved %d and %d parameters", len(params[0]), len(params[1]))
			}
			for k, v := range params[0] {
				if !slices.Equal(v, params[1][k]) {
					t.Errorf("parameter %s differs between host and resident runs", k)
				}
			}
		})
	}
}
