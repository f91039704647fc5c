package runtime

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// When SKIPGRAPH_RUNTIME_CHILD is set, TestChild runs one scenario in a fresh process (library
// loading happens once per process) and prints the error it gets.
func TestChild(t *testing.T) {
	switch os.Getenv("SKIPGRAPH_RUNTIME_CHILD") {
	case "":
		t.Skip("helper for the subprocess tests")
	case "init":
		if err := Init(); err != nil {
			os.Stdout.WriteString("ERR " + err.Error() + "\n")
		}
	case "cuda":
		_, err := NewSessionFromBytes("add_one", addOneModel(t), &Options{Device: DeviceCUDA})
		if err != nil {
			os.Stdout.WriteString("ERR " + err.Error() + "\n")
		}
	}
}

func runChild(t *testing.T, scenario string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, "SKIPGRAPH_RUNTIME_CHILD="+scenario)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ERR ") {
			return strings.TrimPrefix(line, "ERR ")
		}
	}
	return ""
}

// A library that cannot be found gives one clear line, not a panic.
func TestInitMissingLibrary(t *testing.T) {
	msg := runChild(t, "init", "ONNXRUNTIME_LIB=/nonexistent/libonnxruntime.so.1")
	if msg == "" || !strings.Contains(msg, "ONNXRUNTIME_LIB=/nonexistent/libonnxruntime.so.1") || !strings.Contains(msg, "make setup") {
		t.Errorf("missing library: %q", msg)
	}
	msg = runChild(t, "init", "ONNXRUNTIME_LIB=", "SKIPGRAPH_CACHE="+t.TempDir(), "LD_LIBRARY_PATH=")
	if msg == "" {
		t.Skip("a system libonnxruntime is installed; the not-found message cannot be provoked")
	}
	for _, want := range []string{"ONNXRUNTIME_LIB unset", "not found", "libonnxruntime.so.1", "make setup"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// Provider libraries that are present but cannot be loaded (here: not ELF files) give one line
// naming the folder and what they need.
func TestCUDABrokenProviders(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	src, err := os.Open(LibraryPath())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(dir, "libonnxruntime.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	for _, name := range cudaProviderLibs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a library"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	msg := runChild(t, "cuda", "ONNXRUNTIME_LIB="+filepath.Join(dir, "libonnxruntime.so.1"))
	t.Log(msg)
	if msg == "" {
		t.Fatal("device cuda with unloadable provider libraries: no error")
	}
	for _, want := range []string{"model add_one", "device cuda", dir, "libcudart.so.13"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
}
