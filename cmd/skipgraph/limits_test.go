package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/tensorio"
	"github.com/skipgraph/skipgraph/train"
)

// killChildEnv, when set in the environment of this test binary, makes it run the CLI with the
// arguments in killArgsEnv (JSON) and kill itself with SIGKILL after the training step it
// names: a real process killed at a real step.
const (
	killChildEnv = "SKIPGRAPH_TEST_KILL_AT_STEP"
	killArgsEnv  = "SKIPGRAPH_TEST_KILL_ARGS"
)

func init() {
	at := os.Getenv(killChildEnv)
	if at == "" {
		return
	}
	step, _ := strconv.Atoi(at)
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(killArgsEnv)), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	onTrainStep = func(s train.StepInfo) error {
		if s.Step == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
		return nil
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// TestKillAndResume: a training run killed with SIGKILL at a random step inside an epoch,
// then resumed, ends with parameters byte for byte those of a run that was never interrupted;
// --checkpoint-every bounds what the kill lost.
func TestKillAndResume(t *testing.T) {
	fix := trainFixture(t)
	b := filepath.Join(fix, "bundle")
	common := []string{"--data", filepath.Join(fix, "data"), "--epochs", "5", "--batch", "2", "--lr-text", "0.05", "--lr-vision", "0.05", "--threads", "1", "-q", "--checkpoint-every", "4"}
	ref := filepath.Join(t.TempDir(), "ref")
	if code, _, stderr := runCLI(append([]string{"train", b, "-o", ref}, common...)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}
	const perEpoch, total = 6, 30 // 12 images in batches of 2, 5 epochs
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 0))
	step := 0
	for step%perEpoch == 0 { // past the first step checkpoint, inside an epoch
		step = 5 + r.IntN(total-5)
	}
	t.Logf("killing at step %d (seed %d)", step, seed)
	out := filepath.Join(t.TempDir(), "run")
	args, _ := json.Marshal(append([]string{"train", b, "-o", out}, common...))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+strconv.Itoa(step), killArgsEnv+"="+string(args))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v: %s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, train.ParamsDir)); err == nil {
		t.Fatal("a killed run wrote final parameters")
	}
	// --checkpoint-every 4: the kill lost fewer than 4 steps.
	last := newestCheckpoint(t, out)
	if lost := step - last; lost < 0 || lost >= 4 {
		t.Errorf("killed at step %d, newest checkpoint at step %d", step, last)
	}
	code, _, stderr2 := runCLI("train", "--resume", out)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr2)
	}
	if !strings.Contains(stderr2, "resuming from") || !strings.Contains(stderr2, fmt.Sprintf("step %d)", last)) {
		t.Errorf("the resume did not start from the checkpoint of step %d: %s", last, stderr2)
	}
	// the trained parameters, byte for byte
	for _, rel := range []string{train.ParamsFile} {
		a, err := os.ReadFile(filepath.Join(ref, rel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		if len(a) < 1024 || !bytes.Equal(a, b) {
			t.Errorf("%s (%d bytes) differs from the uninterrupted run's (%d bytes)", rel, len(b), len(a))
		}
	}
}

// newestCheckpoint returns the step of a run's newest checkpoint (0: none).
func newestCheckpoint(t *testing.T, out string) int {
	entries, _ := os.ReadDir(filepath.Join(out, train.CheckpointsDir))
	best := 0
	for _, e := range entries {
		var ck train.Checkpoint
		b, err := os.ReadFile(filepath.Join(out, train.CheckpointsDir, e.Name(), train.CheckpointFile))
		if err != nil || json.Unmarshal(b, &ck) != nil {
			continue
		}
		best = max(best, ck.Step)
	}
	return best
}

// TestBadNumbers: numbers out of range, from flags or from a bundle's manifest, and duplicate
// or contradictory values are refused with exit code 2 and one line that names the value.
func TestBadNumbers(t *testing.T) {
	fix := trainFixture(t)
	b := filepath.Join(fix, "bundle")
	dataDir := filepath.Join(fix, "data")
	model := filepath.Join(fix, "model", "model.onnx")
	trainArgs := func(tmp string, extra ...string) []string {
		return append([]string{"train", b, "--data", dataDir, "-o", filepath.Join(tmp, "out")}, extra...)
	}
	editManifest := func(t *testing.T, tmp string, edit func(m map[string]any)) string {
		nb := filepath.Join(tmp, "bundle")
		copyTree(t, b, nb)
		raw, err := os.ReadFile(filepath.Join(nb, bundle.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		raw, _ = json.Marshal(m)
		os.WriteFile(filepath.Join(nb, bundle.ManifestFile), raw, 0o644)
		return nb
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, tmp string) []string
		want  []string
	}{
		{"threads negative", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--threads", "-5") }, []string{"--threads -5", "per CPU"}},
		{"threads huge", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--threads", "100000") }, []string{"--threads 100000", "per CPU"}},
		{"eval threads huge", func(t *testing.T, tmp string) []string {
			return []string{"eval", b, "--data", dataDir, "--threads", "100000", "--confusion", ""}
		}, []string{"--threads 100000"}},
		{"eval batch 0", func(t *testing.T, tmp string) []string {
			return []string{"eval", b, "--data", dataDir, "--batch", "0", "--confusion", ""}
		}, []string{"--batch 0"}},
		{"batch huge", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--batch", "100000000") }, []string{"--batch 100000000"}},
		{"epochs huge", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--epochs", "1000000000") }, []string{"--epochs 1000000000"}},
		{"warmup lr NaN", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--warmup-lr", "NaN") }, []string{"--warmup-lr NaN"}},
		{"val fraction NaN", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--val-fraction", "NaN") }, []string{"--val-fraction NaN"}},
		{"checkpoint-every garbage", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--checkpoint-every", "often") }, []string{`--checkpoint-every "often"`}},
		{"checkpoint-every negative", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--checkpoint-every", "-3") }, []string{`--checkpoint-every "-3"`}},
		{"keep-checkpoints negative", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--keep-checkpoints", "-1") }, []string{"--keep-checkpoints -1"}},
		{"decode-memory tiny", func(t *testing.T, tmp string) []string { return trainArgs(tmp, "--decode-memory", "1KiB") }, []string{`--decode-memory "1KiB"`}},
		{"manifest context length 1<<40", func(t *testing.T, tmp string) []string {
			nb := editManifest(t, tmp, func(m map[string]any) { m["text"].(map[string]any)["context_length"] = 1 << 40 })
			return []string{"train", nb, "--data", dataDir, "-o", filepath.Join(tmp, "out")}
		}, []string{"manifest.json", "text.context_length 1099511627776: want 1 to 16384"}},
		{"manifest image size huge", func(t *testing.T, tmp string) []string {
			nb := editManifest(t, tmp, func(m map[string]any) { m["vision"].(map[string]any)["image_size"] = 1 << 30 })
			return []string{"eval", nb, "--data", dataDir, "--confusion", ""}
		}, []string{"manifest.json", "vision.image_size"}},
		{"manifest parameter shape huge", func(t *testing.T, tmp string) []string {
			nb := editManifest(t, tmp, func(m map[string]any) {
				m["parameters"].([]any)[0].(map[string]any)["shape"] = []int64{1 << 30, 1 << 30}
			})
			return []string{"train", nb, "--data", dataDir, "-o", filepath.Join(tmp, "out")}
		}, []string{"manifest.json", "the shape of parameter"}},
		{"manifest cskip max huge", func(t *testing.T, tmp string) []string {
			nb := editManifest(t, tmp, func(m map[string]any) { m["cskip"].(map[string]any)["max"] = 1 << 40 })
			return []string{"train", nb, "--data", dataDir, "-o", filepath.Join(tmp, "out")}
		}, []string{"manifest.json", "cskip.max"}},
		{"plan classes huge", func(t *testing.T, tmp string) []string {
			return []string{"plan", model, "--classes", "100000000"}
		}, []string{"--classes 100000000"}},
		{"plan classes max int", func(t *testing.T, tmp string) []string {
			return []string{"plan", model, "--classes", "9223372036854775807"}
		}, []string{"--classes 9223372036854775807"}},
		{"weight decay negative", func(t *testing.T, tmp string) []string {
			return []string{"convert", model, "-o", filepath.Join(tmp, "out"), "--weight-decay", "-0.1"}
		}, []string{"--weight-decay -0.1"}},
		{"weight decay NaN", func(t *testing.T, tmp string) []string {
			return []string{"convert", model, "-o", filepath.Join(tmp, "out"), "--weight-decay", "NaN"}
		}, []string{"--weight-decay NaN"}},
		{"momentum NaN", func(t *testing.T, tmp string) []string {
			return []string{"convert", model, "-o", filepath.Join(tmp, "out"), "--momentum", "NaN"}
		}, []string{"--momentum NaN"}},
		{"run input twice", func(t *testing.T, tmp string) []string {
			x, _ := tensorio.FromSlice([]int64{1}, []float32{1})
			f := filepath.Join(tmp, "x.npy")
			tensorio.SaveNPY(f, x)
			return []string{"run", model, "--input", "pixel_values=" + f, "--input", "pixel_values=" + f}
		}, []string{"--input pixel_values is given twice"}},
		{"unknown operator in the source", func(t *testing.T, tmp string) []string {
			m, err := onnxio.Load(model)
			if err != nil {
				t.Fatal(err)
			}
			var victim string
			for _, n := range m.Graph.Nodes() {
				if n.OpType == "Softmax" {
					n.OpType, victim = "EvilOp", n.Name
					break
				}
			}
			if victim == "" {
				t.Fatal("no Softmax node")
			}
			bad := filepath.Join(tmp, "evil.onnx")
			if err := onnxio.Save(m, bad, onnxio.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			return []string{"convert", bad, "-o", filepath.Join(tmp, "out"), "-q"}
		}, []string{"evil.onnx", "EvilOp is not an ONNX operator", "replace it with standard ONNX operators"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			args := tc.setup(t, tmp)
			code, _, stderr := runCLI(args...)
			checkInputError(t, code, stderr, tc.want...)
			if _, err := os.Stat(filepath.Join(tmp, "out")); err == nil {
				t.Error("output written")
			}
		})
	}
}
