package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/synth"
)

func init() {
	register(&command{
		name:    "synth",
		summary: "write a CLIP export with random (seeded) weights and the op patterns of a torch export",
		usage:   "[flags] -o DIR",
		example: "skipgraph synth --style hf --size tiny -o tiny-clip\nskipgraph synth --style openai --size vit-b-16 --opset 17 --split -o b16",
		flags: func(fs *flag.FlagSet) func([]string) error {
			var cfg synth.Config
			var outDir string
			var seed int64
			fs.StringVar(&cfg.Style, "style", "hf", "export style: hf (HuggingFace/optimum), openai or openclip")
			fs.StringVar(&cfg.Size, "size", "tiny", "size: tiny, vit-b-32, vit-b-16 or vit-l-14 (real dimensions)")
			fs.IntVar(&cfg.Opset, "opset", 14, "default-domain opset, 14 to 18")
			fs.BoolVar(&cfg.Split, "split", false, "write text_model.onnx and vision_model.onnx instead of model.onnx")
			fs.Int64Var(&seed, "seed", 0, "weight seed")
			fs.BoolVar(&cfg.StripNames, "strip-names", false, "remove every node name")
			fs.StringVar(&cfg.Gelu, "gelu", "", "MLP activation: quick or erf (default: erf for openclip, else quick)")
			fs.BoolVar(&cfg.PackedInProj, "packed-in-proj", false, "OpenAI/open_clip: keep the attention in-projection packed (one MatMul and a Split) instead of folded q/k/v slices")
			fp16 := fs.Bool("fp16", false, "write a float16 export (weights, constants, image input and outputs in float16)")
			fs.StringVar(&outDir, "o", "", "output folder (required)")
			force := fs.Bool("force", false, "replace models that an earlier synth wrote there")
			return func(args []string) error {
				if len(args) != 0 || outDir == "" {
					return usageError("synth", "synth needs -o DIR and no arguments")
				}
				cfg.Seed = seed
				files := []string{synth.ModelCombined}
				if cfg.Split {
					files = []string{synth.ModelText, synth.ModelVision}
				}
				for _, n := range files {
					o := safeio.Output{Path: filepath.Join(outDir, n), What: "a synthetic model", Force: *force, Ours: synth.Recognise}
					if err := o.Check(); err != nil {
						return err
					}
				}
				res, err := synth.Build(cfg)
				if err != nil {
					return errs.AsInput(err)
				}
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return errs.Input("%s: %w", outDir, err)
				}
				if *fp16 {
					for _, m := range res.Models {
						synth.ToFloat16(m)
					}
				}
				if err := res.Save(outDir, onnxio.SaveOptions{}); err != nil {
					return err
				}
				names := make([]string, 0, len(res.Models))
				for n := range res.Models {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					p := filepath.Join(outDir, n)
					size := int64(0)
					if st, err := os.Stat(p); err == nil {
						size = st.Size()
					}
					fmt.Fprintf(out, "wrote %s (%s, style %s, opset %d, %s)\n", p, cfg.Size, cfg.Style, cfg.Opset, bytesHuman(size))
				}
				return nil
			}
		},
	})
}
