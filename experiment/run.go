package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/atomicfile"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/train"

	// The built-in strategies an experiment may name.
	_ "github.com/skipgraph/skipgraph/plugins/cskip"
	_ "github.com/skipgraph/skipgraph/plugins/full"
	_ "github.com/skipgraph/skipgraph/plugins/lskip"
)

// Files and folders of an experiment folder.
const (
	// SettingsFile records the experiment's settings and their fingerprint.
	SettingsFile = "experiment.json"
	// BundleDir is the bundle converted once for every job.
	BundleDir = "bundle"
	// JobsDir holds a folder per job: run/ (the training output) and ResultFile.
	JobsDir = "jobs"
	// ResultFile is a finished job's Result, written atomically: its presence marks the job done.
	ResultFile = "result.json"
	// TableMarkdown, TableJSON, TableCSV and JobsCSV are the report.
	TableMarkdown = "results.md"
	TableJSON     = "results.json"
	TableCSV      = "results.csv"
	JobsCSV       = "jobs.csv"
)

// ErrStopped is returned when the context was cancelled between or during jobs; finished jobs
// keep their results and a rerun continues.
var ErrStopped = errors.New("experiment stopped")

// Options configure Run.
type Options struct {
	// Out is the experiment folder (default: the configuration's out).
	Out string
	// Shard selects a share of the jobs (zero value: all of them).
	Shard Shard
	// Progress receives one line per job and step of the experiment (nil: none).
	Progress io.Writer
	// OnStep, when set, is called after every training step of every job; an error stops the
	// job at once, without a checkpoint, as a crash would.
	OnStep func(job string, s train.StepInfo) error
}

// Report says what Run did.
type Report struct {
	// Out is the experiment folder.
	Out string
	// Ran are the jobs run now; Skipped those whose results were already recorded.
	Ran, Skipped []string
	// Summary is the table when every job of the experiment has a result (nil otherwise), and
	// Files the report files written.
	Summary *Summary
	Files   []string
}

// settings is experiment.json.
type settings struct {
	Fingerprint string  `json:"fingerprint"`
	Config      *Config `json:"config"`
}

// outDir decides the experiment folder.
func outDir(c *Config, o string) (string, error) {
	if o == "" {
		o = c.Out
	}
	if o == "" {
		return "", errs.Input("no experiment folder; give -o DIR or out: DIR in the experiment file")
	}
	return o, nil
}

// prepareOut creates the experiment folder, or checks that it holds this experiment.
func prepareOut(c *Config, out string) error {
	path := filepath.Join(out, SettingsFile)
	var have settings
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &have); err != nil {
			return errs.Input("%s: not valid JSON (%w); give another experiment folder", path, err)
		}
		if have.Fingerprint != c.fingerprint() {
			return errs.Input("%s holds an experiment with other settings (model, strategies, training or templates differ); give another experiment folder", out)
		}
	} else if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return errs.Input("%s holds files but no %s; give an empty or new experiment folder", out, SettingsFile)
	}
	if err := os.MkdirAll(filepath.Join(out, JobsDir), 0o755); err != nil {
		return errs.Input("cannot create %s: %w", out, safeio.PathCause(err))
	}
	return atomicfile.WriteJSON(path, settings{Fingerprint: c.fingerprint(), Config: c})
}

// checkData checks that every data set's folder and split file exist, before anything is
// converted or trained.
func (c *Config) checkData() error {
	for _, d := range c.Datasets {
		if st, err := os.Stat(d.Data); err != nil || !st.IsDir() {
			why := "not a folder"
			if err != nil {
				why = safeio.PathCause(err).Error()
			}
			return errs.Input("data set %s: %s: %s; fix its data: entry", d.Name, d.Data, why)
		}
		if d.SplitFile != "" {
			if _, err := os.Stat(d.SplitFile); err != nil {
				return errs.Input("data set %s: split file %s: %w; fix its split_file: entry", d.Name, d.SplitFile, safeio.PathCause(err))
			}
		}
	}
	return nil
}

