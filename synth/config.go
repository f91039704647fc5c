package synth

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Export styles.
const (
	// StyleHF is HuggingFace transformers' CLIPModel as optimum exports it.
	StyleHF = "hf"
	// StyleOpenAI is the openai/CLIP model code exported with torch.onnx.
	StyleOpenAI = "openai"
	// StyleOpenCLIP is open_clip's CLIP: OpenAI's module names, erf GELU by default.
	StyleOpenCLIP = "openclip"
)

// Activations of the MLP blocks.
const (
	// GeluQuick is x * sigmoid(1.702 x), as OpenAI's CLIP and HF's quick_gelu.
	GeluQuick = "quick"
	// GeluErf is the exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
	GeluErf = "erf"
)

// Dims are the dimensions of a CLIP model.
type Dims struct {
	// ImageSize is the side of the square input image, in pixels.
	ImageSize int
	// PatchSize is the side of a square patch.
	PatchSize int
	// VisionWidth, VisionLayers, VisionHeads and VisionMLP size the image tower.
	VisionWidth, VisionLayers, VisionHeads, VisionMLP int
	// Vocab is the text vocabulary size; the end-of-text token is Vocab-1.
	Vocab int
	// Context is the text context length (the number of position embeddings).
	Context int
	// TextWidth, TextLayers, TextHeads and TextMLP size the text tower.
	TextWidth, TextLayers, TextHeads, TextMLP int
	// Embed is the width of the joint embedding space (both projections' output).
	Embed int
}

// Sizes are the named model sizes: "tiny" (the reference fixture's dimensions), "vit-b-32",
// "vit-b-16" and "vit-l-14" (the published CLIP models' dimensions).
var Sizes = map[string]Dims{
	"tiny": {ImageSize: 32, PatchSize: 8, VisionWidth: 32, VisionLayers: 2, VisionHeads: 2, VisionMLP: 64,
		Vocab: 64, Context: 8, TextWidth: 32, TextLayers: 2, TextHeads: 2, TextMLP: 64, Embed: 16},
	"vit-b-32": {ImageSize: 224, PatchSize: 32, VisionWidth: 768, VisionLayers: 12, VisionHeads: 12, VisionMLP: 3072,
		Vocab: 49408, Context: 77, TextWidth: 512, TextLayers: 12, TextHeads: 8, TextMLP: 2048, Embed: 512},
	"vit-b-16": {ImageSize: 224, PatchSize: 16, VisionWidth: 768, VisionLayers: 12, VisionHeads: 12, VisionMLP: 3072,
		Vocab: 49408, Context: 77, TextWidth: 512, TextLayers: 12, TextHeads: 8, TextMLP: 2048, Embed: 512},
	"vit-l-14": {ImageSize: 224, PatchSize: 14, VisionWidth: 1024, VisionLayers: 24, VisionHeads: 16, VisionMLP: 4096,
		Vocab: 49408, Context: 77, TextWidth: 768, TextLayers: 12, TextHeads: 12, TextMLP: 3072, Embed: 768},
}

// Config selects what Build generates. The zero value is a tiny HF model at opset 14.
type Config struct {
	// Style is StyleHF (default), StyleOpenAI or StyleOpenCLIP.
	Style string
	// Size names an entry of Sizes; "tiny" by default. Ignored when Dims is set.
	Size string
	// Dims, when set, gives explicit dimensions instead of Size.
	Dims *Dims
	// Opset is the default-domain opset, 14 to 18; 14 by default.
	Opset int
	// Split writes the towers as two models (text_model.onnx, vision_model.onnx), each with its
	// projection and unnormalised embeddings, as transformers.js lays a CLIP out.
	Split bool
	// Seed seeds the weights; each parameter draws from its own stream derived from the seed and
	// its name.
	Seed int64
	// Classes, when positive, fixes the text batch dimension (the number of class prompts);
	// otherwise it is symbolic.
	Classes int
	// Gelu is GeluQuick or GeluErf; by default GeluErf for StyleOpenCLIP, else GeluQuick.
	Gelu string
	// StripNames removes every node name and renames intermediate values to bare numbers, as
	// older exporters wrote them.
	StripNames bool
	// PackedInProj (OpenAI and open_clip styles) keeps nn.MultiheadAttention's in-projection
	// packed, as exports without constant folding of the chunk have it: one MatMul with the
	// transposed [E, 3E] in_proj_weight, one Add of in_proj_bias, then a Split into q, k, v.
	// By default the exporter's folded form is written: three q/k/v slices.
	PackedInProj bool
	// LogitScale is the logit scale parameter (before Exp); ln(1/0.07) when zero.
	LogitScale float64
}

