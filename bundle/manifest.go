package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/rewrite"
)

// FormatVersion identifies the manifest format.
const FormatVersion = "skipgraph-bundle/1"

// File names inside a bundle.
const (
	ManifestFile  = "manifest.json"
	FeaturesFile  = "features.onnx"
	TrainStepFile = "train_step.onnx"
	EvalFile      = "eval.onnx"
)

// Manifest describes a bundle so that a tool that has never seen skipgraph can drive its graphs.
type Manifest struct {
	Format     string                  `json:"format"`
	Source     Source                  `json:"source"`
	Strategies []StrategyRecord        `json:"strategies"`
	Optimizer  rewrite.OptimizerConfig `json:"optimizer"`
	Towers     []TowerRecord           `json:"towers"`
	LRGroups   map[string]float64      `json:"lr_groups"`
	LogitScale float64                 `json:"logit_scale"`
	// CSkip is set when class-wise skipping runs in the train step.
	CSkip *CSkipRecord `json:"cskip,omitempty"`
	// Precision is the train step's compute precision (fp32 when empty); LossScale is set when
	// the step scales its loss dynamically.
	Precision string           `json:"precision,omitempty"`
	LossScale *LossScaleRecord `json:"loss_scale,omitempty"`
	// Parameters lists every parameter found in the source.
	Parameters []ParamRecord `json:"parameters"`
	// Graphs describes each graph file of the bundle.
	Graphs map[GraphKey]*GraphRecord `json:"graphs"`
	// Text describes the text inputs (context length, end-of-text token).
	Text *TextRecord `json:"text,omitempty"`
	// Vision describes the image input.
	Vision *VisionRecord `json:"vision,omitempty"`
}

// Source identifies the model the bundle was made from.
type Source struct {
	// Files are the source model files (one, or the two of a split export).
	Files []SourceFile `json:"files"`
	// Family and Opset are what discovery found.
	Family string `json:"family"`
	Opset  int64  `json:"opset"`
	// Split is true for a split (vision_model.onnx + text_model.onnx) export.
	Split bool `json:"split"`
}

// SourceFile is one source model file.
type SourceFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// StrategyRecord is one strategy applied, with its resolved parameters.
type StrategyRecord struct {
	Name    string            `json:"name"`
	Version string            `json:"version"`
	Params  map[string]string `json:"params"`
}

// TowerRecord summarises a tower.
type TowerRecord struct {
	Kind   string `json:"kind"`
	Layers int    `json:"layers"`
	Width  int    `json:"width"`
	Heads  int    `json:"heads"`
	// Start is the first trained layer (LSkip's omega; 0 when nothing is skipped).
	Start int `json:"start"`
	// State names the train-step input holding the cached residual stream, if any.
	State string `json:"state,omitempty"`
	// StateAxes says what the state's axes are, e.g. [batch, seq, width].
	StateAxes []string `json:"state_axes,omitempty"`
}

// ParamRecord is one parameter of the source.
type ParamRecord struct {
	// Initializer is the source initializer's name; in train_step.onnx the trainable ones are
	// inputs of exactly this name.
	Initializer string `json:"initializer"`
	// Canonical are the torch names it holds (normally one).
	Canonical  []string `json:"canonical"`
	Transposed bool     `json:"transposed"`
	Shape      []int64  `json:"shape"`
	DType      string   `json:"dtype"`
	// SourceDType is the dtype in the source (float16 exports train float32 masters).
	SourceDType string `json:"source_dtype"`
	Trainable   bool   `json:"trainable"`
	// Split locates the parameter in a split source (which file, which initializer name).
	Split *SplitName `json:"split,omitempty"`
	Group string     `json:"group,omitempty"`
	Tower string     `json:"tower,omitempty"`
	Layer int        `json:"layer"`
	Role  string     `json:"role"`
}

// GraphRecord describes one graph file.
type GraphRecord struct {
	File    string     `json:"file"`
	Inputs  []IORecord `json:"inputs"`
	Outputs []IORecord `json:"outputs"`
	// DynamicReductions names the NonZero nodes of broadcast reductions whose axes are found at
	// run time, because the shapes could not be proved (with the gradient each serves). On an
	// accelerator each copies data to the host during the step. Empty when every shape is
	// proved.
	DynamicReductions []string `json:"dynamic_reductions,omitempty"`
}

// IORecord is one input or output of a graph.
type IORecord struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Role says what it is for (the Role constants): image, text_input, state, param,
	// optimizer_state, labels, lr, step,
	// cskip_prototypes, cskip_k, cskip_tail, loss_scale (inputs); loss, param_next,
	// state_next, grad, logits, embeds, state, loss_scale_next (outputs).
	Role Role `json:"role"`
	// Origin says where an input's value comes from, or what an output is.
	Origin string `json:"origin"`
	// Param is the parameter an input/output belongs to (param, optimizer_state, *_next, grad).
	Param string `json:"param,omitempty"`
	// Group is the LR group of an lr input.
	Group string `json:"group,omitempty"`
	// Optional inputs have a default value (an initializer) in the graph.
	Optional bool `json:"optional,omitempty"`
}

