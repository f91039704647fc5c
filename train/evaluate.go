package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Evaluation is the result of classifying a data set.
type Evaluation struct {
	// Classes are the class names by label.
	Classes []string
	// Accuracy is the top-1 accuracy over all images.
	Accuracy float64
	// PerClass is each class's accuracy (NaN for a class without images); Count its images.
	PerClass []float64
	Count    []int
	// Confusion[true][predicted] counts images.
	Confusion [][]int
	// Images is the number of images classified.
	Images int
	// Preprocess says which image preprocessing was used (set by Evaluate).
	Preprocess *data.PreprocessSource
}

// EvalConfig configures Evaluate.
type EvalConfig struct {
	// Model is a bundle folder or a CLIP export (.onnx file, or a folder holding model.onnx).
	Model string
	// Params is a training output folder (or a parameter folder) whose trained parameters
	// replace the initial ones; only with a bundle.
	Params string
	// Data is the data set; its test/ split is used when present, else val/, else all images.
	Data string
	// Split forces a split: "train", "val", "test" or "all" ("" picks as above).
	Split string
	// SplitFile and Classes as in Config: a published split file, and the class subset
	// evaluated (relabelled, with that subset's prompts only).
	SplitFile, Classes string
	// Tokenizer and Templates as in Config.
	Tokenizer string
	Templates []string
	// Batch is the number of images per run (default 32).
	Batch int
	// DecodeAhead as in Config: image batches decoded while the model runs on an earlier one.
	DecodeAhead int
	// Device and Threads as in Config.
	Device  string
	Threads int
}

// Evaluate classifies a data set with all its classes and reports the accuracy. An untouched
// export is evaluated zero-shot; a bundle runs eval.onnx with the trained parameters of
// cfg.Params (or its initial ones).
func Evaluate(cfg EvalConfig) (*Evaluation, error) {
	if cfg.Batch < 0 || cfg.Batch > MaxBatch {
		return nil, errs.Input("--batch %d: want 1 to %d images per run", cfg.Batch, MaxBatch)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 32
	}
	if cfg.DecodeAhead > MaxDecodeAhead {
		return nil, errs.Input("decode-ahead %d: want at most %d batches", cfg.DecodeAhead, MaxDecodeAhead)
	}
	if err := runtime.CheckThreads("--threads", cfg.Threads); err != nil {
		return nil, err
	}
	var modelPath string
	var near []string
	var params map[string]*tensorio.Tensor
	var man *bundle.Manifest
	if st, err := os.Stat(filepath.Join(cfg.Model, bundle.ManifestFile)); err == nil && !st.IsDir() {
		if man, err = bundle.ReadManifest(cfg.Model); err != nil {
			return nil, err
		}
		rec, err := man.Graph("eval")
		if err != nil {
			return nil, errs.AsInput(err)
		}
		modelPath = filepath.Join(cfg.Model, rec.File)
		near = bundleNear(cfg.Model, man)
		if cfg.Params != "" {
			if params, err = LoadParams(cfg.Params, man); err != nil {
				return nil, err
			}
			if err := checkParams(man, params, cfg.Params); err != nil {
				return nil, err
			}
		}
	} else {
		var err error
		if modelPath, err = modelFile(cfg.Model); err != nil {
			return nil, err
		}
		if cfg.Params != "" {
			return nil, errs.Input("--params applies to a bundle; %s is a model (export trained weights into it with 'skipgraph export')", cfg.Model)
		}
		near = []string{filepath.Dir(modelPath), filepath.Dir(filepath.Dir(modelPath))}
	}
	ds, err := evalSplit(data.Source{Dir: cfg.Data, SplitFile: cfg.SplitFile, Classes: cfg.Classes}, cfg.Split)
	if err != nil {
		return nil, err
	}
	if err := verify(ds); err != nil {
		return nil, err
	}
	tok, err := FindTokenizer(cfg.Tokenizer, near...)
	if err != nil {
		return nil, err
	}
	opts := &runtime.Options{Device: cfg.Device, IntraOpThreads: cfg.Threads}
	sc, err := OpenScorer(modelPath, opts)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	if err := CheckVocab(tok, sc.VocabRows, modelPath); err != nil {
		return nil, err
	}
	ctxLen := sc.ContextLength
	if man != nil && man.Text != nil && man.Text.ContextLength > 0 {
		ctxLen = man.Text.ContextLength
	}
	prompts, err := TokenizePrompts(tok, ds.Classes, cfg.Templates, ctxLen)
	if err != nil {
		return nil, err
	}
	size := sc.ImageSize
	if man != nil && man.Vision != nil && man.Vision.ImageSize > 0 {
		size = man.Vision.ImageSize
	}
	prep, how, err := data.PreprocessorFor(size, near...)
	if err != nil {
		return nil, errs.AsInput(err)
	}
	prep.Workers = decodeWorkers(cfg.Device, cfg.Threads, decodeAhead(cfg.DecodeAhead))
	ev, err := evaluateWith(sc, prompts, prep, ds, params, cfg.Batch, decodeAhead(cfg.DecodeAhead))
	if err != nil {
		return nil, err
	}
	ev.Preprocess = how
	return ev, nil
}

