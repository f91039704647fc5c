package bundle

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/tensorio"
)

// RandomInputs makes every data input a bundle's graphs may need, for benchmarks and checks
// that need no real data: images of the model's size, one short prompt per class ending in the
// end-of-text token (and its attention mask), labels, and with CSkip random prototypes, K and
// the run's tail. States are not included: run features.onnx on these.
func RandomInputs(r *rand.Rand, man *Manifest, images, classes int) map[string]*tensorio.Tensor {
	d := map[string]*tensorio.Tensor{}
	if man.Vision != nil {
		size := int64(man.Vision.ImageSize)
		px := make([]float32, int64(images)*3*size*size)
		for i := range px {
			px[i] = float32(r.NormFloat64())
		}
		d[man.Vision.Input], _ = tensorio.FromSlice([]int64{int64(images), 3, size, size}, px)
	}
	if man.Text != nil {
		ctx := man.Text.ContextLength
		ids := make([]int64, classes*ctx)
		mask := make([]int64, classes*ctx)
		for c := 0; c < classes; c++ {
			end := 2 + c%(min(ctx, 16)-2)
			for j := 0; j <= end; j++ {
				ids[c*ctx+j] = 1 + r.Int64N(man.Text.EOSToken-2)
				mask[c*ctx+j] = 1
			}
			ids[c*ctx+end] = man.Text.EOSToken
		}
		d[man.Text.InputIDs], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, ids)
		if man.Text.AttentionMask != "" {
			d[man.Text.AttentionMask], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, mask)
		}
	}
	lab := make([]int64, images)
	for i := range lab {
		lab[i] = r.Int64N(int64(classes))
	}
	d["labels"], _ = tensorio.FromSlice([]int64{int64(images)}, lab)
	if man.CSkip != nil {
		embed := man.embedWidth()
		pv := make([]float32, int64(classes)*embed)
		for i := range pv {
			pv[i] = float32(r.NormFloat64())
		}
		feats, _ := tensorio.FromSlice([]int64{int64(classes), embed}, pv)
		if protos, err := classsel.Prototypes([]*tensorio.Tensor{feats}); err == nil {
			maps.Copy(d, man.CSkipInputs(protos))
		}
	}
	return d
}

// embedWidth is the joint embedding width: the output width of the text projection (its ONNX
// layout is [width, embed] in the exports skipgraph reads), else eval.onnx's text_embeds width.
func (m *Manifest) embedWidth() int64 {
	for _, p := range m.Parameters {
		if p.Role == "projection" && p.Tower == "text" && len(p.Shape) == 2 {
			return p.Shape[1]
		}
	}
	if g := m.Graphs["eval"]; g != nil {
		for _, o := range g.Outputs {
			if o.Name == "text_embeds" {
				if i := strings.LastIndexByte(o.Type, ','); i >= 0 {
					w, _ := strconv.ParseInt(strings.TrimSuffix(o.Type[i+1:], "]"), 10, 64)
					return w
				}
			}
		}
	}
	return 0
}

// CSkipConfig is the bundle's CSkip configuration (the zero Config without CSkip).
func (m *Manifest) CSkipConfig() classsel.Config {
	if m.CSkip == nil {
		return classsel.Config{}
	}
	return classsel.Config{Ratio: m.CSkip.Ratio, Max: m.CSkip.Max, Lambda: m.CSkip.Lambda, Seed: m.CSkip.Seed}
}

// CSkipInputs returns CSkip's train-step inputs for the class prototypes protos [classes,
// embed] (classsel.Prototypes): the prototypes, K, and the run's tail rank positions.
func (m *Manifest) CSkipInputs(protos *tensorio.Tensor) map[string]*tensorio.Tensor {
	cfg := m.CSkipConfig()
	classes := int(protos.Shape[0])
	k, _ := tensorio.FromSlice([]int64{1}, []int64{int64(cfg.TopK(classes))})
	tail := cfg.Tail(classes)
	tt, _ := tensorio.FromSlice([]int64{int64(len(tail))}, tail)
	return map[string]*tensorio.Tensor{rewrite.CSkipPrototypes: protos, rewrite.CSkipK: k, rewrite.CSkipTail: tt}
}
