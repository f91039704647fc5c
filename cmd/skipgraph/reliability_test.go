package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
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
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
	"github.com/skipgraph/skipgraph/train"
)

// holdTempEnv makes the test binary, started as a helper process, create the temporary folder
// of the target it names (as convert does while writing a bundle) and wait to be killed.
const holdTempEnv = "SKIPGRAPH_TEST_HOLD_TEMP"

func TestMain(m *testing.M) {
	if target := os.Getenv(holdTempEnv); target != "" {
		td, err := safeio.NewTempDir(target)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(td.Path, bundle.ManifestFile), []byte("{}"), 0o644)
		fmt.Println(td.Path)
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// runCLIWithin runs the CLI in-process and fails the test, instead of hanging it, when the
// command does not return within limit.
func runCLIWithin(t *testing.T, limit time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		c, o, e := runCLI(args...)
		done <- result{c, o, e}
	}()
	select {
	case r := <-done:
		return r.code, r.stdout, r.stderr
	case <-time.After(limit):
		t.Fatalf("skipgraph %s did not return within %s", strings.Join(args, " "), limit)
	}
	return
}

// lastLine returns the last line of stderr and fails the test when stderr holds a stack trace or
// more than one line.
func oneLineErr(t *testing.T, stderr string) string {
	t.Helper()
	s := strings.TrimSpace(stderr)
	if strings.Contains(s, "goroutine ") || strings.Contains(s, "internal error") {
		t.Fatalf("stderr holds a panic: %q", s)
	}
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// snapshot hashes every file under the roots, to tell whether a command touched them.
func snapshot(t *testing.T, roots ...string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				out[p] = sha256.Sum256(b)
			} else if d.IsDir() {
				out[p+"/"] = [32]byte{}
			}
			return nil
		})
	}
	return out
}

func sameSnapshot(a, b map[string][32]byte) string {
	for p, h := range a {
		if g, ok := b[p]; !ok {
			return p + " is gone"
		} else if g != h {
			return p + " changed"
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			return p + " appeared"
		}
	}
	return ""
}

// trainedFixture is trainFixture plus a one-epoch training run of the bundle in run/.
func trainedFixture(t *testing.T) string {
	t.Helper()
	dir := trainFixture(t)
	if code, _, stderr := runCLI("train", filepath.Join(dir, "bundle"), "--data", filepath.Join(dir, "data"), "-o", filepath.Join(dir, "run"), "--epochs", "1", "--batch", "4", "--threads", "1", "-q"); code != 0 {
		t.Fatalf("train: %s", stderr)
	}
	return dir
}

