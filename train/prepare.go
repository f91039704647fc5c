package train

// Preparing a run: the bundle, the data, the feature caches, the CSkip prototypes, K and tail,
// and the train step.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// prepare checks every input and opens the sessions; it writes nothing.
func (t *trainer) prepare() error {
	cfg := &t.cfg
	man, err := bundle.ReadManifest(cfg.Bundle)
	if err != nil {
		return err
	}
	t.man = man
	if man.Text == nil || man.Vision == nil {
		return errs.Input("%s: the bundle lacks a text or image input description; convert the model again", cfg.Bundle)
	}
	if t.splits, err = loadData(t.source()); err != nil {
		return err
	}
	t.train = t.splits.Train
	if cfg.Shots > 0 {
		t.train = t.train.FewShot(cfg.Shots, cfg.Seed)
	}
	if err := verify(t.train, t.splits.Val); err != nil {
		return err
	}
	t.classes = len(t.train.Classes)
	if t.classes < 2 {
		return errs.Input("%s: %s; training a classifier needs at least 2", cfg.Data, plural(t.classes, "class"))
	}
	tok, err := FindTokenizer(cfg.Tokenizer, bundleNear(cfg.Bundle, man)...)
	if err != nil {
		return err
	}
	if err := CheckVocab(tok, TokenEmbeddingRows(man), cfg.Bundle); err != nil {
		return err
	}
	if cfg.Tokenizer == "" {
		cfg.Tokenizer = tok.Source
	}
	if t.prompts, err = TokenizePrompts(tok, t.train.Classes, cfg.Templates, man.Text.ContextLength); err != nil {
		return err
	}
	// Learning rates: the manifest's groups, overridden by the configuration.
	lr := map[string]float64{}
	for _, g := range man.TrainedGroups() {
		base, ok := cfg.LR[g]
		if !ok {
			if base, ok = man.LRGroups[g]; !ok {
				return errs.Input("%s: no learning rate for parameter group %q; pass --lr-%s", cfg.Bundle, g, g)
			}
		}
		lr[g] = base
	}
	for g := range cfg.LR {
		if _, ok := lr[g]; !ok {
			return errs.Input("learning rate given for group %q, which the bundle does not train (groups: %s)", g, strings.Join(man.TrainedGroups(), ", "))
		}
	}
	cfg.LR = lr
	if t.evalPrep, t.prepSource, err = data.PreprocessorFor(man.Vision.ImageSize, bundleNear(cfg.Bundle, man)...); err != nil {
		return errs.AsInput(err)
	}
	if cfg.FeatureBatch <= 0 {
		cfg.FeatureBatch = DefaultFeatureBatch(cfg.Device)
	}
	t.evalPrep.Workers = decodeWorkers(cfg.Device, cfg.Threads, decodeAhead(cfg.DecodeAhead))
	train := *t.evalPrep
	t.prep = &train
	t.prep.Augment = !cfg.NoAugment
	t.opts = &runtime.Options{Device: cfg.Device, IntraOpThreads: cfg.Threads}
	t.bundle = bundle.NewRunner(cfg.Bundle, man, t.opts)
	t.bundle.Resident = cfg.Resident
	t.bundle.Update = cfg.Update

	rec, err := man.Graph("train_step")
	if err != nil {
		return errs.AsInput(err)
	}
	for _, in := range rec.Inputs {
		switch in.Role {
		case bundle.RoleImage:
			t.imageInput = in.Name
		case bundle.RoleState:
			if tw := towerOfState(man, in.Name); tw != nil && tw.Kind == "vision" {
				t.visionState = in.Name
				t.visionAxis = max(indexOf(tw.StateAxes, "batch"), 0)
			} else {
				t.textState = in.Name
			}
		}
	}
	if t.visionState != "" || t.textState != "" {
		frec, err := man.Graph("features")
		if err != nil {
			return errs.Input("%s: the train step reads cached states but the bundle has no features graph; convert the model again", cfg.Bundle)
		}
		fm, err := onnxio.Load(filepath.Join(cfg.Bundle, frec.File))
		if err != nil {
			return err
		}
		if t.visionState != "" {
			if t.featVision, err = bundle.OpenPart(fm, frec.File+" (image prefix)", []string{t.visionState}, t.opts); err != nil {
				return err
			}
		}
		if t.textState != "" {
			if t.featText, err = bundle.OpenPart(fm, frec.File+" (text prefix)", []string{t.textState}, t.opts); err != nil {
				return err
			}
		}
	}
	if _, err := man.Graph("eval"); err != nil {
		return errs.AsInput(err)
	}
	if man.CSkip != nil {
		c := man.CSkipConfig()
		t.cskipK = c.TopK(t.classes)
		t.cskipTail = c.Tail(t.classes)
	}
	return nil
}