// readResult returns a job's recorded result, nil when there is none. A result made with other
// settings is an error: it is not silently replaced.
func readResult(c *Config, out string, j Job) (*Result, error) {
	path := filepath.Join(out, JobsDir, j.ID, ResultFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errs.Input("%s: not valid JSON (%w); remove it to run the job again", path, err)
	}
	if r.Fingerprint != c.jobFingerprint(j) {
		return nil, errs.Input("%s was made with other settings or data; remove the job's folder to run it again, or give another experiment folder", path)
	}
	return &r, nil
}

// Run runs the experiment's jobs (those of opt.Shard), skipping those with a recorded result,
// and writes the table once every job has a result.
func Run(ctx context.Context, c *Config, opt Options) (*Report, error) {
	out, err := outDir(c, opt.Out)
	if err != nil {
		return nil, err
	}
	if err := c.checkData(); err != nil {
		return nil, err
	}
	if err := prepareOut(c, out); err != nil {
		return nil, err
	}
	rep := &Report{Out: out}
	logf := func(format string, a ...any) {
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, format+"\n", a...)
		}
	}
	all := c.Jobs()
	jobs := opt.Shard.Select(all)
	if opt.Shard.Count > 1 {
		logf("shard %s: %d of %d jobs", opt.Shard, len(jobs), len(all))
	}
	var bundleDir string
	for i, j := range jobs {
		tag := fmt.Sprintf("[%d/%d] %s", i+1, len(jobs), j.ID)
		r, err := readResult(c, out, j)
		if err != nil {
			return rep, err
		}
		if r != nil {
			logf("%s: done earlier (%s), skipped", tag, r.brief())
			rep.Skipped = append(rep.Skipped, j.ID)
			continue
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("%w before job %s; rerun the same command to continue", ErrStopped, j.ID)
		}
		if bundleDir == "" {
			if bundleDir, err = ensureBundle(ctx, c, out, logf); err != nil {
				return rep, err
			}
		}
		logf("%s: training on %s (%s, seed %d)", tag, j.Dataset, shotsLabel(j.Shots), j.Seed)
		r, err = runJob(ctx, c, out, bundleDir, j, opt)
		if err != nil {
			if errors.Is(err, train.ErrStopped) {
				return rep, fmt.Errorf("%w during job %s (its last checkpoint is kept); rerun the same command to continue", ErrStopped, j.ID)
			}
			return rep, fmt.Errorf("job %s: %w", j.ID, err)
		}
		logf("%s: %s, trained in %.1f s, peak memory %.0f MiB", tag, r.brief(), r.TrainSeconds, float64(r.PeakRSS)/(1<<20))
		rep.Ran = append(rep.Ran, j.ID)
	}
	results, missing, err := gather(c, out)
	if err != nil {
		return rep, err
	}
	if missing > 0 {
		logf("%d of %d jobs of the experiment still lack a result; once every shard has finished, run 'skipgraph experiment --collect' to write the table", missing, len(all))
		return rep, nil
	}
	if rep.Summary, rep.Files, err = writeTable(c, out, results); err != nil {
		return rep, err
	}
	return rep, nil
}

// Collect merges the results of every job (written by one run or by several shards) into the
// table. Every job needs a result.
func Collect(c *Config, o string) (*Report, error) {
	out, err := outDir(c, o)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(out, SettingsFile)); err != nil {
		return nil, errs.Input("%s: no %s; run the experiment (or its shards) into this folder first", out, SettingsFile)
	}
	if err := prepareOut(c, out); err != nil {
		return nil, err
	}
	results, _, err := gather(c, out)
	if err != nil {
		return nil, err
	}
	rep := &Report{Out: out}
	if rep.Summary, rep.Files, err = writeTable(c, out, results); err != nil {
		return nil, err
	}
	return rep, nil
}