// modelFile resolves a model path: a file, or a folder holding model.onnx.
func modelFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", errs.Input("%s: %w; give a bundle folder or a CLIP .onnx export", path, safeio.PathCause(err))
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range []string{"model.onnx", filepath.Join("onnx", "model.onnx")} {
		if _, err := os.Stat(filepath.Join(path, name)); err == nil {
			return filepath.Join(path, name), nil
		}
	}
	return "", errs.Input("%s: neither a bundle (no %s) nor a folder holding model.onnx", path, bundle.ManifestFile)
}

// checkParams reports trained parameters that do not fit the bundle.
func checkParams(man *bundle.Manifest, params map[string]*tensorio.Tensor, where string) error {
	for _, p := range man.Trainable() {
		t := params[p.Initializer]
		if t == nil {
			return errs.Input("%s: no trained value of parameter %s; were these parameters trained from another bundle?", where, p.Initializer)
		}
		if !tensorio.SameShape(t.Shape, p.Shape) {
			return errs.Input("%s: parameter %s has shape %v, the bundle's has %v; were these parameters trained from another bundle?", where, p.Initializer, t.Shape, p.Shape)
		}
	}
	for name := range params {
		if p := man.Param(name); p == nil || !p.Trainable {
			return errs.Input("%s: parameter %s is not trained by this bundle; were these parameters trained from another bundle?", where, name)
		}
	}
	return nil
}

// evalSplit picks the evaluation images of a data set.
func evalSplit(src data.Source, split string) (*data.Dataset, error) {
	dir := src.Dir
	s, err := loadData(src)
	if err != nil {
		return nil, err
	}
	switch split {
	case "", "auto":
		switch {
		case s.Test != nil && len(s.Test.Items) > 0:
			return s.Test, nil
		case s.Val != nil && len(s.Val.Items) > 0:
			return s.Val, nil
		}
		return s.Train, nil
	case "train", "all":
		return s.Train, nil
	case "val", "test":
		d := s.Val
		if split == "test" {
			d = s.Test
		}
		if d == nil || len(d.Items) == 0 {
			return nil, errs.Input("%s: no %s/ split with images", dir, split)
		}
		return d, nil
	}
	return nil, errs.Input("--split %q: want train, val, test or auto", split)
}

// evaluateWith classifies ds with the scorer's model, decoding up to ahead batches of images
// while the model runs.
func evaluateWith(sc *Scorer, prompts *Prompts, prep *data.Preprocessor, ds *data.Dataset, params map[string]*tensorio.Tensor, batch, ahead int) (*Evaluation, error) {
	classes, err := sc.ClassFeatures(prompts, params)
	if err != nil {
		return nil, err
	}
	n := len(ds.Classes)
	ev := &Evaluation{Classes: ds.Classes, PerClass: make([]float64, n), Count: make([]int, n), Confusion: make([][]int, n)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, n)
	}
	size := int64(prep.Size)
	correct := 0
	items := data.Sequential(len(ds.Items), batch)
	paths := make([][]string, len(items))
	for k, b := range items {
		paths[k] = make([]string, len(b))
		for j, i := range b {
			paths[k][j] = ds.Items[i].Path
		}
	}
	err = prep.Each(context.Background(), paths, nil, ahead, func(k int, px []float32) error {
		b := items[k]
		pt, _ := tensorio.FromSlice([]int64{int64(len(b)), 3, size, size}, px)
		f, err := sc.ImageFeatures(pt, params)
		if err != nil {
			return err
		}
		for j, p := range predict(f, classes) {
			l := ds.Items[b[j]].Label
			ev.Confusion[l][p]++
			ev.Count[l]++
			if p == l {
				correct++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ev.Images = len(ds.Items)
	ev.Accuracy = float64(correct) / float64(max(ev.Images, 1))
	for c := range ev.PerClass {
		if ev.Count[c] == 0 {
			ev.PerClass[c] = math.NaN()
			continue
		}
		ev.PerClass[c] = float64(ev.Confusion[c][c]) / float64(ev.Count[c])
	}
	return ev, nil
}

// WriteTable prints the per-class accuracy table.
func (ev *Evaluation) WriteTable(w io.Writer) {
	width := len("class")
	for _, c := range ev.Classes {
		width = max(width, len(c))
	}
	fmt.Fprintf(w, "%-*s  %6s  %8s\n", width, "class", "images", "accuracy")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", width+18))
	for i, c := range ev.Classes {
		acc := "-"
		if ev.Count[i] > 0 {
			acc = fmt.Sprintf("%7.1f%%", 100*ev.PerClass[i])
		}
		fmt.Fprintf(w, "%-*s  %6d  %8s\n", width, c, ev.Count[i], acc)
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", width+18))
	fmt.Fprintf(w, "%-*s  %6d  %7.1f%%\n", width, "top-1", ev.Images, 100*ev.Accuracy)
}