func towerOfState(man *bundle.Manifest, name string) *bundle.TowerRecord {
	for i := range man.Towers {
		if man.Towers[i].State == name {
			return &man.Towers[i]
		}
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// openStep computes the constant inputs of the train step (the text side, CSkip's inputs) and
// opens it with the given parameters and optimizer state (nil: zeros); initial are the
// untrained parameters, from which the CSkip prototypes come.
func (t *trainer) openStep(params, state, initial map[string]*tensorio.Tensor) error {
	man := t.man
	// Constant inputs: the text side and CSkip's.
	first := t.prompts.First()
	consts := map[string]*tensorio.Tensor{}
	if n := man.Text.InputIDs; n != "" {
		consts[n] = first.IDs
	}
	if n := man.Text.AttentionMask; n != "" {
		consts[n] = first.Mask
	}
	if t.textState != "" {
		// the prompts go through the text prefix in chunks along the class axis, when it is
		// the first axis of the state and of the text inputs
		chunk := 0
		if tw := towerOfState(man, t.textState); tw != nil && indexOf(tw.StateAxes, "classes") == 0 {
			chunk = textChunk(t.cfg.Device)
		}
		feeds := feedsFor(t.featText, consts)
		var rows []string
		for _, n := range []string{man.Text.InputIDs, man.Text.AttentionMask} {
			if feeds[n] != nil {
				rows = append(rows, n)
			}
		}
		if len(rows) == 0 {
			chunk = 0
		}
		st, err := runRows(t.featText, feeds, rows, t.textState, chunk)
		if err != nil {
			return err
		}
		consts[t.textState] = st
	}
	if man.CSkip != nil {
		protos := t.protos
		if protos == nil {
			sc, err := t.openScorer()
			if err != nil {
				return err
			}
			if protos, err = sc.ClassFeatures(t.prompts, initial); err != nil {
				return fmt.Errorf("CSkip prototypes: %w", err)
			}
		}
		maps.Copy(consts, man.CSkipInputs(protos))
	}
	var err error
	if t.st, err = t.bundle.Open(params, state); err != nil {
		return err
	}
	t.hostUpdate = t.st.HostUpdate()
	if t.st.Resident() {
		axis := t.visionAxis
		if t.visionState == "" {
			axis = 0 // the cache holds pixels [B,3,H,W]
		}
		t.dev = &deviceCache{st: t.st, axis: axis}
	}
	if err := t.bundle.Feed(t.st, consts, bundle.RoleTextInput, bundle.RoleCSkipPrototypes, bundle.RoleCSkipK, bundle.RoleCSkipTail); err != nil {
		return err
	}
	if t.textState != "" {
		if err := t.st.Feed(t.textState, consts[t.textState]); err != nil {
			return err
		}
	}
	t.st.Trim()
	return nil
}

func outputRole(man *bundle.Manifest, name string) (bundle.Role, bool) {
	if rec := man.Graphs[bundle.GraphTrainStep]; rec != nil {
		for _, o := range rec.Outputs {
			if o.Name == name {
				return o.Role, true
			}
		}
	}
	return "", false
}

// augmentRNG is epoch e's augmentation stream.
func augmentRNG(seed uint64, epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0xa0761d6478bd642f, uint64(epoch)))
}

// buildEpoch fills the cache of image inputs for an epoch: image states through the frozen
// image prefix, or preprocessed pixels when the whole image tower trains. Without augmentation
// the cache of the first epoch serves every epoch.
func (t *trainer) buildEpoch(ctx context.Context, epoch int, prog *progress) error {
	if t.cacheFor >= 0 && (t.cfg.NoAugment || t.cacheFor == epoch) {
		return nil
	}
	items := t.train.Items
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.Path
	}
	var rng *rand.Rand
	if t.prep.Augment {
		rng = augmentRNG(t.cfg.Seed, epoch)
	}
	t.cache = t.cache[:0]
	if t.dev != nil {
		t.dev.reset()
	}
	fb := t.cfg.FeatureBatch
	size := int64(t.prep.Size)
	var batches [][]string
	for start := 0; start < len(paths); start += fb {
		batches = append(batches, paths[start:min(start+fb, len(paths))])
	}
	began := time.Now()
	err := t.prep.Each(ctx, batches, rng, decodeAhead(t.cfg.DecodeAhead), func(i int, px []float32) error {
		n := int64(len(batches[i]))
		if t.visionState == "" {
			if t.dev != nil {
				return t.dev.addPixels(px, []int64{n, 3, size, size})
			}
			t.cache = append(t.cache, chunk{data: px, shape: []int64{n, 3, size, size}})
			return nil
		}
		pt, _ := tensorio.FromSlice([]int64{n, 3, size, size}, px)
		t0 := time.Now()
		if t.dev != nil {
			if err := t.dev.addStates(t.featVision, t.man.Vision.Input, t.visionState, pt); err != nil {
				return err
			}
		} else {
			res, err := t.featVision.Run(map[string]*tensorio.Tensor{t.man.Vision.Input: pt})
			if err != nil {
				return err
			}
			s := res[t.visionState]
			t.cache = append(t.cache, chunk{data: s.Float32s(), shape: s.Shape, axis: t.visionAxis})
		}
		if t.cacheFor >= 0 || i > 0 {
			t.featTime += time.Since(t0)
			t.featImages += int(n)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while caching features (%w)", ErrStopped, ctx.Err())
		}
		return err
	}
	if t.dev != nil {
		if err := t.dev.finish(); err != nil {
			return err
		}
	}
	t.cacheFor = epoch
	t.cacheTime += time.Since(began)
	return nil
}
