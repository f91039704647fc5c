package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/atomicfile"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Config configures a training run. DefaultConfig gives the paper's recipe.
type Config struct {
	// Bundle is the folder written by 'skipgraph convert'.
	Bundle string
	// Data is the image-folder data set (train/ [val/ test/], or one folder of class folders).
	Data string
	// Out is the output folder.
	Out string
	// Tokenizer is the tokenizer folder or file; empty looks beside the bundle and its source.
	Tokenizer string
	// Templates are the prompt templates; empty means data.DefaultTemplate.
	Templates []string
	// Epochs, Batch and Shots (images per class; 0 takes all) size the run.
	Epochs, Batch, Shots int
	// Seed fixes the few-shot draw, the batch order and the augmentation.
	Seed uint64
	// LR gives the base learning rate per parameter group; groups not set take the manifest's
	// lr_groups.
	LR map[string]float64
	// WarmupEpochs run at the constant WarmupLR before the cosine schedule.
	WarmupEpochs int
	WarmupLR     float64
	// NoAugment turns the training augmentation off (the image features are then cached once).
	NoAugment bool
	// ValFraction is the share of each class held out for validation when the data set has no
	// val/ folder and no train/ folder (0: no validation).
	ValFraction float64
	// SplitFile is a published split file (split_zhou_<Name>.json) whose paths are relative to
	// Data; empty reads Data's folders.
	SplitFile string
	// Classes is the class subset trained on: "base", "new" or "all" ("" is all).
	Classes string
	// Device ("cpu" or "cuda") and Threads (ORT intra-op threads, 0: ORT's default).
	Device  string
	Threads int
	// Resident keeps parameters, optimizer state and the feature cache in memory ORT allocates
	// for the train step's device, gathering batches there; always on with Device "cuda", on the
	// CPU it runs the same code over host memory.
	Resident bool
	// FeatureBatch is the number of images per features.onnx run (default 32).
	FeatureBatch int
	// KeepCheckpoints is how many epoch checkpoints to keep (0 keeps all).
	KeepCheckpoints int
	// CheckpointSteps, when positive, writes a checkpoint every that many steps within an
	// epoch; CheckpointInterval, when positive, writes one when that much time has passed since
	// the last. Both bound the work a hard kill loses; the newest two of these step
	// checkpoints are kept (epoch ends always write one, kept by KeepCheckpoints).
	CheckpointSteps    int
	CheckpointInterval time.Duration
	// Resume continues the run in Out from its newest checkpoint, with the run's own settings.
	Resume bool
	// Force replaces an Out that already holds a run.
	Force bool
	// Progress receives the progress bar (nil: none); ProgressTTY draws it in place.
	Progress    io.Writer
	ProgressTTY bool
	// OnStep, when set, is called after every step; an error it returns stops the run at once,
	// without a checkpoint (as a crash would).
	OnStep func(StepInfo) error
}

// DefaultConfig returns the paper's recipe: 20 epochs, batch 4, one warm-up epoch at 1e-5,
// augmentation on, the manifest's learning rates, two epoch checkpoints kept, and a step
// checkpoint every DefaultCheckpointInterval.
func DefaultConfig() Config {
	return Config{Epochs: 20, Batch: 4, WarmupEpochs: 1, WarmupLR: 1e-5, FeatureBatch: 32, KeepCheckpoints: 2,
		CheckpointInterval: DefaultCheckpointInterval}
}

// DefaultCheckpointInterval is how often a run writes a checkpoint within an epoch by default:
// a hard kill loses at most this much training.
const DefaultCheckpointInterval = 10 * time.Minute

// Bounds of the numbers a run accepts: far above any real run, low enough that a typo cannot
// ask for memory or time no machine has.
const (
	MaxEpochs = 100000
	MaxBatch  = 1 << 16
	MaxShots  = 1 << 20
)

// StepInfo describes a finished optimizer step.
type StepInfo struct {
	// Epoch is 1-based; Step counts steps from 1 over the whole run; Batch is the batch's index
	// within its epoch (0-based).
	Epoch, Step, Batch int
	Loss               float64
	// Acc is the running training accuracy of the epoch (over the kept classes with CSkip).
	Acc float64
	LR  map[string]float64
}

