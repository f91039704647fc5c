package train

// The epoch and step loop.

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/tensorio"
)

// run trains from the start or from the checkpoint folder resumeFrom.
func (t *trainer) run(ctx context.Context, resumeFrom string) (*Result, error) {
	cfg := &t.cfg
	man := t.man
	params, err := t.bundle.InitialParams()
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
		cacheBefore := t.cacheTime
		if err := t.buildEpoch(ctx, epoch, prog); err != nil {
			return nil, err
		}
		cacheTime := t.cacheTime - cacheBefore
		var epochSteps time.Duration // the epoch's optimizer steps (this session's)
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
				return nil, fmt.Errorf("%w at step %d (%w)", ErrStopped, ck.Step, ctx.Err())
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
			took := time.Since(t0)
			epochSteps += took
			if ck.Step > 0 || bi > 0 {
				stepTime += took
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
		rec := map[string]any{"type": "epoch", "epoch": epoch + 1, "step": ck.Step, "loss": res.Loss, "acc": jsonNum(res.TrainAcc), "lr": lrs, "time": round3(elapsed()),
			"cache_time": round3(cacheTime.Seconds()), "step_time": round3(epochSteps.Seconds())}
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
