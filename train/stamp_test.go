package train

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/version"
)

// TestGraphsStamped: every graph of a bundle, and a model written by Export, names skipgraph
// and its version as producer and carries the bundle's settings in metadata_props.
func TestGraphsStamped(t *testing.T) {
	b := fixtureBundle(t, "lskip,cskip")
	man, err := bundle.ReadManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	params, err := bundle.InitialParams(b, man)
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(t.TempDir(), ParamsFile)
	if err := SaveParams(pf, man, params); err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(t.TempDir(), "tuned.onnx")
	if _, err := Export(ExportConfig{Bundle: b, Params: pf, Out: exported}); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"export": exported}
	for key, g := range man.Graphs {
		files[string(key)] = filepath.Join(b, g.File)
	}
	for which, path := range files {
		t.Run(which, func(t *testing.T) {
			m, err := onnxio.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			info := onnxio.ModelInfo(m)
			if info.ProducerName != "skipgraph" || info.ProducerVersion != version.Version {
				t.Errorf("producer %q %q, want skipgraph %s", info.ProducerName, info.ProducerVersion, version.Version)
			}
			meta := map[string]string{}
			for _, e := range info.Metadata {
				meta[e.Key] = e.Value
			}
			if meta[bundle.MetaGraph] != which || meta[bundle.MetaFormat] != bundle.FormatVersion {
				t.Errorf("metadata %v", meta)
			}
			var strategies []bundle.StrategyRecord
			if err := json.Unmarshal([]byte(meta[bundle.MetaStrategies]), &strategies); err != nil || len(strategies) != 2 || strategies[0].Name != "lskip" || strategies[1].Name != "cskip" || strategies[0].Params["vision-start"] == "" {
				t.Errorf("strategies metadata %q (%v)", meta[bundle.MetaStrategies], err)
			}
			var lr map[string]float64
			if err := json.Unmarshal([]byte(meta[bundle.MetaLRGroups]), &lr); err != nil || len(lr) == 0 {
				t.Errorf("lr groups metadata %q (%v)", meta[bundle.MetaLRGroups], err)
			}
		})
	}
}
