package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// requireORT fails the test (it does not skip) when ONNX Runtime cannot be loaded, as the
// runtime package's tests do.
func requireORT(t testing.TB) {
	t.Helper()
	if err := runtime.Init(); err != nil {
		t.Fatalf("%v", err)
	}
}

// run runs one model file on named inputs.
func run(t *testing.T, path string, in map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
	t.Helper()
	s, err := runtime.NewSession(path, nil)
	if err != nil {
		t.Fatalf("ORT refuses %s: %v", path, err)
	}
	defer s.Close()
	out, err := s.Run(in)
	if err != nil {
		t.Fatalf("running %s: %v", path, err)
	}
	return out
}

// clipInputs makes B random images and C prompts: random tokens, the end-of-text token at a
// varying position, zero padding after it, and the matching attention mask.
func clipInputs(d Dims, B, C int, seed uint64) (px, ids, mask *tensorio.Tensor) {
	r := rand.New(rand.NewPCG(seed, 1))
	pv := make([]float32, B*3*d.ImageSize*d.ImageSize)
	for i := range pv {
		pv[i] = float32(r.NormFloat64())
	}
	S := d.Context
	iv, mv := make([]int64, C*S), make([]int64, C*S)
	for c := 0; c < C; c++ {
		eot := 2 + c%(S-2)
		for s := 0; s <= eot; s++ {
			iv[c*S+s] = 1 + r.Int64N(int64(d.Vocab-2))
			mv[c*S+s] = 1
		}
		iv[c*S+eot] = int64(d.Vocab - 1)
	}
	px, _ = tensorio.FromSlice([]int64{int64(B), 3, int64(d.ImageSize), int64(d.ImageSize)}, pv)
	ids, _ = tensorio.FromSlice([]int64{int64(C), int64(S)}, iv)
	mask, _ = tensorio.FromSlice([]int64{int64(C), int64(S)}, mv)
	return px, ids, mask
}

// rows returns a [N, E] float tensor as rows, checking its shape and that it is finite.
func rows(t *testing.T, name string, x *tensorio.Tensor, n, e int) [][]float64 {
	t.Helper()
	if x == nil {
		t.Fatalf("output %s is missing", name)
	}
	if len(x.Shape) != 2 || x.Shape[0] != int64(n) || x.Shape[1] != int64(e) {
		t.Fatalf("%s has shape %v, want [%d %d]", name, x.Shape, n, e)
	}
	v, err := x.AsFloat64()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, n)
	for i := range out {
		out[i] = v[i*e : (i+1)*e]
		for _, f := range out[i] {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("%s is not finite: %v", name, out[i])
			}
		}
	}
	return out
}

