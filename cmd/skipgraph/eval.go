package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/report"
	"github.com/skipgraph/skipgraph/train"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "top-1 accuracy of a CLIP export (zero-shot) or of a bundle with trained parameters, per class, with a confusion matrix",
		usage:   "MODEL_OR_BUNDLE --data DIR [--params TRAIN_OUT] [--json] [flags]",
		example: "skipgraph eval model.onnx --data images/          # zero-shot\n" +
			"skipgraph eval bundle --params run --data images/  # after 'skipgraph train ... -o run'",
		flags: func(fs *flag.FlagSet) func([]string) error {
			dataDir := fs.String("data", "", "image-folder data set; its test/ split is used when present, else val/, else every image (required)")
			params := fs.String("params", "", "training output folder (or a .safetensors file of torch-named parameters) whose trained parameters the bundle uses")
			split := fs.String("split", "auto", "split to evaluate: auto, train, val or test")
			classes := fs.String("classes", "all", "class subset: base (the first ceil(C/2) classes by label), new (the rest) or all; each is relabelled with its own prompts")
			splitFile := fs.String("split-file", "", "published split file (split_zhou_<Name>.json) with paths relative to --data, instead of sub-folders")
			tok := fs.String("tokenizer", "", "tokenizer folder or file (default: look beside the model or the bundle's source)")
			template := fs.String("template", "", "prompt template with {} for the class name (default \""+data.DefaultTemplate+"\")")
			templates := fs.String("templates", "", "file of prompt templates, one per line (averaged: prompt ensembling)")
			confusion := fs.String("confusion", "confusion.png", "confusion matrix PNG to write (\"\": none)")
			batch := fs.Int("batch", 32, "images per run")
			device := fs.String("device", "cpu", "cpu or cuda")
			threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: its default)")
			asJSON := fs.Bool("json", false, "print the result as JSON (accuracy, per-class accuracy, confusion matrix) instead of a table")
			decodeMem := decodeMemoryFlag(fs, "eval")
			return func(args []string) error {
				args, err := parseInterspersed(fs, args)
				if err != nil {
					return usageError("eval", "%v", err)
				}
				if err := decodeMem(); err != nil {
					return err
				}
				if len(args) != 1 || *dataDir == "" {
					return usageError("eval", "eval takes one model or bundle and --data DIR")
				}
				if *batch < 1 {
					return usageError("eval", "--batch %d: want at least 1 image per run", *batch)
				}
				tpl, err := data.ResolveTemplates(*template, *templates)
				if err != nil {
					return errs.AsInput(err)
				}
				if *confusion != "" {
					// the matrix replaces an earlier one, never an input or a foreign file
					inputs := []string{args[0], *params, *dataDir, *splitFile, *tok, *templates}
					for _, o := range []safeio.Output{
						{Path: *confusion, What: "a confusion matrix PNG", Inputs: inputs, Replace: true, Ours: report.RecognisePNG},
						{Path: report.SVGPath(*confusion), What: "a confusion matrix SVG", Inputs: inputs, Replace: true, Ours: report.RecogniseSVG},
					} {
						if err := o.Check(); err != nil {
							return err
						}
					}
				}
				ev, err := train.Evaluate(train.EvalConfig{Model: args[0], Params: *params, Data: *dataDir, Split: *split, SplitFile: *splitFile, Classes: *classes,
					Tokenizer: *tok, Templates: tpl, Batch: *batch, Device: *device, Threads: *threads})
				if err != nil {
					return err
				}
				if *confusion != "" {
					if err := train.PlotConfusion(ev, *confusion); err != nil {
						return errs.Input("cannot write %s: %w", *confusion, err)
					}
				}
				if *asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(evalJSONOf(ev, args[0], *params, *dataDir, *confusion))
				}
				ev.WriteTable(out)
				if *confusion != "" {
					fmt.Fprintf(out, "confusion matrix: %s\n", *confusion)
				}
				return nil
			}
		},
	})
}

// evalJSON is eval's --json output.
type evalJSON struct {
	Model  string `json:"model"`
	Params string `json:"params,omitempty"`
	Data   string `json:"data"`
	Images int    `json:"images"`
	// Accuracy is the top-1 accuracy over all images, a fraction.
	Accuracy float64     `json:"accuracy"`
	Classes  []classJSON `json:"classes"`
	// Confusion[true][predicted] counts images, rows and columns in class order.
	Confusion [][]int `json:"confusion"`
	// ConfusionPNG is the figure written (and its SVG twin beside it), if any.
	ConfusionPNG string `json:"confusion_png,omitempty"`
	// Preprocess is the image preprocessing used and where it came from.
	Preprocess *data.PreprocessSource `json:"preprocess,omitempty"`
}

// classJSON is one class's result; Accuracy is null for a class without images.
type classJSON struct {
	Name     string   `json:"name"`
	Images   int      `json:"images"`
	Accuracy *float64 `json:"accuracy"`
}

func evalJSONOf(ev *train.Evaluation, model, params, data, png string) evalJSON {
	r := evalJSON{Model: model, Params: params, Data: data, Images: ev.Images, Accuracy: ev.Accuracy, Confusion: ev.Confusion, ConfusionPNG: png, Preprocess: ev.Preprocess}
	for i, c := range ev.Classes {
		cj := classJSON{Name: c, Images: ev.Count[i]}
		if a := ev.PerClass[i]; !math.IsNaN(a) {
			cj.Accuracy = &a
		}
		r.Classes = append(r.Classes, cj)
	}
	return r
}