// Result summarises a finished run.
type Result struct {
	// Out is the output folder; Params, Metrics, Plot and Report are files in it.
	Out, Params, Metrics, Plot, Report string
	Epochs, Steps                      int
	// Loss and TrainAcc are the last epoch's mean loss and training accuracy; ValAcc is the
	// last validation accuracy (NaN without a validation split).
	Loss, TrainAcc, ValAcc float64
	// Classes are the class names by label.
	Classes []string
	// FeatureImagesPerSec is the throughput of the image feature cache (0 without
	// features.onnx); StepsPerSec that of the train step. Both exclude the first call.
	FeatureImagesPerSec, StepsPerSec float64
}

// RunInfo is run.json: what a run was started with, so that it can be resumed and evaluated.
type RunInfo struct {
	Bundle       string             `json:"bundle"`
	Data         string             `json:"data"`
	Tokenizer    string             `json:"tokenizer,omitempty"`
	Templates    []string           `json:"templates"`
	Epochs       int                `json:"epochs"`
	Batch        int                `json:"batch"`
	Shots        int                `json:"shots"`
	Seed         uint64             `json:"seed"`
	LR           map[string]float64 `json:"lr"`
	WarmupEpochs int                `json:"warmup_epochs"`
	WarmupLR     float64            `json:"warmup_lr"`
	Augment      bool               `json:"augment"`
	ValFraction  float64            `json:"val_fraction,omitempty"`
	SplitFile    string             `json:"split_file,omitempty"`
	ClassSubset  string             `json:"class_subset,omitempty"`
	Classes      []string           `json:"classes"`
	Strategies   []string           `json:"strategies"`
	Finished     bool               `json:"finished"`
}

// ReadRunInfo reads OUT/run.json.
func ReadRunInfo(out string) (*RunInfo, error) {
	var ri RunInfo
	if err := readJSON(filepath.Join(out, RunFile), &ri); err != nil {
		return nil, err
	}
	return &ri, nil
}

