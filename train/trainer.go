package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// trainer is one run in progress.
type trainer struct {
	cfg Config
	// stepped is set once an optimizer step is done: from then on a failed run keeps its folder.
	stepped  bool
	man      *bundle.Manifest
	splits   *data.Splits
	train    *data.Dataset
	prompts  *Prompts
	opts     *runtime.Options
	prep     *data.Preprocessor
	evalPrep *data.Preprocessor
	// prepSource says where the preprocessing settings came from.
	prepSource *data.PreprocessSource

	featText, featVision *runtime.Session
	scorer               *Scorer
	bundle               *bundle.Runner // the bundle's features, initial parameters and step
	st                   *bundle.Stepper
	hostUpdate           bool // the Stepper applies the optimizer update on the host

	visionState, textState string // state input names ("" when not cached)
	visionAxis             int    // batch axis of the vision state
	imageInput             string // image input of train_step ("" with a cached vision state)
	cskipK                 int
	cskipTail              []int64
	classes                int

	cache    []chunk      // the epoch's image inputs (states or pixels), FeatureBatch items per chunk
	cacheFor int          // epoch the cache was built for (-1: none)
	dev      *deviceCache // the cache in device memory, with a resident stepper (cache unused)

	featImages int
	featTime   time.Duration // features runs, the first one of the run left out
	cacheTime  time.Duration // building the caches, decoding included

	// protos, when set, are used as the CSkip prototypes instead of computing them.
	protos *tensorio.Tensor
}

// chunk is one batch of cached image inputs with its batch axis.
type chunk struct {
	data  []float32
	shape []int64
	axis  int
}

// Train runs (or resumes) a training run.
func Train(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Out == "" {
		return nil, errs.Input("no output folder given (-o OUT)")
	}
	var resumeFrom string
	if cfg.Resume {
		ri, err := ReadRunInfo(cfg.Out)
		if err != nil {
			return nil, errs.Input("cannot resume %s: %w", cfg.Out, err)
		}
		if ri.Finished {
			return nil, errs.Input("%s: the run already finished; start a new one in another folder, or pass --force to replace it", cfg.Out)
		}
		applyRunInfo(&cfg, ri)
		if resumeFrom, err = latestCheckpoint(cfg.Out); err != nil {
			return nil, err
		}
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	t := &trainer{cfg: cfg, cacheFor: -1}
	defer t.close()
	if err := t.prepare(); err != nil {
		return nil, err
	}
	if cfg.Resume {
		return t.run(ctx, resumeFrom)
	}
	_, statErr := os.Stat(cfg.Out)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := prepareOut(cfg.Out, cfg.Force, t.inputs()); err != nil {
		return nil, err
	}
	res, err := func() (*Result, error) {
		if err := writeJSON(filepath.Join(cfg.Out, RunFile), t.runInfo(false)); err != nil {
			return nil, err
		}
		if err := writeJSON(filepath.Join(cfg.Out, DrawFile), data.NewDrawRecord(t.source(), t.train, cfg.Shots, cfg.Seed)); err != nil {
			return nil, err
		}
		return t.run(ctx, resumeFrom)
	}()
	if err != nil && !t.stepped {
		// nothing worth resuming: leave the folder as it was, so that the same -o works again
		clearOut(cfg.Out, created)
		if errors.Is(err, ErrStopped) {
			return nil, errs.Input("stopped before the first training step; nothing was written to %s", cfg.Out)
		}
	}
	return res, err
}

func (t *trainer) close() {
	if t.dev != nil {
		t.dev.close()
	}
	if t.st != nil {
		t.st.Close()
	}
	if t.scorer != nil {
		t.scorer.Close()
	}
	for _, s := range []*runtime.Session{t.featText, t.featVision} {
		if s != nil {
			s.Close()
		}
	}
}

// inputs are the files and folders a run reads, which its output may not replace.
func (t *trainer) inputs() []string {
	return []string{t.cfg.Bundle, t.cfg.Data, t.cfg.SplitFile, t.cfg.Tokenizer}
}
