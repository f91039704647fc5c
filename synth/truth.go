package synth

import (
	"sort"

	"github.com/skipgraph/skipgraph/graph"
)

// Tower names used as keys of Truth.Towers and in Param.Tower.
const (
	TowerText   = "text"
	TowerVision = "vision"
)

// Truth is what the generator knows it wrote: the ground truth for tests of structure discovery.
type Truth struct {
	// Style is the export style.
	Style string
	// Opset is the default-domain opset of every model.
	Opset int
	// Towers holds TowerText and TowerVision.
	Towers map[string]*Tower
	// Params maps a canonical parameter name (a torch name, with [q], [k] or [v] appended for
	// the slices of a packed in-projection) to where it lives.
	Params map[string]*Param
	// Buffers maps an initializer name to the non-parameter constant it holds (e.g. the causal
	// mask of the OpenAI style), keyed by model file then initializer name.
	Buffers map[string]map[string]string
}

// Tower describes one encoder.
type Tower struct {
	// Name is TowerText or TowerVision.
	Name string
	// Model is the key in Result.Models of the model holding the tower.
	Model string
	// Layers, Width, Heads and MLP are the transformer's depth, width, head count and MLP width.
	Layers, Width, Heads, MLP int
	// SeqLen is the sequence length: the context length (text) or patches plus one (vision).
	SeqLen int
	// ImageSize and PatchSize size the vision input; zero for text.
	ImageSize, PatchSize int
	// Vocab and EOS are the vocabulary size and end-of-text token; zero for vision.
	Vocab, EOS int
	// Boundaries are the residual-stream values between layers: Boundaries[i] enters layer i,
	// Boundaries[Layers] leaves the last layer (len Layers+1).
	Boundaries []string
	// SequenceFirst is true when the transformer runs on [seq, batch, width] (OpenAI style)
	// rather than [batch, seq, width].
	SequenceFirst bool
	// Embeds is the output value of the tower's projection (before any normalisation).
	Embeds string

	boundaries []*graph.Value
	embeds     *graph.Value
}

// Param locates one parameter (or slice of one) in a model.
type Param struct {
	// Canonical is the key in Truth.Params.
	Canonical string
	// Torch is the torch parameter it comes from (without the slice suffix).
	Torch string
	// Model is the key in Result.Models of the model holding it.
	Model string
	// Initializer is the ONNX initializer's name.
	Initializer string
	// Transposed is true when the initializer holds the parameter (or slice) transposed.
	Transposed bool
	// Rows, when not nil, is the row slice [from, to) of the torch parameter that the
	// initializer holds (before any transposition).
	Rows []int64
	// Shape is the initializer's shape.
	Shape []int64
	// Tower is TowerText, TowerVision or "" (logit scale).
	Tower string
	// Layer is the transformer layer holding the parameter, or -1.
	Layer int

	value *graph.Value
}

// ParamNames returns the canonical parameter names, sorted.
func (t *Truth) ParamNames() []string {
	out := make([]string, 0, len(t.Params))
	for k := range t.Params {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TowerParams returns the canonical names of the parameters of one tower, sorted.
func (t *Truth) TowerParams(tower string) []string {
	var out []string
	for k, p := range t.Params {
		if p.Tower == tower {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ByInitializer returns the parameter held by an initializer of a model, or nil.
func (t *Truth) ByInitializer(model, init string) *Param {
	for _, p := range t.Params {
		if p.Model == model && p.Initializer == init {
			return p
		}
	}
	return nil
}

// resolve copies the final value names into the string fields.
func (t *Truth) resolve() {
	for _, tw := range t.Towers {
		tw.Boundaries = make([]string, len(tw.boundaries))
		for i, v := range tw.boundaries {
			tw.Boundaries[i] = v.Name
		}
		if tw.embeds != nil {
			tw.Embeds = tw.embeds.Name
		}
	}
	for _, p := range t.Params {
		p.Initializer = p.value.Name
		p.Shape = append([]int64(nil), p.value.Const.Dims...)
	}
}