// gather reads every recorded result and counts the jobs without one.
func gather(c *Config, out string) ([]Result, int, error) {
	var results []Result
	missing := 0
	for _, j := range c.Jobs() {
		r, err := readResult(c, out, j)
		if err != nil {
			return nil, 0, err
		}
		if r == nil {
			missing++
			continue
		}
		results = append(results, *r)
	}
	return results, missing, nil
}

// writeTable summarises the results and writes the report files atomically.
func writeTable(c *Config, out string, results []Result) (*Summary, []string, error) {
	s, err := Summarise(c, results)
	if err != nil {
		return nil, nil, errs.Input("%s: %w", out, err)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	var files []string
	for _, f := range []struct {
		name string
		b    []byte
	}{{TableMarkdown, s.Markdown()}, {TableJSON, append(js, '\n')}, {TableCSV, s.CSV()}, {JobsCSV, s.JobsCSV()}} {
		p := filepath.Join(out, f.name)
		if err := atomicfile.Write(p, f.b); err != nil {
			return nil, nil, fmt.Errorf("writing %s: %w", p, err)
		}
		files = append(files, p)
	}
	return s, files, nil
}

// ensureBundle converts the model once per experiment folder; a bundle already there (from an
// earlier run or another shard) is used as it is. Shards that convert at the same time each
// write a private folder and rename it into place; a rename never replaces a bundle that
// another shard put there first.
func ensureBundle(ctx context.Context, c *Config, out string, logf func(string, ...any)) (string, error) {
	dir := filepath.Join(out, BundleDir)
	if _, err := os.Stat(filepath.Join(dir, bundle.ManifestFile)); err == nil {
		return dir, nil
	}
	var specs []bundle.StrategySpec
	for _, s := range c.Strategies {
		st, _ := strategy.Builtin(s.Name)
		specs = append(specs, bundle.StrategySpec{Strategy: st, Args: s.args()})
	}
	logf("converting %s into %s", c.Model, dir)
	src, err := bundle.LoadSource(c.Model)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(out, ".convert-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if _, err := bundle.Convert(ctx, src, filepath.Join(tmp, BundleDir), bundle.Options{Strategies: specs}); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, BundleDir), dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, bundle.ManifestFile)); serr == nil {
			return dir, nil // another shard was first
		}
		return "", fmt.Errorf("cannot move the bundle into %s: %w", dir, err)
	}
	return dir, nil
}

// Prepare creates the experiment folder and converts the bundle, running no job: the step to
// run once before starting shards, so that they do not each convert the model.
func Prepare(ctx context.Context, c *Config, o string, progress io.Writer) (string, error) {
	out, err := outDir(c, o)
	if err != nil {
		return "", err
	}
	if err := prepareOut(c, out); err != nil {
		return "", err
	}
	return ensureBundle(ctx, c, out, func(format string, a ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", a...)
		}
	})
}

// brief renders a result's accuracies for progress lines.
func (r *Result) brief() string {
	switch r.Protocol {
	case Base2New:
		return fmt.Sprintf("base %s%%, new %s%%, H %s%%", pct(r.Accuracy["base"]), pct(r.Accuracy["new"]), pct(r.H))
	case FewShot:
		return fmt.Sprintf("accuracy %s%%", pct(r.Accuracy["accuracy"]))
	}
	return fmt.Sprintf("%d targets evaluated", len(r.Accuracy))
}

