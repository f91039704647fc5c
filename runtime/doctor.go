package runtime

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report describes what the machine offers for training on ONNX Runtime: the core library, its
// providers, the GPU, and the libraries the CUDA provider needs.
type Report struct {
	ORTVersion string   // "" when the library did not load
	Library    string   // the loaded libonnxruntime
	LoadError  string   // why it did not load
	Providers  []string // ORT's GetAvailableProviders
	GPUs       []string // one line per GPU, "" none found
	// CUDAProvider is the provider library beside the core one ("" when absent), with the ORT
	// version it carries and whether it matches the lock file.
	CUDAProvider        string
	CUDAProviderVersion string
	CUDAProviderMissing []string
	CUDALock            string // "matches", "differs", "absent"
	// Libs are the CUDA libraries the provider needs (its ELF dependencies and cuDNN), each with
	// the file the dynamic loader resolves it to, or why it cannot.
	Libs []LibProbe
}

// LibProbe is one library looked up with the dynamic loader.
type LibProbe struct {
	Name  string
	Path  string // the resolved file, or the loader's error
	Found bool
}

// systemLibs are provider dependencies that are part of any Linux system, left out of the
// report.
var systemLibs = []string{"libdl.so.2", "librt.so.1", "libpthread.so.0", "libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6", "ld-linux-x86-64.so.2"}

// Diagnose loads ONNX Runtime (when it can) and reports what is there for CUDA.
func Diagnose() *Report {
	r := &Report{}
	if err := Init(); err != nil {
		r.LoadError = err.Error()
	} else {
		r.ORTVersion, r.Library = Version(), LibraryPath()
		if ps, err := AvailableProviders(); err == nil {
			r.Providers = ps
		}
	}
	r.GPUs = findGPUs()
	dir := filepath.Dir(CachedLibraryPath())
	if r.Library != "" {
		dir = filepath.Dir(r.Library)
	}
	for _, name := range CUDAProviderFiles {
		if !fileExists(filepath.Join(dir, name)) {
			r.CUDAProviderMissing = append(r.CUDAProviderMissing, filepath.Join(dir, name))
		}
	}
	cuda := filepath.Join(dir, "libonnxruntime_providers_cuda.so")
	r.CUDALock = "absent"
	if lock, err := readLock(filepath.Join(dir, CUDALockFile)); err == nil && len(lock) > 0 {
		r.CUDALock = "differs"
		if installedMatch(dir, lock) {
			r.CUDALock = "matches"
		}
	}
	if !fileExists(cuda) {
		return r
	}
	r.CUDAProvider = cuda
	r.CUDAProviderVersion = ProviderVersion(cuda)
	var needed []string
	if f, err := elf.Open(cuda); err == nil {
		needed, _ = f.ImportedLibraries()
		f.Close()
	}
	needed = append(needed, "libcudnn.so.9") // loaded by the provider when a convolution or attention kernel first runs
	for _, n := range needed {
		if slices.Contains(systemLibs, n) {
			continue
		}
		p, ok := probeLibrary(n)
		r.Libs = append(r.Libs, LibProbe{Name: n, Path: p, Found: ok})
	}
	return r
}

// findGPUs lists NVIDIA GPUs from nvidia-smi, else from /proc/driver/nvidia.
func findGPUs() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader").Output()
	if err == nil {
		var gpus []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				gpus = append(gpus, l+" (nvidia-smi)")
			}
		}
		if len(gpus) > 0 {
			return gpus
		}
	}
	infos, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information")
	var gpus []string
	for _, p := range infos {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Model" {
				gpus = append(gpus, strings.TrimSpace(v)+" ("+p+")")
			}
		}
	}
	return gpus
}

// Write prints the report, one fact a line; what is missing says what to do.
func (r *Report) Write(w io.Writer) {
	if r.LoadError != "" {
		fmt.Fprintf(w, "onnxruntime  not loaded: %s\n", r.LoadError)
	} else {
		fmt.Fprintf(w, "onnxruntime  %s (%s)\n", r.ORTVersion, r.Library)
		fmt.Fprintf(w, "providers    %s\n", strings.Join(r.Providers, ", "))
	}
	if len(r.GPUs) == 0 {
		fmt.Fprintf(w, "gpu          none found (no nvidia-smi answer, no /proc/driver/nvidia/gpus); --device cuda cannot run here\n")
	}
	for _, g := range r.GPUs {
		fmt.Fprintf(w, "gpu          %s\n", g)
	}
	if len(r.CUDAProviderMissing) > 0 {
		fmt.Fprintf(w, "cuda         provider libraries missing: %s; run \"skipgraph setup --cuda\" (or \"make setup-cuda\")\n", strings.Join(r.CUDAProviderMissing, ", "))
	}
	if r.CUDAProvider != "" {
		v := r.CUDAProviderVersion
		if v == "" {
			v = "unknown version"
		}
		note := ""
		if r.ORTVersion != "" && r.CUDAProviderVersion != "" && r.CUDAProviderVersion != r.ORTVersion {
			note = fmt.Sprintf("; does not match the core %s: run \"skipgraph setup --cuda\" with the providers of %s", r.ORTVersion, r.ORTVersion)
		}
		fmt.Fprintf(w, "cuda         %s (ONNX Runtime %s, sha256 lock %s%s)\n", r.CUDAProvider, v, r.CUDALock, note)
	}
	for _, l := range r.Libs {
		if l.Found {
			fmt.Fprintf(w, "  %-22s %s\n", l.Name, l.Path)
		} else {
			fmt.Fprintf(w, "  %-22s MISSING: %s; add its folder to LD_LIBRARY_PATH (e.g. site-packages/nvidia/*/lib of a PyTorch CUDA install)\n", l.Name, oneLine(fmt.Errorf("%s", l.Path)))
		}
	}
}
