package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bench/cuda.sh's logic that does not need a GPU: it refuses (one line, exit 2) where nvidia-smi
// lists no GPU, its dry run checks the tools and says what it would run, and its table shows
// both tools side by side with the ratio, peak memory and achieved TFLOP/s.
func TestCUDAScript(t *testing.T) {
	script, _ := filepath.Abs("../cuda.sh")
	dir := t.TempDir()
	// a PATH whose nvidia-smi lists no GPU
	fake := filepath.Join(dir, "bin")
	os.Mkdir(fake, 0o755)
	os.WriteFile(filepath.Join(fake, "nvidia-smi"), []byte("#!/bin/sh\nexit 9\n"), 0o755)
	env := append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "SKIPGRAPH_CUDA_WORK="+filepath.Join(dir, "work"), "SKIP_TORCH=1")

	cmd := exec.Command("bash", script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "no NVIDIA GPU") {
		t.Fatalf("without a GPU: exit %d (%v), want 2 and one line:\n%s", code, err, out)
	}

	cmd = exec.Command("bash", script, "--dry-run")
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, w := range []string{"no NVIDIA GPU found (dry run goes on)", "plan: setup --cuda, doctor, CUDA tests", "stepbench -device cuda"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("dry run output lacks %q:\n%s", w, out)
		}
	}

	res := filepath.Join(dir, "r.jsonl")
	os.WriteFile(res, []byte(`{"kind":"meta","gpu":"NVIDIA H200","peak_fp32_tflops":67,"peak_bf16_tflops":989,"tf32":false,"steps":5}
{"kind":"step","tool":"skipgraph","case":"lskip_cskip","batch":32,"step_flops":2000000000000,"median_ms":100,"peak_gpu_mib":3000}
{"kind":"step","tool":"torch","case":"lskip_cskip","batch":32,"step_flops":2000000000000,"median_ms":125,"peak_gpu_mib":4000}
{"kind":"step","tool":"skipgraph","case":"full","batch":4,"step_flops":1000000000000,"median_ms":50,"peak_gpu_mib":5000}
`), 0o644)
	cmd = exec.Command("bash", script, "--table", res)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("table: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	for _, w := range []string{
		"67 TFLOP/s dense fp32, 989 TFLOP/s dense bf16",
		"| lskip_cskip | 32 | 100.0 | 125.0 | 0.80 | 3000.0 | 4000.0 | 2000.0 | 20.0 (30%, 2.0%) |",
		"| full | 4 | 50.0 | - | - | 5000.0 | - | 1000.0 | 20.0 (30%, 2.0%) |",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("table lacks %q", w)
		}
	}

	// into a markdown file: a section appended the first time, its block replaced after
	md := filepath.Join(dir, "B.md")
	os.WriteFile(md, []byte("# Benchmarks\n\ntext\n"), 0o644)
	for range 2 {
		cmd = exec.Command("bash", script, "--table", res, md)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("table into %s: %v\n%s", md, err, out)
		}
	}
	b, _ := os.ReadFile(md)
	doc := string(b)
	if !strings.HasPrefix(doc, "# Benchmarks\n\ntext\n") || strings.Count(doc, "<!-- cuda-bench:begin -->") != 1 ||
		strings.Count(doc, "## Training step on CUDA") != 1 || !strings.Contains(doc, "| lskip_cskip | 32 | 100.0 | 125.0 | 0.80 |") {
		t.Errorf("markdown after two writes:\n%s", doc)
	}
}