// guardFixture is trainedFixture plus an export of the run, and user folders: m holds a copy of
// the model with the user's notes, p/sub another copy, q a model.onnx of the user's.
func guardFixture(t *testing.T) string {
	t.Helper()
	dir := trainedFixture(t)
	if code, _, stderr := runCLI("export", filepath.Join(dir, "bundle"), "--params", filepath.Join(dir, "run"), "-o", filepath.Join(dir, "tuned.onnx")); code != 0 {
		t.Fatalf("export: %s", stderr)
	}
	copyTree(t, filepath.Join(dir, "model"), filepath.Join(dir, "m"))
	if err := os.WriteFile(filepath.Join(dir, "m", "notes.txt"), []byte("the user's own notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, "model"), filepath.Join(dir, "p", "sub"))
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// q holds a model.onnx of the user's that no skipgraph command wrote
	if err := os.MkdirAll(filepath.Join(dir, "q"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "q", "model.onnx"), []byte("the user's own model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOutputGuard: no command writes over or deletes an input, and --force replaces only what
// skipgraph wrote (a bundle, a run, an export, a synth model, a PNG of its own).
func TestOutputGuard(t *testing.T) {
	dir := guardFixture(t)
	p := func(rel string) string { return filepath.Join(dir, rel) }
	model, b, run, data := p("m/model.onnx"), p("bundle"), p("run"), p("data")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"convert into the model's folder", []string{"convert", model, "-o", p("m"), "--force", "-q"}, 2, "holds the input"},
		{"convert into a parent of the model", []string{"convert", p("p/sub/model.onnx"), "-o", p("p"), "--force", "-q"}, 2, "holds the input"},
		{"convert over a user folder", []string{"convert", p("model/model.onnx"), "-o", p("m"), "--force", "-q"}, 2, "not a bundle that skipgraph wrote"},
		{"convert over a bundle without --force", []string{"convert", model, "-o", b, "-q"}, 2, "already exists; remove it or pass --force"},
		{"eval confusion over the model", []string{"eval", model, "--data", data, "--confusion", model}, 2, "is an input of this command"},
		{"eval confusion over a user file", []string{"eval", model, "--data", data, "--confusion", p("m/notes.txt")}, 2, "not a confusion matrix PNG that skipgraph wrote"},
		{"synth over a user's model", []string{"synth", "-o", p("q")}, 2, "already exists and is not a synthetic model"},
		{"synth --force over a user's model", []string{"synth", "-o", p("q"), "--force"}, 2, "not a synthetic model that skipgraph wrote"},
		{"export over a folder", []string{"export", b, "--params", run, "-o", p("empty"), "--force"}, 2, "is a folder"},
		{"export over a foreign model", []string{"export", b, "--params", run, "-o", model, "--force"}, 2, "not an exported model that skipgraph wrote"},
		{"export over its source", []string{"export", b, "--params", run, "-o", p("model/model.onnx"), "--force"}, 2, "is an input of this command"},
		{"train into its bundle", []string{"train", b, "--data", data, "-o", b, "--force"}, 2, "is an input of this command"},
		{"train into its data", []string{"train", b, "--data", data, "-o", dir, "--force"}, 2, "holds the input"},
		{"train over a user folder", []string{"train", b, "--data", data, "-o", p("m"), "--force"}, 2, "not a training run that skipgraph wrote"},
		{"run output over its input", append([]string{"run", p("model/model.onnx"), "-o", p("rin")}, runInputs(t, b, p("rin"))...), 2, "is an input of this command"},
		// what skipgraph wrote it may replace
		{"convert --force over a bundle", []string{"convert", p("model/model.onnx"), "-o", b, "--force", "-q"}, 0, ""},
		{"export --force over an export", []string{"export", b, "--params", run, "-o", p("tuned.onnx"), "--force"}, 0, ""},
		{"eval confusion written twice", []string{"eval", model, "--data", data, "--confusion", p("c.png")}, 0, ""},
		{"eval confusion written twice (2)", []string{"eval", model, "--data", data, "--confusion", p("c.png")}, 0, ""},
		{"synth into a new folder", []string{"synth", "-o", p("s")}, 0, ""},
		{"synth --force over synth", []string{"synth", "-o", p("s"), "--force"}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, p("m"), p("p"), p("q"), p("model"), p("rin"), data)
			code, _, stderr := runCLIWithin(t, time.Minute, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if tc.code != 0 && !strings.Contains(oneLineErr(t, stderr), tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr, tc.want)
			}
			if diff := sameSnapshot(before, snapshot(t, p("m"), p("p"), p("q"), p("model"), p("rin"), data)); diff != "" {
				t.Fatalf("an input or a user file was touched: %s", diff)
			}
		})
	}
}

// TestPluginHangStopped: a shell-script plugin whose child holds its stdout is stopped by
// --plugin-timeout, with the child: nothing of it is left running.
func TestPluginHangStopped(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "skipgraph-strategy-hang")
	pidFile := filepath.Join(dir, "child.pid")
	body := "#!/bin/sh\nsleep 100000 &\necho $! > " + pidFile + "\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(trainFixture(t), "model", "model.onnx")
	const timeout = 2 * time.Second
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"strategies", []string{"strategies", "--plugin", script, "--plugin-timeout", timeout.String()}, 0},
		{"convert", []string{"convert", model, "-o", filepath.Join(dir, "out"), "--strategy", "lskip,hang", "--plugin", script, "--plugin-timeout", timeout.String()}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(pidFile)
			start := time.Now()
			code, stdout, stderr := runCLIWithin(t, timeout+20*time.Second, tc.args...)
			took := time.Since(start)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if !strings.Contains(stdout+stderr, "did not complete the handshake within "+timeout.String()) {
				t.Errorf("output does not report the timeout: %s%s", stdout, stderr)
			}
			if took > timeout+4*time.Second {
				t.Errorf("took %s for a %s timeout", took, timeout)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("the plugin did not start its child: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the plugin's child %d is still running", pid)
			}
		})
	}
}