// normalize fills defaults and checks the configuration.
func (c Config) normalize() (Config, Dims, error) {
	if c.Style == "" {
		c.Style = StyleHF
	}
	switch c.Style {
	case StyleHF, StyleOpenAI, StyleOpenCLIP:
	default:
		return c, Dims{}, fmt.Errorf("synth: unknown style %q (want %s, %s or %s)", c.Style, StyleHF, StyleOpenAI, StyleOpenCLIP)
	}
	var d Dims
	if c.Dims != nil {
		d = *c.Dims
		c.Size = ""
	} else {
		if c.Size == "" {
			c.Size = "tiny"
		}
		var ok bool
		if d, ok = Sizes[c.Size]; !ok {
			names := make([]string, 0, len(Sizes))
			for k := range Sizes {
				names = append(names, k)
			}
			sort.Strings(names)
			return c, d, fmt.Errorf("synth: unknown size %q (want one of %s, or explicit Dims)", c.Size, strings.Join(names, ", "))
		}
	}
	if c.Opset == 0 {
		c.Opset = 14
	}
	if c.Opset < 14 || c.Opset > 18 {
		return c, d, fmt.Errorf("synth: opset %d is out of range (14..18)", c.Opset)
	}
	if c.Gelu == "" {
		c.Gelu = GeluQuick
		if c.Style == StyleOpenCLIP {
			c.Gelu = GeluErf
		}
	}
	if !slices.Contains([]string{GeluQuick, GeluErf}, c.Gelu) {
		return c, d, fmt.Errorf("synth: unknown GELU %q (want %s or %s)", c.Gelu, GeluQuick, GeluErf)
	}
	if c.LogitScale == 0 {
		c.LogitScale = math.Log(1 / 0.07)
	}
	if c.Classes < 0 {
		return c, d, fmt.Errorf("synth: Classes is negative (%d)", c.Classes)
	}
	if err := d.check(); err != nil {
		return c, d, err
	}
	return c, d, nil
}

func (d Dims) check() error {
	pos := map[string]int{"ImageSize": d.ImageSize, "PatchSize": d.PatchSize, "VisionWidth": d.VisionWidth,
		"VisionLayers": d.VisionLayers, "VisionHeads": d.VisionHeads, "VisionMLP": d.VisionMLP, "Vocab": d.Vocab,
		"Context": d.Context, "TextWidth": d.TextWidth, "TextLayers": d.TextLayers, "TextHeads": d.TextHeads,
		"TextMLP": d.TextMLP, "Embed": d.Embed}
	for k, v := range pos {
		if v <= 0 {
			return fmt.Errorf("synth: Dims.%s must be positive (got %d)", k, v)
		}
	}
	switch {
	case d.ImageSize%d.PatchSize != 0:
		return fmt.Errorf("synth: image size %d is not a multiple of patch size %d", d.ImageSize, d.PatchSize)
	case d.VisionWidth%d.VisionHeads != 0:
		return fmt.Errorf("synth: vision width %d is not a multiple of %d heads", d.VisionWidth, d.VisionHeads)
	case d.TextWidth%d.TextHeads != 0:
		return fmt.Errorf("synth: text width %d is not a multiple of %d heads", d.TextWidth, d.TextHeads)
	case d.Vocab < 2:
		return fmt.Errorf("synth: vocabulary of %d tokens is too small", d.Vocab)
	}
	return nil
}

// Patches returns the number of image patches plus one (the class token): the vision sequence
// length.
func (d Dims) Patches() int {
	g := d.ImageSize / d.PatchSize
	return g*g + 1
}
