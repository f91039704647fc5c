package train

// The configuration of a training run and its record (run.json).

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/runtime"
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
	// Update is where the optimizer update runs (bundle.UpdateAuto: in place on the host on the
	// CPU when the step allows it, in the graph otherwise).
	Update bundle.Update
	// FeatureBatch is the number of images per features.onnx run (0: DefaultFeatureBatch of the
	// Device).
	FeatureBatch int
	// DecodeAhead is the number of image batches decoded while the features run works on an
	// earlier one: 0 is DefaultDecodeAhead, a negative number decodes each batch only when
	// its run is due (no overlap). The cache is the same either way.
	DecodeAhead int
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
	return Config{Epochs: 20, Batch: 4, WarmupEpochs: 1, WarmupLR: 1e-5, KeepCheckpoints: 2,
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
	// MaxDecodeAhead bounds Config.DecodeAhead.
	MaxDecodeAhead = 16
)

// DefaultDecodeAhead is the number of image batches decoded ahead of the features run unless
// a configuration says otherwise: the next batch, and one more to absorb uneven decoding times.
const DefaultDecodeAhead = 2

// DefaultFeatureBatch is the number of images per features.onnx run unless a configuration
// says otherwise: 8 on the CPU, where a ViT-B/16 prefix's activations then stay closer to the
// processor (its matrix products ran at 90% of the sgemm rate against 74% with 32 images per
// run, BENCHMARKS.md), and 32 on a GPU, which wants large products.
func DefaultFeatureBatch(device string) int {
	if device == runtime.DeviceCUDA {
		return 32
	}
	return 8
}

// decodeWorkers is the number of image decoders beside a features run of the given ORT
// intra-op threads (0: ORT's default, a thread per core) on device, when decoding runs ahead
// of it (ahead > 0): on the CPU the cores ORT's threads leave, at least one, since decoders
// that take cores from a running prefix slow it by more than decoding gains; 0 (GOMAXPROCS)
// otherwise.
func decodeWorkers(device string, threads, ahead int) int {
	if ahead <= 0 || device == runtime.DeviceCUDA {
		return 0
	}
	n := goruntime.GOMAXPROCS(0)
	if threads <= 0 || threads > n {
		threads = n
	}
	return max(1, n-threads)
}

// decodeAhead resolves a configured DecodeAhead.
func decodeAhead(n int) int {
	switch {
	case n == 0:
		return DefaultDecodeAhead
	case n < 0:
		return 0
	}
	return n
}

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
	case cfg.DecodeAhead > MaxDecodeAhead:
		return errs.Input("decode-ahead %d: want at most %d batches", cfg.DecodeAhead, MaxDecodeAhead)
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
		return errs.Input("%s: %w", out, safeio.PathCause(err))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return errs.Input("cannot create %s: %w", out, safeio.PathCause(err))
	}
	return nil
}
