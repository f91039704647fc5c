package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/runtime"
)

// cudaUsable reports whether this machine has the CUDA provider libraries and an NVIDIA GPU,
// in which case the refusals below cannot be provoked.
func cudaUsable(t *testing.T) bool {
	if err := runtime.Init(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(runtime.LibraryPath())
	_, errLib := os.Stat(filepath.Join(dir, "libonnxruntime_providers_cuda.so"))
	_, errGPU := os.Stat("/dev/nvidia0")
	return errLib == nil && errGPU == nil
}

// --device cuda on a machine without a GPU (or without the provider libraries) is one line and
// exit code 2, for training, evaluation and running a model, and leaves no output behind.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if cudaUsable(t) {
		t.Skip("this machine has a GPU and the CUDA provider: the refusal cannot be provoked")
	}
	fix := trainFixture(t)
	b := filepath.Join(fix, "bundle")
	dataDir := filepath.Join(fix, "data")
	tmp := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"train", []string{"train", b, "--data", dataDir, "-o", filepath.Join(tmp, "out"), "--epochs", "1", "--device", "cuda", "-q"}},
		{"eval", []string{"eval", b, "--data", dataDir, "--device", "cuda"}},
		{"run", []string{"run", filepath.Join(fix, "model", "model.onnx"), "--device", "cuda"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(tc.args...)
			t.Log(stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("want one line, got:\n%s", stderr)
			}
			for _, w := range []string{"device cuda", "libonnxruntime_providers_cuda.so", "setup --cuda"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("message lacks %q", w)
				}
			}
			if _, err := os.Stat(filepath.Join(tmp, "out")); err == nil {
				t.Errorf("a refused run left %s behind", filepath.Join(tmp, "out"))
			}
		})
	}
}

// setup --cuda: installs from a provider folder, is idempotent, refuses another build with a
// checksum mismatch, and says what to do (exit 2) when there is no source.
func TestSetupCUDACLI(t *testing.T) {
	src := t.TempDir()
	for name, code := range map[string]string{
		"libonnxruntime_providers_shared.so": "void* Provider_GetHost(void) { return 0; }\n",
		"libonnxruntime_providers_cuda.so":   "const char* v = \"" + runtime.ORTVersion + "\";\nvoid* GetProvider(void) { return (void*)v; }\n",
	} {
		c := filepath.Join(t.TempDir(), "p.c")
		os.WriteFile(c, []byte(code), 0o644)
		if out, err := exec.Command("cc", "-shared", "-fPIC", "-o", filepath.Join(src, name), c).CombinedOutput(); err != nil {
			t.Fatalf("cc: %v\n%s", err, out)
		}
	}
	dest := filepath.Join(t.TempDir(), "ort")
	t.Setenv(runtime.CUDAArchiveEnv, "")
	t.Setenv(runtime.CUDAProviderDirEnv, src)
	code, stdout, stderr := runCLI("setup", "--cuda", "--dir", dest)
	if code != 0 || !strings.Contains(stdout, "installed in "+dest) || !strings.Contains(stdout, "no checksum was pinned") {
		t.Fatalf("first setup: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI("setup", "--cuda", "--dir", dest)
	if code != 0 || !strings.Contains(stdout, "already installed") {
		t.Fatalf("second setup: exit %d\n%s", code, stdout)
	}
	// another build of the same release, after the installed copy was damaged
	os.WriteFile(filepath.Join(dest, "libonnxruntime_providers_cuda.so"), []byte("damaged"), 0o755)
	f, _ := os.OpenFile(filepath.Join(src, "libonnxruntime_providers_cuda.so"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("another build"))
	f.Close()
	code, _, stderr = runCLI("setup", "--cuda", "--dir", dest)
	if code != 2 || !strings.Contains(stderr, "checksum mismatch") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("other build: exit %d, want 2 and one line about the checksum:\n%s", code, stderr)
	}
	t.Setenv(runtime.CUDAProviderDirEnv, "")
	code, _, stderr = runCLI("setup", "--cuda", "--dir", t.TempDir())
	if code != 2 || !strings.Contains(stderr, runtime.CUDAProviderDirEnv) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("no source: exit %d, want 2 and one line:\n%s", code, stderr)
	}
}