// ErrStopped is returned when the context was cancelled; the run saved a checkpoint first.
var ErrStopped = errors.New("training stopped")

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
	st                   *bundle.Stepper

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
	featTime   time.Duration

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
	if cfg.FeatureBatch <= 0 {
		cfg.FeatureBatch = 32
	}
	var resumeFrom string
	if cfg.Resume {
		ri, err := ReadRunInfo(cfg.Out)
		if err != nil {
			return nil, errs.Input("cannot resume %s: %v", cfg.Out, err)
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

// clearOut removes what a run wrote to out (all of it: prepareOut left it empty), and out
// itself when the run created it.
func clearOut(out string, created bool) {
	if created {
		os.RemoveAll(out)
		return
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(out, e.Name()))
	}
}

func checkConfig(cfg *Config) error {
	switch {
	case cfg.Bundle == "":
		return errs.Input("no bundle given; make one with 'skipgraph convert MODEL -o BUNDLE'")
	case cfg.Data == "":
		return errs.Input("no data set given (--data DIR)")
	case cfg.Epochs < 1 || cfg.Epochs > MaxEpochs:
		return errs.Input("--epochs %d: want 1 to %d", cfg.Epochs, MaxEpochs)
	case cfg.Batch < 1 || cfg.Batch > MaxBatch:
		return errs.Input("--batch %d: want 1 to %d", cfg.Batch, MaxBatch)
	case cfg.Shots < 0 || cfg.Shots > MaxShots:
		return errs.Input("--shots %d: want 0 (all images) to %d", cfg.Shots, MaxShots)
	case cfg.WarmupEpochs < 0 || cfg.WarmupEpochs >= cfg.Epochs && cfg.WarmupEpochs > 0:
		return errs.Input("--warmup-epochs %d: want 0 to %d (fewer than --epochs)", cfg.WarmupEpochs, cfg.Epochs-1)
	case !(cfg.WarmupLR >= 0) || math.IsInf(cfg.WarmupLR, 0):
		return errs.Input("--warmup-lr %g: want a finite rate >= 0", cfg.WarmupLR)
	case !(cfg.ValFraction >= 0 && cfg.ValFraction < 1):
		return errs.Input("--val-fraction %g: want 0 to below 1", cfg.ValFraction)
	case cfg.KeepCheckpoints < 0:
		return errs.Input("--keep-checkpoints %d: want 0 (keep all) or more", cfg.KeepCheckpoints)
	case cfg.CheckpointSteps < 0:
		return errs.Input("--checkpoint-every %d steps: want a positive count (0: only at epoch ends)", cfg.CheckpointSteps)
	case cfg.CheckpointInterval < 0:
		return errs.Input("--checkpoint-every %v: want a positive duration", cfg.CheckpointInterval)
	case cfg.FeatureBatch > MaxBatch:
		return errs.Input("feature batch %d: want at most %d", cfg.FeatureBatch, MaxBatch)
	}
	if err := runtime.CheckThreads("--threads", cfg.Threads); err != nil {
		return err
	}
	for g, lr := range cfg.LR {
		if lr < 0 || math.IsNaN(lr) || math.IsInf(lr, 0) {
			return errs.Input("learning rate of group %s is %g; want a finite rate >= 0", g, lr)
		}
	}
	for _, tpl := range cfg.Templates {
		if err := data.CheckTemplate(tpl); err != nil {
			return errs.AsInput(err)
		}
	}
	return nil
}

func applyRunInfo(cfg *Config, ri *RunInfo) {
	cfg.Bundle, cfg.Data, cfg.Tokenizer, cfg.Templates = ri.Bundle, ri.Data, ri.Tokenizer, ri.Templates
	cfg.Epochs, cfg.Batch, cfg.Shots, cfg.Seed = ri.Epochs, ri.Batch, ri.Shots, ri.Seed
	cfg.LR, cfg.WarmupEpochs, cfg.WarmupLR, cfg.NoAugment = ri.LR, ri.WarmupEpochs, ri.WarmupLR, !ri.Augment
	cfg.ValFraction, cfg.SplitFile, cfg.Classes = ri.ValFraction, ri.SplitFile, ri.ClassSubset
}

func (t *trainer) runInfo(finished bool) RunInfo {
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	var strat []string
	for _, s := range t.man.Strategies {
		strat = append(strat, s.Name)
	}
	return RunInfo{
		Bundle: abs(t.cfg.Bundle), Data: abs(t.cfg.Data), Tokenizer: abs(t.cfg.Tokenizer), Templates: t.prompts.Templates,
		Epochs: t.cfg.Epochs, Batch: t.cfg.Batch, Shots: t.cfg.Shots, Seed: t.cfg.Seed, LR: t.cfg.LR,
		WarmupEpochs: t.cfg.WarmupEpochs, WarmupLR: t.cfg.WarmupLR, Augment: !t.cfg.NoAugment, ValFraction: t.cfg.ValFraction,
		SplitFile: abs(t.cfg.SplitFile), ClassSubset: t.cfg.Classes,
		Classes: t.train.Classes, Strategies: strat, Finished: finished,
	}
}

// RecogniseRun returns nil when dir is the output folder of a training run (it holds nothing
// but what a run writes), else why not.
func RecogniseRun(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return safeio.PathCause(err)
	}
	for _, e := range entries {
		switch n := e.Name(); {
		case n == RunFile || n == DrawFile || n == MetricsFile || n == PlotFile || n == plotSVG || n == ReportFile || n == ParamsFile || n == ParamsDir || n == CheckpointsDir || strings.HasPrefix(n, ".tmp-"):
		default:
			return fmt.Errorf("it holds %s, which a training run does not write", n)
		}
	}
	return nil
}