// CSkipRecord is class-wise skipping's configuration.
type CSkipRecord struct {
	Ratio  float64 `json:"ratio"`
	Max    int     `json:"max"`
	Lambda float64 `json:"lambda"`
	Seed   uint64  `json:"seed"`
}

// TextRecord describes the text input.
type TextRecord struct {
	ContextLength int   `json:"context_length"`
	EOSToken      int64 `json:"eos_token"`
	// InputIDs and AttentionMask are the graph input names ("" when absent).
	InputIDs      string `json:"input_ids"`
	AttentionMask string `json:"attention_mask,omitempty"`
	// PadWithEOS is true when prompts are padded with the end-of-text token (HF), false for 0.
	PadWithEOS bool `json:"pad_with_eos"`
}

// VisionRecord describes the image input.
type VisionRecord struct {
	Input     string `json:"input"`
	ImageSize int    `json:"image_size"`
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	b, err := safeio.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errs.Input("%s: not a skipgraph bundle (no %s); make one with 'skipgraph convert MODEL -o %s'", dir, ManifestFile, dir)
		}
		return nil, errs.Input("%s: %w", path, safeio.PathCause(err))
	}
	m, err := ParseManifest(path, b)
	if err != nil {
		return nil, err
	}
	if err := m.checkFiles(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseManifest decodes the manifest b read from path (which errors name) and checks its
// format and numbers; ReadManifest also checks the files it names.
func ParseManifest(path string, b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errs.Input("%s: not valid JSON: %w", path, err)
	}
	if m.Format != FormatVersion {
		return nil, errs.Input("%s: format %q, this skipgraph reads %q; convert the model again", path, m.Format, FormatVersion)
	}
	if err := m.checkBounds(path); err != nil {
		return nil, err
	}
	return &m, nil
}

// Recognise returns nil when dir is a bundle that skipgraph wrote: a folder with a skipgraph
// manifest and nothing but the files the manifest names (and their external data). Else it says
// why not.
func Recognise(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return safeio.PathCause(err)
	}
	b, err := safeio.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return fmt.Errorf("no readable %s", ManifestFile)
	}
	var m Manifest
	if json.Unmarshal(b, &m) != nil || !strings.HasPrefix(m.Format, "skipgraph-bundle/") {
		return fmt.Errorf("its %s is not a skipgraph manifest", ManifestFile)
	}
	known := map[string]bool{ManifestFile: true}
	for _, g := range m.Graphs {
		if g != nil {
			known[g.File] = true
		}
	}
	for _, e := range entries {
		n := e.Name()
		if known[n] || !e.IsDir() && known[strings.TrimSuffix(n, ".data")] {
			continue
		}
		return fmt.Errorf("it holds %s, which a bundle does not", n)
	}
	return nil
}

// checkFiles refuses a manifest whose graph files leave the bundle's folder (symbolic links
// included) or are missing, and resolves nothing else: the graphs are read by their paths.
func (m *Manifest) checkFiles(dir string) error {
	for _, key := range slices.Sorted(maps.Keys(m.Graphs)) {
		g := m.Graphs[key]
		if g == nil {
			return errs.Input("%s: graph %q has no record; convert the model again", filepath.Join(dir, ManifestFile), key)
		}
		p, err := safeio.Within(dir, g.File)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return errs.Input("%s: the bundle's %s graph is missing; convert the model again", p, key)
		case err != nil && p == "":
			return errs.Input("%s: graph %s file %q %w; a bundle's files lie in its folder: convert the model again", filepath.Join(dir, ManifestFile), key, g.File, err)
		case err != nil:
			return errs.Input("%s: %w", p, safeio.PathCause(err))
		}
		if err := safeio.CheckRegular(p); err != nil {
			return errs.Input("%s: %w", p, safeio.PathCause(err))
		}
	}
	return nil
}

// Param returns the record of an initializer, or nil.
func (m *Manifest) Param(initializer string) *ParamRecord {
	for i := range m.Parameters {
		if m.Parameters[i].Initializer == initializer {
			return &m.Parameters[i]
		}
	}
	return nil
}

// Trainable returns the trainable parameters in manifest order.
func (m *Manifest) Trainable() []*ParamRecord {
	var out []*ParamRecord
	for i := range m.Parameters {
		if m.Parameters[i].Trainable {
			out = append(out, &m.Parameters[i])
		}
	}
	return out
}

// Graph returns the record of a graph file by key (features, train_step, eval), or an error.
func (m *Manifest) Graph(key GraphKey) (*GraphRecord, error) {
	g := m.Graphs[key]
	if g == nil {
		return nil, errs.Input("the bundle has no %s graph; convert the model again", key)
	}
	return g, nil
}

// TrainedGroups lists the LR groups of the trainable parameters, sorted: the train step's
// lr.<group> inputs.
func (m *Manifest) TrainedGroups() []string {
	set := map[string]bool{}
	for _, p := range m.Trainable() {
		set[p.Group] = true
	}
	return slices.Sorted(maps.Keys(set))
}