func normalized(a []float64) []float64 {
	s := 0.0
	for _, x := range a {
		s += x * x
	}
	s = math.Sqrt(s)
	out := make([]float64, len(a))
	for i, x := range a {
		out[i] = x / s
	}
	return out
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestORTRuns writes tiny models of every style, combined and split, saves them with onnxio and
// runs them on ONNX Runtime: outputs are finite, of the right shapes, not degenerate, and the
// combined model's logits are exp(logit_scale) times the cosine similarities of the split
// models' embeddings (the two exports share their weights).
func TestORTRuns(t *testing.T) {
	requireORT(t)
	const B, C = 3, 4
	for _, style := range []string{StyleHF, StyleOpenAI, StyleOpenCLIP} {
		for _, opset := range []int{14, 17} {
			t.Run(fmt.Sprintf("%s/opset%d", style, opset), func(t *testing.T) {
				dir := t.TempDir()
				cfg := Config{Style: style, Opset: opset, Seed: 11}
				comb, err := Write(cfg, filepath.Join(dir, "combined"))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Split = true
				if _, err := Write(cfg, filepath.Join(dir, "split")); err != nil {
					t.Fatal(err)
				}
				d := comb.Dims
				px, ids, mask := clipInputs(d, B, C, 5)

				img := rows(t, "image_embeds", run(t, filepath.Join(dir, "split", ModelVision), map[string]*tensorio.Tensor{"pixel_values": px})["image_embeds"], B, d.Embed)
				txt := rows(t, "text_embeds", run(t, filepath.Join(dir, "split", ModelText), map[string]*tensorio.Tensor{"input_ids": ids})["text_embeds"], C, d.Embed)
				for i := range img {
					img[i] = normalized(img[i])
				}
				for i := range txt {
					txt[i] = normalized(txt[i])
				}
				// not degenerate: different images and prompts give different embeddings
				for i := 0; i < B; i++ {
					for j := i + 1; j < B; j++ {
						if c := dot(img[i], img[j]); c > 0.999 {
							t.Errorf("images %d and %d have cosine %v", i, j, c)
						}
					}
				}
				for i := 0; i < C; i++ {
					for j := i + 1; j < C; j++ {
						if c := dot(txt[i], txt[j]); c > 0.999 {
							t.Errorf("prompts %d and %d have cosine %v", i, j, c)
						}
					}
				}

				var out map[string]*tensorio.Tensor
				path := filepath.Join(dir, "combined", ModelCombined)
				if style == StyleHF {
					out = run(t, path, map[string]*tensorio.Tensor{"input_ids": ids, "pixel_values": px, "attention_mask": mask})
					ie := rows(t, "image_embeds", out["image_embeds"], B, d.Embed)
					te := rows(t, "text_embeds", out["text_embeds"], C, d.Embed)
					for i := range ie {
						for k := range ie[i] {
							if math.Abs(ie[i][k]-img[i][k]) > 1e-4 {
								t.Fatalf("image_embeds[%d] = %v, want the split model's normalised %v", i, ie[i], img[i])
							}
						}
					}
					for i := range te {
						for k := range te[i] {
							if math.Abs(te[i][k]-txt[i][k]) > 1e-4 {
								t.Fatalf("text_embeds[%d] = %v, want the split model's normalised %v", i, te[i], txt[i])
							}
						}
					}
				} else {
					out = run(t, path, map[string]*tensorio.Tensor{"image": px, "text": ids})
				}
				lpi := rows(t, "logits_per_image", out["logits_per_image"], B, C)
				lpt := rows(t, "logits_per_text", out["logits_per_text"], C, B)
				scale := math.Exp(comb.Config.LogitScale)
				lo, hi := math.Inf(1), math.Inf(-1)
				for i := 0; i < B; i++ {
					for j := 0; j < C; j++ {
						want := scale * dot(img[i], txt[j])
						if math.Abs(lpi[i][j]-want) > 1e-3 {
							t.Errorf("logits_per_image[%d][%d] = %v, want exp(scale)*cos = %v", i, j, lpi[i][j], want)
						}
						if lpt[j][i] != lpi[i][j] {
							t.Errorf("logits_per_text[%d][%d] = %v, logits_per_image[%d][%d] = %v", j, i, lpt[j][i], i, j, lpi[i][j])
						}
						lo, hi = math.Min(lo, lpi[i][j]), math.Max(hi, lpi[i][j])
					}
				}
				if hi-lo < 0.05 {
					t.Errorf("logits are nearly constant: %v", lpi)
				}
			})
		}
	}
}

// TestORTStripNames checks that a model without node names runs and computes what the named one
// does.
func TestORTStripNames(t *testing.T) {
	requireORT(t)
	for _, style := range []string{StyleHF, StyleOpenAI} {
		dir := t.TempDir()
		res, err := Write(Config{Style: style, Seed: 4}, filepath.Join(dir, "named"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Write(Config{Style: style, Seed: 4, StripNames: true}, filepath.Join(dir, "bare")); err != nil {
			t.Fatal(err)
		}
		px, ids, mask := clipInputs(res.Dims, 2, 3, 9)
		in := map[string]*tensorio.Tensor{"image": px, "text": ids}
		if style == StyleHF {
			in = map[string]*tensorio.Tensor{"pixel_values": px, "input_ids": ids, "attention_mask": mask}
		}
		a := run(t, filepath.Join(dir, "named", ModelCombined), in)["logits_per_image"]
		b := run(t, filepath.Join(dir, "bare", ModelCombined), in)["logits_per_image"]
		if diff, err := tensorio.MaxAbsDiff(a, b); err != nil || diff != 0 {
			t.Errorf("%s: stripped model differs by %v (%v)", style, diff, err)
		}
	}
}

// BenchmarkBuildWriteViTB16 times Build and Write of a ViT-B/16 CLIP (HF style) and reports the
// size of the file.
func BenchmarkBuildWriteViTB16(b *testing.B) {
	dir := b.TempDir()
	var size int64
	for b.Loop() {
		if _, err := Write(Config{Style: StyleHF, Size: "vit-b-16", Opset: 17}, dir); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, ModelCombined))
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size)/(1<<20), "MiB/file")
}