// prepareOut makes sure out can take a new run: absent, empty, or a run replaced with force;
// never one of the run's inputs or a folder holding them.
func prepareOut(out string, force bool, inputs []string) error {
	o := safeio.Output{Path: out, What: "a training run", Inputs: inputs, Force: force, Ours: RecogniseRun}
	if err := o.CheckInputs(); err != nil {
		return err
	}
	entries, err := os.ReadDir(out)
	switch {
	case err == nil && len(entries) == 0:
	case err == nil && !force:
		if RecogniseRun(out) == nil {
			return errs.Input("%s already holds files (of an earlier run?); pass --resume %s to continue that run, --force to replace it, or give another -o", out, out)
		}
		return o.Check()
	case err == nil:
		if err := o.Check(); err != nil {
			return err
		}
		if err := os.RemoveAll(out); err != nil {
			return fmt.Errorf("cannot replace %s: %w", out, err)
		}
	case err != nil && !os.IsNotExist(err):
		if st, serr := os.Stat(out); serr == nil && !st.IsDir() {
			return errs.Input("%s is a file; give a folder for the run's output", out)
		}
		return errs.Input("%s: %v", out, safeio.PathCause(err))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return errs.Input("cannot create %s: %v", out, safeio.PathCause(err))
	}
	return nil
}

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
	train := *t.evalPrep
	t.prep = &train
	t.prep.Augment = !cfg.NoAugment
	t.opts = &runtime.Options{Device: cfg.Device, IntraOpThreads: cfg.Threads}

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
			if t.featVision, err = pruned(fm, frec.File+" (image prefix)", []string{t.visionState}, t.opts); err != nil {
				return err
			}
		}
		if t.textState != "" {
			if t.featText, err = pruned(fm, frec.File+" (text prefix)", []string{t.textState}, t.opts); err != nil {
				return err
			}
		}
	}
	if _, err := man.Graph("eval"); err != nil {
		return errs.AsInput(err)
	}
	if man.CSkip != nil {
		c := classsel.Config{Ratio: man.CSkip.Ratio, Max: man.CSkip.Max, Lambda: man.CSkip.Lambda, Seed: man.CSkip.Seed}
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

// run trains from the start or from the checkpoint folder resumeFrom.
func (t *trainer) run(ctx context.Context, resumeFrom string) (*Result, error) {
	cfg := &t.cfg
	man := t.man
	params, err := bundle.InitialParams(cfg.Bundle, man)
	if err != nil {
		return nil, err
	}
	initial := params
	var state map[string]*tensorio.Tensor
	ck := Checkpoint{Seed: cfg.Seed, RNG: rngDoc}
	if resumeFrom != "" {
		c, p, s, err := readCheckpoint(resumeFrom, man)
		if err != nil {
			return nil, err
		}
		ck, params, state = *c, p, s
		for name, v := range initial {
			if p := params[name]; p == nil || !tensorio.SameShape(p.Shape, v.Shape) {
				return nil, errs.Input("%s: parameter %s is missing or has another shape; the checkpoint is not of this bundle", resumeFrom, name)
			}
		}
		// optimizer state too: a missing one would silently restart from zeros
		rec, _ := man.Graph("train_step")
		for _, in := range rec.Inputs {
			if in.Role != bundle.RoleOptimizerState {
				continue
			}
			st, p := state[in.Name], initial[in.Param]
			if st == nil || p == nil || st.DType != tensorio.Float32 || !tensorio.SameShape(st.Shape, p.Shape) {
				return nil, errs.Input("%s: optimizer state %s is missing or has another shape or type; the checkpoint is damaged or not of this bundle: remove it to resume from the one before", resumeFrom, in.Name)
			}
		}
	}
	sampler := data.NewSampler(t.train.Labels(), cfg.Batch, cfg.Shots, cfg.Seed)
	perEpoch := sampler.NumBatches()
	if cfg.Resume {
		// every checkpoint, not only the newest: one damaged into claiming fewer steps would
		// otherwise pass for an older one, silently
		dirs, cks, _ := checkpoints(cfg.Out)
		for i := range dirs {
			if err := cks[i].check(dirs[i], cfg.Epochs, perEpoch, cfg.Seed); err != nil {
				return nil, err
			}
		}
	}
	if err := truncateMetrics(filepath.Join(cfg.Out, MetricsFile), ck.Step, ck.Epoch); err != nil {
		return nil, err
	}
	mf, err := os.OpenFile(filepath.Join(cfg.Out, MetricsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	metrics := bufio.NewWriter(mf)
	defer metrics.Flush()

	if err := t.openStep(params, state, initial); err != nil {
		return nil, err
	}
	keptN := t.classes
	if man.CSkip != nil {
		keptN = t.cskipK + len(t.cskipTail)
	}
	_, hasLogits := outputRole(man, bundle.LogitsOutput)

	sched := Schedule{Epochs: cfg.Epochs, WarmupEpochs: cfg.WarmupEpochs, WarmupLR: cfg.WarmupLR}
	total := perEpoch * cfg.Epochs
	prog := newProgress(cfg.Progress, cfg.ProgressTTY, total, ck.Step)
	defer prog.finish()
	switch {
	case resumeFrom != "":
		prog.line("resuming from %s (epoch %d, step %d)", resumeFrom, ck.Epoch+min(ck.Cursor, 1), ck.Step)
	case cfg.Resume:
		prog.line("%s has no checkpoint yet: the run starts again from step 1", filepath.Join(cfg.Out, CheckpointsDir))
	}
	start := time.Now()
	before := ck.Elapsed // training time of the run's earlier sessions
	elapsed := func() float64 { return before + time.Since(start).Seconds() }
	lastCheckpoint := time.Now()
	labels := t.train.Labels()
	var stepTime time.Duration
	var timedSteps int
	res := &Result{Out: cfg.Out, Metrics: filepath.Join(cfg.Out, MetricsFile), Classes: t.train.Classes, ValAcc: math.NaN(), Epochs: cfg.Epochs}

	var lastEval *Evaluation // the last validation, for the report
	for epoch := ck.Epoch; epoch < cfg.Epochs; epoch++ {
		lrs := map[string]float64{}
		for g, base := range cfg.LR {
			lrs[g] = sched.At(epoch, base)
			if err := t.st.FeedScalar("lr."+g, lrs[g]); err != nil {
				return nil, err
			}
		}
		if err := t.buildEpoch(ctx, epoch, prog); err != nil {
			return nil, err
		}
		batches := sampler.Epoch(epoch)
		for bi := ck.Cursor; bi < len(batches); bi++ {
			if ctx.Err() != nil {
				ck.Cursor = bi
				ck.Elapsed = elapsed()
				metrics.Flush()
				if err := t.checkpoint(ck); err != nil {
					return nil, err
				}
				prog.line("stopped at step %d; checkpoint written, continue with --resume %s", ck.Step, cfg.Out)
				return nil, fmt.Errorf("%w at step %d (%v)", ErrStopped, ck.Step, ctx.Err())
			}
			b := batches[bi]
			if err := t.feedBatch(b, labels); err != nil {
				return nil, err
			}
			if hasLogits {
				if err := t.st.Fetch(bundle.LogitsOutput, int64(len(b)), int64(keptN)); err != nil {
					return nil, err
				}
			}
			if err := t.st.FeedScalar("step", float64(ck.Step+1)); err != nil {
				return nil, err
			}
			t0 := time.Now()
			loss, err := t.st.Step()
			if err != nil {
				return nil, err
			}
			if ck.Step > 0 || bi > 0 {
				stepTime += time.Since(t0)
				timedSteps++
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, errs.Input("the loss became %v at step %d; lower the learning rates", loss, ck.Step+1)
			}
			ck.Step++
			t.stepped = true
			ck.LossSum += loss
			ck.Seen += len(b)
			if hasLogits {
				ck.Correct += t.correct(b, labels, keptN)
			}
			acc := float64(ck.Correct) / float64(max(ck.Seen, 1))
			if !hasLogits {
				acc = math.NaN()
			}
			writeRecord(metrics, map[string]any{"type": "step", "epoch": epoch + 1, "step": ck.Step, "loss": loss, "acc": jsonNum(acc), "lr": lrs, "time": round3(elapsed())})
			prog.step(epoch+1, cfg.Epochs, ck.Step, loss, acc)
			if bi+1 < len(batches) && (cfg.CheckpointSteps > 0 && ck.Step%cfg.CheckpointSteps == 0 ||
				cfg.CheckpointInterval > 0 && time.Since(lastCheckpoint) >= cfg.CheckpointInterval) {
				// a step checkpoint: the epoch resumes at the next batch
				ck.Cursor, ck.Elapsed = bi+1, elapsed()
				if err := metrics.Flush(); err != nil {
					return nil, err
				}
				if err := t.checkpoint(ck); err != nil {
					return nil, err
				}
				lastCheckpoint = time.Now()
			}
			if cfg.OnStep != nil {
				if err := cfg.OnStep(StepInfo{Epoch: epoch + 1, Step: ck.Step, Batch: bi, Loss: loss, Acc: acc, LR: lrs}); err != nil {
					return nil, err
				}
			}
		}
		nb := len(batches)
		res.Loss = ck.LossSum / float64(max(nb, 1))
		res.TrainAcc = float64(ck.Correct) / float64(max(ck.Seen, 1))
		if !hasLogits {
			res.TrainAcc = math.NaN()
		}
		rec := map[string]any{"type": "epoch", "epoch": epoch + 1, "step": ck.Step, "loss": res.Loss, "acc": jsonNum(res.TrainAcc), "lr": lrs, "time": round3(elapsed())}
		valMsg := ""
		if t.splits.Val != nil && len(t.splits.Val.Items) > 0 {
			ev, err := t.evaluate(t.splits.Val, t.currentParams())
			if err != nil {
				return nil, fmt.Errorf("validation: %w", err)
			}
			res.ValAcc, lastEval = ev.Accuracy, ev
			rec["val_acc"] = ev.Accuracy
			valMsg = fmt.Sprintf(" val acc %.1f%%", 100*ev.Accuracy)
		}
		writeRecord(metrics, rec)
		if err := metrics.Flush(); err != nil {
			return nil, err
		}
		ck.Epoch, ck.Cursor, ck.LossSum, ck.Correct, ck.Seen = epoch+1, 0, 0, 0, 0
		ck.Elapsed = elapsed()
		if err := t.checkpoint(ck); err != nil {
			return nil, err
		}
		lastCheckpoint = time.Now()
		prog.line("epoch %d/%d: loss %.4f train acc %.1f%%%s", epoch+1, cfg.Epochs, res.Loss, 100*res.TrainAcc, valMsg)
	}
	prog.finish()
	res.Steps = ck.Step
	if timedSteps > 0 {
		res.StepsPerSec = float64(timedSteps) / stepTime.Seconds()
	}
	if t.featTime > 0 {
		res.FeatureImagesPerSec = float64(t.featImages) / t.featTime.Seconds()
	}
	// Final parameters, through a temporary file.
	res.Params = filepath.Join(cfg.Out, ParamsFile)
	if err := SaveParams(res.Params, man, t.currentParams()); err != nil {
		return nil, err
	}
	metrics.Flush()
	res.Plot = filepath.Join(cfg.Out, PlotFile)
	if err := PlotMetrics(res.Metrics, res.Plot); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	if res.Report, err = t.finalReport(ctx, res, lastEval, elapsed()); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := writeJSON(filepath.Join(cfg.Out, RunFile), t.runInfo(true)); err != nil {
		return nil, err
	}
	return res, nil
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
		res, err := t.featText.Run(feedsFor(t.featText, consts))
		if err != nil {
			return err
		}
		consts[t.textState] = res[t.textState]
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
		consts[bundleInput(man, bundle.RoleCSkipPrototypes)] = protos
		kt, _ := tensorio.FromSlice([]int64{1}, []int64{int64(t.cskipK)})
		consts[bundleInput(man, bundle.RoleCSkipK)] = kt
		tail := append([]int64{}, t.cskipTail...)
		tt, _ := tensorio.FromSlice([]int64{int64(len(tail))}, tail)
		consts[bundleInput(man, bundle.RoleCSkipTail)] = tt
	}
	var err error
	open := bundle.OpenStepper
	if t.cfg.Resident {
		open = bundle.OpenResidentStepper
	}
	if t.st, err = open(t.cfg.Bundle, man, params, state, t.opts); err != nil {
		return err
	}
	if t.st.Resident() {
		axis := t.visionAxis
		if t.visionState == "" {
			axis = 0 // the cache holds pixels [B,3,H,W]
		}
		t.dev = &deviceCache{st: t.st, axis: axis}
	}
	rec, _ := man.Graph("train_step")
	for _, in := range rec.Inputs {
		switch in.Role {
		case bundle.RoleTextInput, bundle.RoleCSkipPrototypes, bundle.RoleCSkipK, bundle.RoleCSkipTail:
			if consts[in.Name] == nil {
				return fmt.Errorf("no value for train-step input %s", in.Name)
			}
			if err := t.st.Feed(in.Name, consts[in.Name]); err != nil {
				return err
			}
		case bundle.RoleState:
			if in.Name == t.textState {
				if err := t.st.Feed(in.Name, consts[in.Name]); err != nil {
					return err
				}
			}
		}
	}
	t.st.Trim()
	return nil
}

// bundleInput returns the train-step input of a role.
func bundleInput(man *bundle.Manifest, role bundle.Role) string {
	if rec := man.Graphs[bundle.GraphTrainStep]; rec != nil {
		for _, in := range rec.Inputs {
			if in.Role == role {
				return in.Name
			}
		}
	}
	return string(role)
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

// currentParams returns the stepper's parameters (shared memory: valid until the next step).
func (t *trainer) currentParams() map[string]*tensorio.Tensor {
	out := map[string]*tensorio.Tensor{}
	for _, p := range t.man.Trainable() {
		if v := t.st.Param(p.Initializer); v != nil {
			out[p.Initializer] = v
		}
	}
	return out
}

func (t *trainer) currentState() map[string]*tensorio.Tensor {
	out := map[string]*tensorio.Tensor{}
	rec, _ := t.man.Graph("train_step")
	for _, in := range rec.Inputs {
		if in.Role == bundle.RoleOptimizerState || in.Role == bundle.RoleLossScale {
			if v := t.st.Param(in.Name); v != nil {
				out[in.Name] = v
			}
		}
	}
	return out
}

// checkpoint writes the run's state and prunes older checkpoints.
func (t *trainer) checkpoint(ck Checkpoint) error {
	dir := filepath.Join(t.cfg.Out, CheckpointsDir, checkpointName(ck))
	if err := writeCheckpoint(dir, t.man, ck, t.currentParams(), t.currentState()); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", dir, err)
	}
	pruneCheckpoints(t.cfg.Out, t.cfg.KeepCheckpoints)
	return nil
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
	for start := 0; start < len(paths); start += fb {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w while caching features (%v)", ErrStopped, err)
		}
		end := min(start+fb, len(paths))
		px, err := t.prep.Batch(paths[start:end], rng)
		if err != nil {
			return errs.AsInput(err)
		}
		n := int64(end - start)
		if t.visionState == "" {
			if t.dev != nil {
				if err := t.dev.addPixels(px, []int64{n, 3, size, size}); err != nil {
					return err
				}
				continue
			}
			t.cache = append(t.cache, chunk{data: px, shape: []int64{n, 3, size, size}})
			continue
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
		if t.cacheFor >= 0 || start > 0 {
			t.featTime += time.Since(t0)
			t.featImages += int(n)
		}
	}
	if t.dev != nil {
		if err := t.dev.finish(); err != nil {
			return err
		}
	}
	t.cacheFor = epoch
	return nil
}

// feedBatch feeds a batch's image inputs and labels.
func (t *trainer) feedBatch(b []int, labels []int) error {
	if t.dev != nil {
		name := t.visionState
		if name == "" {
			name = t.imageInput
		}
		if err := t.dev.feed(name, b); err != nil {
			return err
		}
		return t.feedLabels(b, labels)
	}
	fb := t.cfg.FeatureBatch
	c0 := t.cache[0]
	shape := append([]int64{}, c0.shape...)
	shape[c0.axis] = int64(len(b))
	outer, inner := int64(1), int64(1)
	for i, d := range c0.shape {
		switch {
		case i < c0.axis:
			outer *= d
		case i > c0.axis:
			inner *= d
		}
	}
	dst := make([]float32, outer*int64(len(b))*inner)
	for j, item := range b {
		c := t.cache[item/fb]
		k := int64(item % fb)
		cb := c.shape[c.axis]
		for o := int64(0); o < outer; o++ {
			copy(dst[(o*int64(len(b))+int64(j))*inner:][:inner], c.data[(o*cb+k)*inner:][:inner])
		}
	}
	x, err := tensorio.FromSlice(shape, dst)
	if err != nil {
		return err
	}
	name := t.visionState
	if name == "" {
		name = t.imageInput
	}
	if err := t.st.Feed(name, x); err != nil {
		return err
	}
	return t.feedLabels(b, labels)
}

// feedLabels feeds the batch's labels.
func (t *trainer) feedLabels(b []int, labels []int) error {
	lab := make([]int64, len(b))
	for j, item := range b {
		lab[j] = int64(labels[item])
	}
	lt, _ := tensorio.FromSlice([]int64{int64(len(b))}, lab)
	return t.st.Feed("labels", lt)
}

// correct counts the batch's images whose largest logit is their class.
func (t *trainer) correct(b []int, labels []int, n int) int {
	lo := t.st.Output(bundle.LogitsOutput)
	if lo == nil {
		return 0
	}
	f := lo.Float32s()
	var kept []int64
	if t.man.CSkip != nil {
		if k := t.st.Output(bundle.CSkipClassesOutput); k != nil {
			kept = k.Int64s()
		}
	}
	c := 0
	for j, item := range b {
		row := f[j*n : (j+1)*n]
		bi := 0
		for i, v := range row {
			if v > row[bi] {
				bi = i
			}
		}
		pred := int64(bi)
		if kept != nil && bi < len(kept) {
			pred = kept[bi]
		}
		if pred == int64(labels[item]) {
			c++
		}
	}
	return c
}

// evaluate classifies a data set with the eval graph and the given parameters.
func (t *trainer) evaluate(ds *data.Dataset, params map[string]*tensorio.Tensor) (*Evaluation, error) {
	sc, err := t.openScorer()
	if err != nil {
		return nil, err
	}
	return evaluateWith(sc, t.prompts, t.evalPrep, ds, params, t.cfg.FeatureBatch)
}

// openScorer opens eval.onnx (once, on first use).
func (t *trainer) openScorer() (*Scorer, error) {
	if t.scorer == nil {
		rec, err := t.man.Graph("eval")
		if err != nil {
			return nil, errs.AsInput(err)
		}
		if t.scorer, err = OpenScorer(filepath.Join(t.cfg.Bundle, rec.File), t.opts); err != nil {
			return nil, err
		}
	}
	return t.scorer, nil
}

// truncateMetrics keeps the records of metrics.jsonl up to a checkpoint (step records up to
// step, epoch records up to epoch), dropping what a resumed run will write again.
func truncateMetrics(path string, step, epoch int) error {
	b, err := safeio.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r struct {
			Type  string `json:"type"`
			Step  int    `json:"step"`
			Epoch int    `json:"epoch"`
		}
		if json.Unmarshal(line, &r) != nil {
			continue
		}
		if (r.Type == "step" && r.Step <= step) || (r.Type == "epoch" && r.Epoch <= epoch) {
			keep.Write(line)
			keep.WriteByte('\n')
		}
	}
	return atomicfile.Write(path, keep.Bytes())
}

func writeRecord(w io.Writer, rec map[string]any) {
	b, err := json.Marshal(rec)
	if err == nil {
		w.Write(append(b, '\n'))
	}
}

// jsonNum makes NaN encodable (as null).
func jsonNum(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// inputs are the files and folders a run reads, which its output may not replace.
func (t *trainer) inputs() []string {
	return []string{t.cfg.Bundle, t.cfg.Data, t.cfg.SplitFile, t.cfg.Tokenizer}
}
