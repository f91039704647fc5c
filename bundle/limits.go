package bundle

import (
	"fmt"
	"math"

	"github.com/skipgraph/skipgraph/errs"
)

// Bounds on the numbers of a manifest. They lie far above any CLIP model (context 77, images
// 224 to 448, 12 to 48 layers) and far below what would make a reader allocate more memory
// than a machine has, so that a damaged or hand-edited manifest is refused in one line instead
// of ending in an out-of-memory crash.
const (
	// MaxContextLength bounds the text context length (token positions per prompt).
	MaxContextLength = 1 << 14
	// MaxImageSize bounds the square image input's side, in pixels.
	MaxImageSize = 1 << 13
	// MaxLayers bounds a tower's layer count; MaxWidth its width and head count.
	MaxLayers = 1 << 10
	MaxWidth  = 1 << 16
	// MaxClasses bounds class counts (CSkip's max_top, a planned task's classes).
	MaxClasses = 1 << 20
	// MaxParamElements bounds one parameter's element count (64 GiB of float32).
	MaxParamElements = 1 << 34
	// MaxVocab bounds token ids (the end-of-text token).
	MaxVocab = 1 << 24
)

// checkBounds refuses a manifest whose numbers are out of range; path names it in the error.
func (m *Manifest) checkBounds(path string) error {
	bad := func(field string, v any, want string) error {
		return errs.Input("%s: %s %v: want %s (the manifest is damaged: convert the model again)", path, field, v, want)
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if t := m.Text; t != nil {
		if t.ContextLength < 1 || t.ContextLength > MaxContextLength {
			return bad("text.context_length", t.ContextLength, fmt.Sprintf("1 to %d", MaxContextLength))
		}
		if t.EOSToken < 0 || t.EOSToken >= MaxVocab {
			return bad("text.eos_token", t.EOSToken, fmt.Sprintf("0 to %d", MaxVocab-1))
		}
	}
	if v := m.Vision; v != nil && (v.ImageSize < 1 || v.ImageSize > MaxImageSize) {
		return bad("vision.image_size", v.ImageSize, fmt.Sprintf("1 to %d", MaxImageSize))
	}
	for i, t := range m.Towers {
		f := fmt.Sprintf("towers[%d]", i)
		switch {
		case t.Layers < 0 || t.Layers > MaxLayers:
			return bad(f+".layers", t.Layers, fmt.Sprintf("0 to %d", MaxLayers))
		case t.Start < 0 || t.Start > t.Layers:
			return bad(f+".start", t.Start, fmt.Sprintf("0 to its %d layers", t.Layers))
		case t.Width < 0 || t.Width > MaxWidth:
			return bad(f+".width", t.Width, fmt.Sprintf("0 to %d", MaxWidth))
		case t.Heads < 0 || t.Heads > MaxWidth:
			return bad(f+".heads", t.Heads, fmt.Sprintf("0 to %d", MaxWidth))
		}
	}
	if c := m.CSkip; c != nil {
		switch {
		case !(c.Ratio > 0 && c.Ratio <= 1):
			return bad("cskip.ratio", c.Ratio, "a share in (0, 1]")
		case c.Max < 0 || c.Max > MaxClasses:
			return bad("cskip.max", c.Max, fmt.Sprintf("0 to %d", MaxClasses))
		case !(c.Lambda >= 0) || !finite(c.Lambda):
			return bad("cskip.lambda", c.Lambda, "a finite value >= 0")
		}
	}
	for g, lr := range m.LRGroups {
		if !(lr >= 0) || !finite(lr) {
			return bad("lr_groups."+g, lr, "a finite rate >= 0")
		}
	}
	if !finite(m.LogitScale) {
		return bad("logit_scale", m.LogitScale, "a finite number")
	}
	if err := m.Optimizer.Validate(); err != nil && m.Optimizer.Kind != "" {
		return errs.Input("%s: optimizer: %w (the manifest is damaged: convert the model again)", path, err)
	}
	for _, p := range m.Parameters {
		n := int64(1)
		for _, d := range p.Shape {
			if d < 0 || d > MaxParamElements || n > MaxParamElements/max(d, 1) {
				return bad("the shape of parameter "+p.Initializer, p.Shape, fmt.Sprintf("dimensions >= 0 with at most %d elements", int64(MaxParamElements)))
			}
			n *= d
		}
		if p.Layer < -1 || p.Layer > MaxLayers {
			return bad("the layer of parameter "+p.Initializer, p.Layer, fmt.Sprintf("-1 to %d", MaxLayers))
		}
	}
	return nil
}
