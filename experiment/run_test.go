package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/train"
)

// childEnv makes the test binary run an experiment and exit, slowly after its first job, so
// that a test can kill it mid-way: EXPERIMENT_TEST_CHILD=CONFIG,OUT.
const childEnv = "SKIPGRAPH_EXPERIMENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		cfgPath, out, _ := strings.Cut(v, ",")
		c, err := Load(cfgPath)
		if err == nil {
			first := c.Jobs()[0].ID
			_, err = Run(context.Background(), c, Options{Out: out, OnStep: func(job string, _ train.StepInfo) error {
				if job != first {
					time.Sleep(300 * time.Millisecond)
				}
				return nil
			}})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	fixOnce sync.Once
	fixDir  string
	fixErr  error
)

// fixture writes a tiny CLIP (its tokenizer knows the words of both data sets' classes) and two
// small synthetic data sets of 4 and 5 classes, once per test binary.
func fixture(t *testing.T) string {
	t.Helper()
	fixOnce.Do(func() {
		fixDir, fixErr = os.MkdirTemp("", "skipgraph-experiment-test-")
		if fixErr != nil {
			return
		}
		var names []string
		for _, c := range data.SyntheticClasses(5) {
			names = append(names, data.DisplayName(c))
		}
		names = append(names, data.FashionMNISTClasses...)
		if _, fixErr = synth.WriteDemo(filepath.Join(fixDir, "model"), synth.PromptWords(names, []string{data.DefaultTemplate}), 2); fixErr != nil {
			return
		}
		for i, ds := range []struct {
			name    string
			classes int
		}{{"shapes4", 4}, {"shapes5", 5}} {
			for j, split := range []struct {
				name string
				n    int
			}{{"train", 6}, {"test", 4}} {
				if fixErr = data.GenerateDataset(filepath.Join(fixDir, ds.name, split.name), ds.classes, split.n, 32, uint64(10*i+j)); fixErr != nil {
					return
				}
			}
		}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fixDir
}

// smallConfig is the 2 data sets x 2 seeds base-to-new experiment of the tests.
func smallConfig(t *testing.T) string {
	dir := fixture(t)
	path := filepath.Join(t.TempDir(), "b2n.yaml")
	body := fmt.Sprintf(`name: tiny base-to-new
model: %s
protocol: base2new
datasets:
  - {name: shapes4, data: %s}
  - {name: shapes5, data: %s}
shots: 4
seeds: [1, 2]
train: {epochs: 2, batch: 4, lr: {text: 0.05, vision: 0.05}, warmup_epochs: 0, no_augment: true, threads: 1}
`, filepath.Join(dir, "model", "model.onnx"), filepath.Join(dir, "shapes4"), filepath.Join(dir, "shapes5"))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accuracyPart is the report up to its jobs table (which holds timings that differ run to run).
func accuracyPart(md []byte) string {
	s, _, _ := strings.Cut(string(md), "## Jobs")
	return s
}

// TestWholeVersusShards: the experiment run whole, and again as 2 shards plus --collect, gives
// identical tables.
func TestWholeVersusShards(t *testing.T) {
	cfgPath := smallConfig(t)
	c := load(t, cfgPath)
	whole := filepath.Join(t.TempDir(), "whole")
	var progress bytes.Buffer
	rep, err := Run(context.Background(), c, Options{Out: whole, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("whole run:\n%s", progress.String())
	if len(rep.Ran) != 4 || len(rep.Skipped) != 0 || rep.Summary == nil {
		t.Fatalf("whole run: ran %v, skipped %v, summary %v", rep.Ran, rep.Skipped, rep.Summary != nil)
	}
	for _, want := range []string{"converting", "[1/4] shapes4-seed1: training on shapes4 (4 shots, seed 1)", "[4/4] shapes5-seed2: base "} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q", want)
		}
	}
	for _, r := range rep.Summary.Jobs {
		if r.TrainSeconds <= 0 || r.PeakRSS <= 0 || len(r.Accuracy) != 2 || !near(r.H, Harmonic(r.Accuracy["base"], r.Accuracy["new"])) {
			t.Errorf("job %s: %+v", r.Job, r)
		}
		// The record of the draw: base classes only (2 of 4, 3 of 5), 4 shots each.
		var rec data.DrawRecord
		b := readFile(t, filepath.Join(whole, JobsDir, r.Job, "run", train.DrawFile))
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		base := map[string]int{"shapes4": 2, "shapes5": 3}[r.Dataset]
		if rec.Classes != data.ClassesBase || len(rec.ClassNames) != base || len(rec.Train) != 4*base || rec.Seed != r.Seed {
			t.Errorf("job %s: draw record %s, %d classes, %d images, seed %d", r.Job, rec.Classes, len(rec.ClassNames), len(rec.Train), rec.Seed)
		}
	}

	sharded := filepath.Join(t.TempDir(), "sharded")
	if _, err := Prepare(context.Background(), c, sharded, nil); err != nil {
		t.Fatal(err)
	}
	var shardLog bytes.Buffer
	rep0, err := Run(context.Background(), c, Options{Out: sharded, Shard: Shard{0, 2}, Progress: &shardLog})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shardLog.String(), "converting") || !strings.Contains(shardLog.String(), "shard 0/2: 2 of 4 jobs") {
		t.Errorf("shard 0/2 after --prepare:\n%s", shardLog.String())
	}
	if !slices.Equal(rep0.Ran, []string{"shapes4-seed1", "shapes5-seed1"}) || rep0.Summary != nil {
		t.Fatalf("shard 0/2 ran %v (summary written: %v)", rep0.Ran, rep0.Summary != nil)
	}
	if _, err := Collect(c, sharded); err == nil || !strings.Contains(err.Error(), "2 of 4 jobs have no result yet") {
		t.Errorf("collect with a shard missing: %v", err)
	}
	rep1, err := Run(context.Background(), c, Options{Out: sharded, Shard: Shard{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep1.Ran, []string{"shapes4-seed2", "shapes5-seed2"}) {
		t.Fatalf("shard 1/2 ran %v", rep1.Ran)
	}
	for _, f := range []string{TableMarkdown, TableJSON, TableCSV} {
		os.Remove(filepath.Join(sharded, f))
	}
	if _, err := Collect(c, sharded); err != nil {
		t.Fatal(err)
	}
	if a, b := readFile(t, filepath.Join(whole, TableCSV)), readFile(t, filepath.Join(sharded, TableCSV)); !bytes.Equal(a, b) {
		t.Errorf("results.csv differs:\nwhole:\n%s\nshards:\n%s", a, b)
	}
	if a, b := accuracyPart(readFile(t, filepath.Join(whole, TableMarkdown))), accuracyPart(readFile(t, filepath.Join(sharded, TableMarkdown))); a != b {
		t.Errorf("results.md differs:\nwhole:\n%s\nshards:\n%s", a, b)
	}
	var sw, ss Summary
	json.Unmarshal(readFile(t, filepath.Join(whole, TableJSON)), &sw)
	json.Unmarshal(readFile(t, filepath.Join(sharded, TableJSON)), &ss)
	rw, _ := json.Marshal([]any{sw.Rows, sw.Average})
	rs, _ := json.Marshal([]any{ss.Rows, ss.Average})
	if !bytes.Equal(rw, rs) || len(sw.Rows) != 2 {
		t.Errorf("results.json rows differ:\n%s\n%s", rw, rs)
	}
	for i := range sw.Jobs {
		if fmt.Sprint(sw.Jobs[i].Accuracy) != fmt.Sprint(ss.Jobs[i].Accuracy) {
			t.Errorf("job %s: %v whole, %v sharded", sw.Jobs[i].Job, sw.Jobs[i].Accuracy, ss.Jobs[i].Accuracy)
		}
	}
	t.Logf("table:\n%s", accuracyPart(readFile(t, filepath.Join(whole, TableMarkdown))))

	// A rerun of the finished experiment runs nothing.
	again, err := Run(context.Background(), c, Options{Out: whole})
	if err != nil || len(again.Ran) != 0 || len(again.Skipped) != 4 {
		t.Errorf("rerun: ran %v, skipped %v, %v", again.Ran, again.Skipped, err)
	}
	// Other settings in the same folder are refused.
	other := *c
	other.Train.Epochs = 3
	if _, err := Run(context.Background(), &other, Options{Out: whole}); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("changed settings in a finished folder: %v", err)
	}
}

// snapshot records the result files present: their content and modification time.
func snapshot(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	paths, _ := filepath.Glob(filepath.Join(out, JobsDir, "*", ResultFile))
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		got[filepath.Base(filepath.Dir(p))] = st.ModTime().String() + "\x00" + string(readFile(t, p))
	}
	return got
}

// TestKilledRunnerResumes kills a runner process with SIGKILL in the middle of its second job;
// a new run finishes the experiment without redoing the finished job.
func TestKilledRunnerResumes(t *testing.T) {
	cfgPath := smallConfig(t)
	c := load(t, cfgPath)
	out := filepath.Join(t.TempDir(), "out")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+cfgPath+","+out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	second := filepath.Join(out, JobsDir, c.Jobs()[1].ID, "run", train.MetricsFile)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(second); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the runner ended before its second job started: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the runner did not reach its second job in 2 minutes")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the runner finished before it was killed")
	}
	before := snapshot(t, out)
	if len(before) != 1 || before[c.Jobs()[0].ID] == "" {
		t.Fatalf("after the kill, results of %v; want the first job's only", slices.Sorted(maps.Keys(before)))
	}
	time.Sleep(20 * time.Millisecond) // a rewritten result would get a later modification time
	var progress bytes.Buffer
	rep, err := Run(context.Background(), c, Options{Out: out, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{c.Jobs()[0].ID}; !slices.Equal(rep.Skipped, want) {
		t.Errorf("skipped %v, want %v", rep.Skipped, want)
	}
	if want := []string{c.Jobs()[1].ID, c.Jobs()[2].ID, c.Jobs()[3].ID}; !slices.Equal(rep.Ran, want) {
		t.Errorf("ran %v, want %v", rep.Ran, want)
	}
	after := snapshot(t, out)
	if after[c.Jobs()[0].ID] != before[c.Jobs()[0].ID] {
		t.Error("the finished job's result was rewritten")
	}
	if len(after) != 4 || rep.Summary == nil {
		t.Errorf("%d results after the rerun, summary %v", len(after), rep.Summary != nil)
	}
	if !strings.Contains(progress.String(), "[1/4] "+c.Jobs()[0].ID+": done earlier") {
		t.Errorf("progress does not say the first job was skipped:\n%s", progress.String())
	}
}

// TestStopAndCrashResume: a cancellation at a job boundary stops before the next job, a crash
// in the middle of a job keeps the finished jobs, and the next run resumes the crashed job from
// its checkpoint and redoes nothing.
func TestStopAndCrashResume(t *testing.T) {
	c := load(t, smallConfig(t))
	out := filepath.Join(t.TempDir(), "out")
	jobs := c.Jobs()

	// 1. Cancelled once the first job has finished: stops at the boundary.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOn{marker: jobs[0].ID + ": base ", cancel: cancel}
	rep, err := Run(ctx, c, Options{Out: out, Progress: w})
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "before job "+jobs[1].ID) {
		t.Fatalf("cancelled run: %v", err)
	}
	if !slices.Equal(rep.Ran, []string{jobs[0].ID}) {
		t.Fatalf("cancelled run ran %v", rep.Ran)
	}
	first := snapshot(t, out)

	// 2. A crash in the second epoch of the second job (after its first checkpoint).
	crash := errors.New("simulated crash")
	_, err = Run(context.Background(), c, Options{Out: out, OnStep: func(job string, s train.StepInfo) error {
		if job == jobs[1].ID && s.Epoch == 2 {
			return crash
		}
		return nil
	}})
	if !errors.Is(err, crash) {
		t.Fatalf("crashed run: %v", err)
	}
	if got := snapshot(t, out); len(got) != 1 {
		t.Fatalf("after the crash, %d results", len(got))
	}

	// 3. The rerun finishes: the first job skipped, the second resumed, the rest run.
	rep, err = Run(context.Background(), c, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Skipped, []string{jobs[0].ID}) || !slices.Equal(rep.Ran, []string{jobs[1].ID, jobs[2].ID, jobs[3].ID}) {
		t.Errorf("rerun skipped %v, ran %v", rep.Skipped, rep.Ran)
	}
	if snapshot(t, out)[jobs[0].ID] != first[jobs[0].ID] {
		t.Error("the first job's result was rewritten")
	}
	for _, r := range rep.Summary.Jobs {
		if r.Resumed != (r.Job == jobs[1].ID) {
			t.Errorf("job %s: resumed %v", r.Job, r.Resumed)
		}
	}
}

// cancelOn cancels a context when a progress line holds marker.
type cancelOn struct {
	marker string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

// TestFewShotAndCrossDataset runs the other protocols' jobs end to end: few-shot with two shot
// counts, and cross-dataset from one data set to another with different classes.
func TestFewShotAndCrossDataset(t *testing.T) {
	dir := fixture(t)
	model := filepath.Join(dir, "model", "model.onnx")
	recipe := "train: {epochs: 1, batch: 4, lr: {text: 0.05, vision: 0.05}, warmup_epochs: 0, no_augment: true, threads: 1}\n"
	for _, tt := range []struct {
		body    string
		jobs    []string
		columns string
		keys    []string
	}{
		{fmt.Sprintf("protocol: fewshot\nshots: [1, 2]\nseeds: [1]\ndatasets: [{name: s4, data: %s}]\n", filepath.Join(dir, "shapes4")),
			[]string{"s4-1shot-seed1", "s4-2shot-seed1"}, "1 shot,2 shots", []string{"accuracy"}},
		{fmt.Sprintf("protocol: xd\nshots: 2\nseeds: [1]\ndatasets: [{name: s4, data: %s}, {name: s5, data: %s}]\n", filepath.Join(dir, "shapes4"), filepath.Join(dir, "shapes5")),
			[]string{"s4-seed1"}, "s4,s5,target average", []string{"s4", "s5"}},
	} {
		path := filepath.Join(t.TempDir(), "e.yaml")
		if err := os.WriteFile(path, []byte("model: "+model+"\n"+tt.body+recipe), 0o644); err != nil {
			t.Fatal(err)
		}
		c := load(t, path)
		rep, err := Run(context.Background(), c, Options{Out: filepath.Join(t.TempDir(), "out")})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.Ran, tt.jobs) || rep.Summary == nil {
			t.Fatalf("%s: ran %v", c.Protocol, rep.Ran)
		}
		if got := strings.Join(rep.Summary.Columns, ","); got != tt.columns {
			t.Errorf("%s: columns %s, want %s", c.Protocol, got, tt.columns)
		}
		for _, r := range rep.Summary.Jobs {
			if !slices.Equal(slices.Sorted(maps.Keys(r.Accuracy)), tt.keys) {
				t.Errorf("%s job %s: accuracies %v, want %v", c.Protocol, r.Job, r.Accuracy, tt.keys)
			}
			for k, v := range r.Accuracy {
				if v < 0 || v > 1 {
					t.Errorf("%s job %s: %s accuracy %v", c.Protocol, r.Job, k, v)
				}
			}
		}
	}
}