// runJob trains (or continues training) one job and evaluates it.
func runJob(ctx context.Context, c *Config, out, bundleDir string, j Job, opt Options) (*Result, error) {
	jobDir := filepath.Join(out, JobsDir, j.ID)
	runDir := filepath.Join(jobDir, "run")
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		return nil, err
	}
	ds := c.Dataset(j.Dataset)
	classes := data.ClassesAll
	if c.Protocol == Base2New {
		classes = data.ClassesBase
	}
	cfg := train.DefaultConfig()
	cfg.Bundle, cfg.Data, cfg.SplitFile, cfg.Classes, cfg.Out = bundleDir, ds.Data, ds.SplitFile, classes, runDir
	cfg.Tokenizer, cfg.Templates, cfg.Shots, cfg.Seed = c.Tokenizer, c.Templates, j.Shots, j.Seed
	t := c.Train
	if t.Epochs > 0 {
		cfg.Epochs = t.Epochs
	}
	if t.Batch > 0 {
		cfg.Batch = t.Batch
	}
	if t.WarmupEpochs != nil {
		cfg.WarmupEpochs = *t.WarmupEpochs
	} else if cfg.WarmupEpochs >= cfg.Epochs {
		cfg.WarmupEpochs = max(cfg.Epochs-1, 0)
	}
	if t.WarmupLR != nil {
		cfg.WarmupLR = *t.WarmupLR
	}
	cfg.LR, cfg.NoAugment, cfg.Device, cfg.Threads = t.LR, t.NoAugment, t.Device, t.Threads
	if opt.OnStep != nil {
		cfg.OnStep = func(s train.StepInfo) error { return opt.OnStep(j.ID, s) }
	}

	res := &Result{Job: j.ID, Dataset: j.Dataset, Shots: j.Shots, Seed: j.Seed, Protocol: c.Protocol,
		Fingerprint: c.jobFingerprint(j), Accuracy: map[string]float64{}}
	ri, _ := train.ReadRunInfo(runDir)
	switch {
	case ri != nil && ri.Finished:
		// Training finished before an interruption; only the evaluation is missing.
		res.Resumed = true
	default:
		if ri != nil && hasCheckpoint(runDir) {
			cfg = train.Config{Out: runDir, Resume: true, Device: cfg.Device, Threads: cfg.Threads, OnStep: cfg.OnStep, KeepCheckpoints: cfg.KeepCheckpoints}
			res.Resumed = true
		} else {
			cfg.Force = true // a run that died before its first checkpoint starts again
		}
		res.PeakReset = resetPeakRSS()
		start := time.Now()
		if _, err := train.Train(ctx, cfg); err != nil {
			return nil, err
		}
		res.TrainSeconds = time.Since(start).Seconds()
	}
	eval := func(d *Dataset, classes string) (float64, error) {
		ev, err := train.Evaluate(train.EvalConfig{Model: bundleDir, Params: runDir, Data: d.Data, SplitFile: d.SplitFile,
			Classes: classes, Split: "test", Tokenizer: c.Tokenizer, Templates: c.Templates, Batch: c.EvalBatch,
			Device: c.Train.Device, Threads: c.Train.Threads})
		if err != nil {
			return 0, err
		}
		return ev.Accuracy, nil
	}
	var err error
	switch c.Protocol {
	case Base2New:
		if res.Accuracy["base"], err = eval(ds, data.ClassesBase); err != nil {
			return nil, err
		}
		if res.Accuracy["new"], err = eval(ds, data.ClassesNew); err != nil {
			return nil, err
		}
		res.H = Harmonic(res.Accuracy["base"], res.Accuracy["new"])
	case FewShot:
		if res.Accuracy["accuracy"], err = eval(ds, data.ClassesAll); err != nil {
			return nil, err
		}
	default:
		for i := range c.Datasets {
			d := &c.Datasets[i]
			if res.Accuracy[d.Name], err = eval(d, data.ClassesAll); err != nil {
				return nil, err
			}
		}
	}
	res.PeakRSS = peakRSS()
	if err := atomicfile.WriteJSON(filepath.Join(jobDir, ResultFile), res); err != nil {
		return nil, err
	}
	return res, nil
}

// hasCheckpoint reports whether a training output folder holds an epoch checkpoint.
func hasCheckpoint(runDir string) bool {
	entries, err := os.ReadDir(filepath.Join(runDir, train.CheckpointsDir))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}
