package bundle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/synth"
)

// goldenDims is a CLIP small enough that the dump after every pass stays readable: two layers a
// tower (so LSkip has a prefix to cache), width 4, one head.
var goldenDims = synth.Dims{ImageSize: 4, PatchSize: 2, VisionWidth: 4, VisionLayers: 2, VisionHeads: 1, VisionMLP: 4,
	Vocab: 8, Context: 3, TextWidth: 4, TextLayers: 2, TextHeads: 1, TextMLP: 4, Embed: 2}

// goldenCases are the inputs under testdata/passes: a model the project's generator writes
// (-update rewrites it) and the conversion options, chosen so that every pass of every pipeline
// changes the graph in at least one case.
var goldenCases = []struct {
	name string
	cfg  synth.Config
	opts func() Options
}{
	{"hf-opset14-lskip-cskip-grads", synth.Config{Style: synth.StyleHF, Opset: 14, Dims: &goldenDims}, func() Options {
		return Options{EmitGrads: true, Strategies: []StrategySpec{
			{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}},
			{Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5", "lambda": "0"}}}}
	}},
	{"openai-opset17-fp16", synth.Config{Style: synth.StyleOpenAI, Opset: 17, Dims: &goldenDims}, func() Options {
		return Options{Precision: PrecisionFP16, Strategies: []StrategySpec{
			{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}}}
	}},
}

// TestPassesGolden converts each input of testdata/passes and compares the text dump of the
// graph after every pass of every pipeline with testdata/passes/CASE/GRAPH/NN-PASS.golden (NN
// is the pass's position in Pipelines); a pass that left the dump as it was has no file, and
// GRAPH/passes.golden lists the passes that changed it. `go test ./bundle -run TestPassesGolden -update` rewrites the inputs and dumps.
func TestPassesGolden(t *testing.T) {
	root := filepath.Join(testenv.RepoRoot(t), "testdata", "passes")
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			input := filepath.Join(dir, "model.onnx")
			if testenv.Update() {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if _, err := synth.Write(tc.cfg, dir); err != nil {
					t.Fatal(err)
				}
			}
			src, err := LoadSource(input)
			if err != nil {
				t.Fatalf("%v (go test ./bundle -run TestPassesGolden -update writes the inputs)", err)
			}
			var before bytes.Buffer // every pipeline starts from a copy of the loaded source
			if err := src.Model.Graph.Dump(&before); err != nil {
				t.Fatal(err)
			}
			dumps := map[GraphKey][]string{} // graph key -> dump after each pass, in order
			changed := map[GraphKey][]string{}
			opts := tc.opts()
			opts.AfterPass = func(key GraphKey, p *rewrite.Pass, m *graph.Model) error {
				var buf bytes.Buffer
				if err := m.Graph.Dump(&buf); err != nil {
					return err
				}
				prev := before.String()
				if d := dumps[key]; len(d) > 0 {
					prev = d[len(d)-1]
				}
				n := len(dumps[key])
				dumps[key] = append(dumps[key], buf.String())
				if buf.String() != prev {
					changed[key] = append(changed[key], fmt.Sprintf("%02d-%s", n, p.Name))
				}
				return nil
			}
			if _, err := Build(context.Background(), src, opts); err != nil {
				t.Fatal(err)
			}
			for _, p := range Pipelines {
				if p.Graph == SourceGraph {
					continue // run by LoadSource, before the dumps start
				}
				var list strings.Builder
				for _, name := range changed[p.Graph] {
					list.WriteString(name + "\n")
					var n int
					if _, err := fmt.Sscanf(name, "%02d", &n); err != nil {
						t.Fatal(err)
					}
					testenv.Golden(t, filepath.Join(dir, string(p.Graph), name+".golden"), []byte(dumps[p.Graph][n]))
				}
				testenv.Golden(t, filepath.Join(dir, string(p.Graph), "passes.golden"), []byte(list.String()))
			}
		})
	}
}

// TestDumpAfterEveryPass checks that Options.DumpAfter (skipgraph convert --dump-after) prints
// the train-step graph after each pass of its pipeline: the same text as the graph that pass
// left.
func TestDumpAfterEveryPass(t *testing.T) {
	tc := goldenCases[0]
	src := synthSource(t, tc.cfg) // Build works on copies of it
	for _, name := range TrainPipeline {
		t.Run(name, func(t *testing.T) {
			var dumped, after bytes.Buffer
			opts := tc.opts()
			opts.DumpAfter, opts.DumpTo = name, &dumped
			opts.AfterPass = func(key GraphKey, p *rewrite.Pass, m *graph.Model) error {
				if key == "train_step" && p.Name == name {
					return m.Graph.Dump(&after)
				}
				return nil
			}
			if _, err := Build(context.Background(), src, opts); err != nil {
				t.Fatal(err)
			}
			if dumped.Len() == 0 || dumped.String() != after.String() {
				t.Errorf("dump after %s: %d bytes, want the %d bytes of the graph it left", name, dumped.Len(), after.Len())
			}
		})
	}
}

// TestPassTableDoc checks that docs/architecture.md lists every pass of Pipelines, in order,
// with its Doc (WritePassTable's output between the page's pass-table markers).
func TestPassTableDoc(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "architecture.md")
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- pass table: begin -->\n", "<!-- pass table: end -->"
	head, rest, ok1 := strings.Cut(string(page), begin)
	_, tail, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s: no pass-table markers", path)
	}
	var table bytes.Buffer
	if err := WritePassTable(&table); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, path, []byte(head+begin+table.String()+end+tail))
}