// alive reports whether process pid exists and is not a zombie (a killed child whose new parent
// has not reaped it yet is dead).
func alive(pid int) bool {
	for range 50 { // the kill is asynchronous: give the kernel a moment
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// fifo makes a named pipe at p (replacing a file there).
func fifo(t *testing.T, p string) string {
	t.Helper()
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSpecialFileInputs: a named pipe where a command reads a file (a model, an image, a params
// .npy, external data, a tokenizer, a manifest, an --input) is refused at once, exit 2, naming it.
func TestSpecialFileInputs(t *testing.T) {
	fix := trainedFixture(t)
	dir := t.TempDir()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	bnd, data := filepath.Join(fix, "bundle"), filepath.Join(fix, "data")
	copyTree(t, filepath.Join(fix, "run"), p("run"))
	copyTree(t, data, p("data"))
	classes, _ := os.ReadDir(p("data"))
	var classDir string
	for _, c := range classes {
		if c.IsDir() {
			classDir = filepath.Join(p("data"), c.Name())
			break
		}
	}
	fifo(t, filepath.Join(classDir, "zz.png"))
	idx, err := os.ReadFile(p("run/params/index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct{ Files map[string]string }
	if err := json.Unmarshal(idx, &index); err != nil {
		t.Fatal(err)
	}
	for _, f := range index.Files {
		fifo(t, p("run/params/"+f))
		break
	}
	copyTree(t, filepath.Join(fix, "model"), p("tok"))
	fifo(t, p("tok/tokenizer.json"))
	copyTree(t, bnd, p("bman"))
	fifo(t, p("bman/manifest.json"))
	copyTree(t, bnd, p("bstep"))
	fifo(t, p("bstep/train_step.onnx"))
	// a model with external data, whose data file is a pipe
	m, err := onnxio.Load(filepath.Join(fix, "model", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p("ext"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnxio.Save(m, p("ext/model.onnx"), onnxio.SaveOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	fifo(t, p("ext/model.onnx.data"))
	fifo(t, p("pipe.onnx"))
	fifo(t, p("x.npy"))

	cases := []struct {
		name, want string
		args       []string
	}{
		{"inspect a pipe model", "pipe.onnx", []string{"inspect", p("pipe.onnx")}},
		{"run a pipe model", "pipe.onnx", []string{"run", p("pipe.onnx")}},
		{"eval a pipe model", "pipe.onnx", []string{"eval", p("pipe.onnx"), "--data", data, "--tokenizer", filepath.Join(fix, "model"), "--confusion", ""}},
		{"run with a pipe input", "x.npy", []string{"run", filepath.Join(fix, "model", "model.onnx"), "--input", "input_ids=" + p("x.npy")}},
		{"inspect external data in a pipe", "model.onnx.data", []string{"inspect", p("ext/model.onnx")}},
		{"eval an image that is a pipe", "zz.png", []string{"eval", filepath.Join(fix, "model", "model.onnx"), "--data", p("data"), "--confusion", ""}},
		{"train on an image that is a pipe", "zz.png", []string{"train", bnd, "--data", p("data"), "-o", p("out1"), "--epochs", "1"}},
		{"eval params .npy that is a pipe", ".npy", []string{"eval", bnd, "--params", p("run"), "--data", data, "--confusion", ""}},
		{"eval a tokenizer that is a pipe", "tokenizer.json", []string{"eval", p("tok/model.onnx"), "--data", data, "--confusion", ""}},
		{"train a manifest that is a pipe", "manifest.json", []string{"train", p("bman"), "--data", data, "-o", p("out2"), "--epochs", "1"}},
		{"train a train step that is a pipe", "train_step.onnx", []string{"train", p("bstep"), "--data", data, "-o", p("out3"), "--epochs", "1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLIWithin(t, 30*time.Second, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if line := oneLineErr(t, stderr); !strings.Contains(line, tc.want) || !strings.Contains(line, "named pipe") {
				t.Fatalf("stderr %q: want one line naming %s as a named pipe", stderr, tc.want)
			}
		})
	}
}

// TestPathsConfined: a manifest or params index naming a file outside its folder, directly or
// through a symbolic link, is refused with one line, exit 2.
func TestPathsConfined(t *testing.T) {
	fix := trainedFixture(t)
	dir := t.TempDir()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	bnd, data := filepath.Join(fix, "bundle"), filepath.Join(fix, "data")
	copyTree(t, filepath.Join(fix, "run"), p("run"))
	outside := p("outside.onnx")
	copyFile(t, filepath.Join(bnd, bundle.TrainStepFile), outside)
	editManifest := func(name string, edit func(m map[string]any)) string {
		copyTree(t, bnd, p(name))
		path := filepath.Join(p(name), bundle.ManifestFile)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ = json.Marshal(m)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p(name)
	}
	graphFile := func(file string) func(map[string]any) {
		return func(m map[string]any) { m["graphs"].(map[string]any)["train_step"].(map[string]any)["file"] = file }
	}
	dotdot := editManifest("dotdot", graphFile("../outside.onnx"))
	abs := editManifest("abs", graphFile(outside))
	linked := editManifest("linked", func(map[string]any) {})
	os.Remove(filepath.Join(linked, bundle.TrainStepFile))
	if err := os.Symlink(outside, filepath.Join(linked, bundle.TrainStepFile)); err != nil {
		t.Fatal(err)
	}
	// params: an index entry leaving the folder, and a .npy that is a link to a file outside
	copyTree(t, p("run"), p("run-dotdot"))
	copyTree(t, p("run"), p("run-link"))
	idxPath := p("run-dotdot/params/index.json")
	b, _ := os.ReadFile(idxPath)
	var idx struct {
		Files map[string]string `json:"files"`
	}
	json.Unmarshal(b, &idx)
	var victim string
	for n, f := range idx.Files {
		victim = f
		copyFile(t, p("run/params/"+f), p("x.npy"))
		idx.Files[n] = "../../x.npy"
		break
	}
	b, _ = json.Marshal(idx)
	os.WriteFile(idxPath, b, 0o644)
	os.Remove(p("run-link/params/" + victim))
	if err := os.Symlink(p("x.npy"), p("run-link/params/"+victim)); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, want string
		args       []string
	}{
		{"manifest ../ path", "leaves the folder", []string{"train", dotdot, "--data", data, "-o", p("o1")}},
		{"manifest absolute path", "is an absolute path", []string{"train", abs, "--data", data, "-o", p("o2")}},
		{"manifest path through a link", "through a symbolic link", []string{"train", linked, "--data", data, "-o", p("o3")}},
		{"eval of a manifest ../ path", "leaves the folder", []string{"eval", dotdot, "--data", data, "--confusion", ""}},
		{"params index ../ path", "leaves the folder", []string{"eval", bnd, "--params", p("run-dotdot"), "--data", data, "--confusion", ""}},
		{"params file through a link", "through a symbolic link", []string{"eval", bnd, "--params", p("run-link"), "--data", data, "--confusion", ""}},
		{"export with params through a link", "through a symbolic link", []string{"export", bnd, "--params", p("run-link"), "-o", p("e.onnx")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLIWithin(t, time.Minute, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if line := oneLineErr(t, stderr); !strings.Contains(line, tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr, tc.want)
			}
			for _, o := range []string{"o1", "o2", "o3", "e.onnx"} {
				if _, err := os.Stat(p(o)); err == nil {
					t.Fatalf("a refused command left %s", o)
				}
			}
		})
	}
}

// runInputs writes valid inputs of the bundle's source model into dir, the token ids under the
// name of the model's first output (so that run -o dir would write over them), and returns the
// --input flags.
func runInputs(t *testing.T, bundleDir, dir string) []string {
	t.Helper()
	man, err := bundle.ReadManifest(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	n, size := man.Text.ContextLength, man.Vision.ImageSize
	ids, err := tensorio.New(tensorio.Int64, 1, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	px, err := tensorio.New(tensorio.Float32, 1, 3, int64(size), int64(size))
	if err != nil {
		t.Fatal(err)
	}
	idsFile, pxFile := filepath.Join(dir, "logits_per_image.npy"), filepath.Join(dir, "px.npy")
	if err := tensorio.SaveNPY(idsFile, ids); err != nil {
		t.Fatal(err)
	}
	if err := tensorio.SaveNPY(pxFile, px); err != nil {
		t.Fatal(err)
	}
	a := []string{"--input", man.Text.InputIDs + "=" + idsFile, "--input", man.Vision.Input + "=" + pxFile}
	if man.Text.AttentionMask != "" {
		a = append(a, "--input", man.Text.AttentionMask+"="+idsFile)
	}
	return a
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInputErrorsExit2: bad inputs that used to end with exit 1 (or a recovered panic, or a
// negative size) end with exit 2 and one line naming the input.
func TestInputErrorsExit2(t *testing.T) {
	fix := trainedFixture(t)
	dir := t.TempDir()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	bnd, data, model := filepath.Join(fix, "bundle"), filepath.Join(fix, "data"), filepath.Join(fix, "model", "model.onnx")
	copyTree(t, filepath.Join(fix, "run"), p("run"))
	copyTree(t, bnd, p("truncated"))
	step, _ := os.ReadFile(filepath.Join(bnd, bundle.TrainStepFile))
	os.WriteFile(p("truncated/"+bundle.TrainStepFile), step[:len(step)/3], 0o644)
	copyTree(t, bnd, p("nofeatures"))
	os.Remove(p("nofeatures/" + bundle.FeaturesFile))
	manifestWith := func(name, section, key string, v any) string {
		copyTree(t, bnd, p(name))
		path := p(name + "/" + bundle.ManifestFile)
		b, _ := os.ReadFile(path)
		var m map[string]any
		json.Unmarshal(b, &m)
		m[section].(map[string]any)[key] = v
		b, _ = json.Marshal(m)
		os.WriteFile(path, b, 0o644)
		return p(name)
	}
	ctx0 := manifestWith("ctx0", "text", "context_length", 0)
	imgNeg := manifestWith("imgneg", "vision", "image_size", -1)
	// run: an input of the wrong shape, and token ids out of the vocabulary
	ids := p("ids.json")
	os.WriteFile(ids, []byte(`{"shape":[1,3],"dtype":"int64","data":[1,2,3]}`), 0o644)
	px := p("px.json")
	os.WriteFile(px, []byte(`{"shape":[1,3,2,2],"dtype":"float32","data":[0,0,0,0,0,0,0,0,0,0,0,0]}`), 0o644)
	os.MkdirAll(p("exists"), 0o755)
	man, err := bundle.ReadManifest(bnd)
	if err != nil {
		t.Fatal(err)
	}
	ctxLen := man.Text.ContextLength
	bigIDs := p("bigids.json")
	var vals []string
	for range ctxLen {
		vals = append(vals, "1000000")
	}
	os.WriteFile(bigIDs, []byte(fmt.Sprintf(`{"shape":[1,%d],"dtype":"int64","data":[%s]}`, ctxLen, strings.Join(vals, ","))), 0o644)
	size := man.Vision.ImageSize
	okPx := p("okpx.json")
	os.WriteFile(okPx, []byte(fmt.Sprintf(`{"shape":[1,3,%d,%d],"dtype":"float32","data":[%s]}`, size, size, strings.TrimSuffix(strings.Repeat("0,", 3*size*size), ","))), 0o644)
	inputs := func(idsFile, pxFile string) []string {
		a := []string{"--input", man.Text.InputIDs + "=" + idsFile, "--input", man.Vision.Input + "=" + pxFile}
		if man.Text.AttentionMask != "" {
			a = append(a, "--input", man.Text.AttentionMask+"="+idsFile)
		}
		return a
	}

	cases := []struct {
		name, want string
		args       []string
	}{
		{"truncated train step", bundle.TrainStepFile, []string{"train", p("truncated"), "--data", data, "-o", p("o1")}},
		{"missing features graph", bundle.FeaturesFile, []string{"train", p("nofeatures"), "--data", data, "-o", p("o2")}},
		{"NaN strategy flag", "cskip-ratio", []string{"convert", model, "-o", p("o3"), "--cskip-ratio", "NaN"}},
		{"NaN --set", "not a finite number", []string{"convert", model, "-o", p("o3"), "--set", "cskip.ratio=NaN"}},
		{"NaN learning rate", "--lr-text", []string{"train", bnd, "--data", data, "-o", p("o4"), "--lr-text", "NaN"}},
		{"infinite momentum", "--momentum", []string{"convert", model, "-o", p("o3"), "--momentum", "Inf"}},
		{"train on a TPU", "tpu", []string{"train", bnd, "--data", data, "-o", p("o5"), "--device", "tpu"}},
		{"eval on a TPU", "tpu", []string{"eval", model, "--data", data, "--confusion", "", "--device", "tpu"}},
		{"run on a TPU", "tpu", []string{"run", model, "--device", "tpu", "--input", man.Text.InputIDs + "=" + ids}},
		{"run with a wrong shape", "holds shape [1 3 2 2]", append([]string{"run", model}, inputs(ids, px)...)},
		{"run with ids out of range", "check their values", append([]string{"run", model}, inputs(bigIDs, okPx)...)},
		{"manifest context_length 0", "context_length 0", []string{"train", ctx0, "--data", data, "-o", p("o6")}},
		{"manifest image_size -1", "image_size -1", []string{"train", imgNeg, "--data", data, "-o", p("o7")}},
		{"export --force over a folder", "is a folder", []string{"export", bnd, "--params", p("run"), "-o", p("exists"), "--force"}},
		{"unknown flag", "skipgraph convert -h", []string{"convert", model, "--bogus"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLIWithin(t, time.Minute, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("more than one line: %q", stderr)
			}
			if line := oneLineErr(t, stderr); !strings.Contains(line, tc.want) {
				t.Fatalf("stderr %q does not name %q", stderr, tc.want)
			}
			for _, o := range []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7"} {
				if _, err := os.Stat(p(o)); err == nil {
					t.Fatalf("a refused command left %s", o)
				}
			}
		})
	}

	// plan with absurd sizes: no panic, no negative size
	for _, flagName := range []string{"--classes", "--batch"} {
		t.Run("plan "+flagName+" maxint", func(t *testing.T) {
			code, stdout, stderr := runCLIWithin(t, time.Minute, "plan", model, flagName, "9223372036854775807")
			if code != 0 && code != 2 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.Contains(stderr, "internal error") || strings.Contains(stdout, " -9") || strings.Contains(stdout, "-1 B") {
				t.Fatalf("panic or negative size:\n%s%s", stdout, stderr)
			}
		})
	}
}

// TestLeftovers: a killed convert's temporary folder is removed by the next convert (a live
// one is not), a train that fails before its first step leaves nothing behind, demo runs with
// one epoch, and an unknown flag gets one line.
func TestLeftovers(t *testing.T) {
	fix := trainFixture(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "b")
	model := filepath.Join(fix, "model", "model.onnx")
	hold := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), holdTempEnv+"="+target)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(filepath.Base(line), ".b.tmp-") {
			cmd.Process.Kill()
			t.Fatalf("helper: %q %v", line, err)
		}
		return cmd, strings.TrimSpace(line)
	}
	// one helper stays alive during the convert below, another is killed mid-write
	live, busy := hold()
	defer func() { live.Process.Kill(); live.Wait() }()
	killed, stale := hold()
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	for _, p := range []string{stale, busy} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("a helper left no temporary folder: %v", err)
		}
	}

	t.Run("stale temporary folder", func(t *testing.T) {
		if code, _, stderr := runCLIWithin(t, time.Minute, "convert", model, "-o", target, "-q"); code != 0 {
			t.Fatalf("convert: %s", stderr)
		}
		if _, err := os.Stat(stale); err == nil {
			t.Errorf("the killed process's %s is still there", stale)
		}
		if _, err := os.Stat(busy); err != nil {
			t.Errorf("the live process's %s was removed", busy)
		}
		left, _ := filepath.Glob(filepath.Join(dir, ".b.tmp-*"))
		if len(left) != 2 { // the live folder and its lock
			t.Errorf("left beside the bundle: %v", left)
		}
	})

	t.Run("train failing before step 1", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		copyTree(t, filepath.Join(fix, "bundle"), bad)
		step, _ := os.ReadFile(filepath.Join(bad, bundle.TrainStepFile))
		os.WriteFile(filepath.Join(bad, bundle.TrainStepFile), step[:len(step)/2], 0o644)
		out := filepath.Join(dir, "run")
		empty := filepath.Join(dir, "given-empty")
		os.MkdirAll(empty, 0o755)
		for _, o := range []string{out, empty} {
			if code, _, stderr := runCLIWithin(t, time.Minute, "train", bad, "--data", filepath.Join(fix, "data"), "-o", o, "-q"); code != 2 {
				t.Fatalf("train on a damaged bundle: exit %d: %s", code, stderr)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("the failed run left %s", out)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("the failed run left files in the folder it was given: %v", ents)
		}
		// the same -o works again without --force
		if code, _, stderr := runCLIWithin(t, 2*time.Minute, "train", filepath.Join(fix, "bundle"), "--data", filepath.Join(fix, "data"), "-o", out, "--epochs", "1", "--threads", "1", "-q"); code != 0 {
			t.Fatalf("train into the same -o: exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(out, train.RunFile)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("demo with one epoch", func(t *testing.T) {
		out := filepath.Join(dir, "demo")
		if code, _, stderr := runCLIWithin(t, 3*time.Minute, "demo", "-o", out, "--epochs", "1", "--classes", "2", "--threads", "1"); code != 0 {
			t.Fatalf("demo --epochs 1: exit %d: %s", code, stderr)
		}
		zero := filepath.Join(dir, "demo0")
		if code, _, stderr := runCLIWithin(t, time.Minute, "demo", "-o", zero, "--epochs", "0"); code != 2 || !strings.Contains(stderr, "--epochs 0") {
			t.Fatalf("demo --epochs 0: exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(zero); err == nil {
			t.Error("a refused demo made its folder")
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		for _, c := range []string{"convert", "train", "eval", "demo", "plan"} {
			code, stdout, stderr := runCLIWithin(t, time.Minute, c, "--no-such-flag")
			if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "skipgraph "+c+" -h") || stdout != "" {
				t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q: want exit 2 and one line pointing to -h", c, code, stdout, stderr)
			}
		}
	})
}
