package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/skipgraph/skipgraph/errs"

	ort "github.com/yalue/onnxruntime_go"
)

// OptLevel is ONNX Runtime's graph optimisation level. The zero value enables all
// optimisations.
type OptLevel int

// Graph optimisation levels.
const (
	OptAll      OptLevel = iota // all optimisations, including layout ones (default)
	OptExtended                 // basic plus extended fusions
	OptBasic                    // constant folding and redundant-node removal
	OptDisabled                 // no graph optimisation
)

// String returns the level's name.
func (l OptLevel) String() string {
	switch l {
	case OptAll:
		return "all"
	case OptExtended:
		return "extended"
	case OptBasic:
		return "basic"
	case OptDisabled:
		return "disabled"
	}
	return "OptLevel(" + strconv.Itoa(int(l)) + ")"
}

// Device names accepted in Options.Device.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// ArenaGrowth says how the CPU memory arena grows when a request does not fit.
type ArenaGrowth int

// Arena growth policies.
const (
	// ArenaExact (the default) grows the arena by the size requested, in one arena shared by
	// every CPU session of the process. A training step's peak then stays close to the memory
	// its tensors need: ORT's own per-session arena doubles its chunks and, in the profiles of
	// a ViT-B/16 train step, held twice the peak in use.
	ArenaExact ArenaGrowth = iota
	// ArenaDoubling is ORT's default: each session has its own arena, whose chunks grow to the
	// next power of two.
	ArenaDoubling
)

// String returns the policy's name.
func (a ArenaGrowth) String() string {
	switch a {
	case ArenaExact:
		return "exact"
	case ArenaDoubling:
		return "doubling"
	}
	return "ArenaGrowth(" + strconv.Itoa(int(a)) + ")"
}

// Options configure a Session. The zero value runs on the CPU with ORT's default thread counts,
// all graph optimisations, the memory pattern disabled, and the memory arena enabled, shared by
// the process's sessions and grown by what is requested (ArenaExact).
type Options struct {
	// Device is "cpu" (or "") or "cuda".
	Device string
	// DeviceID selects the GPU when Device is "cuda".
	DeviceID int
	// IntraOpThreads and InterOpThreads set ORT's thread pools; 0 keeps ORT's default.
	IntraOpThreads int
	InterOpThreads int
	// OptLevel is the graph optimisation level (default: all).
	OptLevel OptLevel
	// DisableMemArena turns off the CPU memory arena (tensors then come from malloc).
	DisableMemArena bool
	// ArenaGrowth selects how the CPU arena grows (default ArenaExact); ignored without an
	// arena.
	ArenaGrowth ArenaGrowth
	// EnableMemPattern turns on ORT's memory pattern planning, off by default: the planned
	// block is allocated beside the arena's chunks and, in the profiles of a ViT-B/16 train
	// step, raised the peak resident memory from 3.3 GB to 5.3 GB without a measurable gain in
	// time.
	EnableMemPattern bool
	// DisableMemPattern turns memory pattern planning off even when EnableMemPattern is set.
	//
	// Deprecated: the memory pattern is off unless EnableMemPattern is set.
	DisableMemPattern bool
	// ProfilePrefix, when set, enables ORT's profiler; it writes <prefix>_<time>.json when the
	// session closes.
	ProfilePrefix string
	// Config holds extra session configuration entries (ORT's AddSessionConfigEntry).
	Config map[string]string
	// CUDA holds extra CUDA provider options (e.g. "use_tf32": "0" for exact float32 matrix
	// products); device_id comes from DeviceID.
	CUDA map[string]string
}

// CUDA provider libraries ORT loads from the folder of libonnxruntime.
var cudaProviderLibs = []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"}

// cudaHint says where the provider libraries and their CUDA dependencies come from.
const cudaHint = "run \"skipgraph setup --cuda\" (or \"make setup-cuda\") to install the CUDA provider libraries of ONNX Runtime " + ORTVersion + " beside the core library; they need the CUDA runtime, cuBLAS, cuBLASLt and cuRAND of the CUDA major version they were built for (libcudart.so.13 or libcudart.so.12 ...) and cuDNN 9 on LD_LIBRARY_PATH (a PyTorch CUDA install has them in site-packages/nvidia/*/lib); \"skipgraph doctor\" shows what is found"

// sessionOptions builds ORT session options; the caller destroys them.
func (o *Options) sessionOptions() (*ort.SessionOptions, error) {
	dev := strings.ToLower(o.Device)
	if dev != "" && dev != DeviceCPU && dev != DeviceCUDA {
		return nil, errs.Input("unknown device %q (want cpu or cuda)", o.Device)
	}
	if err := CheckThreads("intra-op threads", o.IntraOpThreads); err != nil {
		return nil, err
	}
	if err := CheckThreads("inter-op threads", o.InterOpThreads); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("creating session options: %s", oneLine(err))
	}
	ok := false
	defer func() {
		if !ok {
			so.Destroy()
		}
	}()
	level := map[OptLevel]ort.GraphOptimizationLevel{
		OptAll: ort.GraphOptimizationLevelEnableAll, OptExtended: ort.GraphOptimizationLevelEnableExtended,
		OptBasic: ort.GraphOptimizationLevelEnableBasic, OptDisabled: ort.GraphOptimizationLevelDisableAll,
	}
	lv, known := level[o.OptLevel]
	if !known {
		return nil, fmt.Errorf("unknown optimisation level %v", o.OptLevel)
	}
	steps := []struct {
		what string
		err  func() error
	}{
		{"optimisation level", func() error { return so.SetGraphOptimizationLevel(lv) }},
		{"memory arena", func() error { return so.SetCpuMemArena(!o.DisableMemArena) }},
		{"memory pattern", func() error { return so.SetMemPattern(o.EnableMemPattern && !o.DisableMemPattern) }},
		{"intra-op threads", func() error {
			if o.IntraOpThreads > 0 {
				return so.SetIntraOpNumThreads(o.IntraOpThreads)
			}
			return nil
		}},
		{"inter-op threads", func() error {
			if o.InterOpThreads > 0 {
				return so.SetInterOpNumThreads(o.InterOpThreads)
			}
			return nil
		}},
		{"profiling", func() error {
			if o.ProfilePrefix != "" {
				return so.EnableProfiling(o.ProfilePrefix)
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := s.err(); err != nil {
			return nil, fmt.Errorf("setting %s: %s", s.what, oneLine(err))
		}
	}
	if !o.DisableMemArena && o.ArenaGrowth == ArenaExact {
		if err := registerExactArena(); err != nil {
			return nil, fmt.Errorf("setting memory arena: %s", oneLine(err))
		}
		if err := so.AddSessionConfigEntry("session.use_env_allocators", "1"); err != nil {
			return nil, fmt.Errorf("setting memory arena: %s", oneLine(err))
		}
	} else if o.ArenaGrowth != ArenaExact && o.ArenaGrowth != ArenaDoubling {
		return nil, fmt.Errorf("unknown arena growth %v", o.ArenaGrowth)
	}
	for k, v := range o.Config {
		if err := so.AddSessionConfigEntry(k, v); err != nil {
			return nil, fmt.Errorf("session config %s=%s: %s", k, v, oneLine(err))
		}
	}
	if dev == DeviceCUDA {
		if err := appendCUDA(so, o.DeviceID, o.CUDA); err != nil {
			return nil, err
		}
	}
	ok = true
	return so, nil
}

var (
	arenaOnce sync.Once
	arenaErr  error
)

// registerExactArena registers, once per process, a CPU arena allocator with ORT's environment
// that extends by the size requested (kSameAsRequested) instead of doubling.
func registerExactArena() error {
	arenaOnce.Do(func() {
		mi, err := ort.GetMemoryInfo()
		if err != nil {
			arenaErr = err
			return
		}
		// 0: no limit; 1: kSameAsRequested; -1: ORT's defaults for the first chunk and the
		// dead bytes a chunk may keep.
		cfg, err := ort.NewArenaCfg(0, 1, -1, -1)
		if err != nil {
			arenaErr = err
			return
		}
		defer cfg.Destroy()
		arenaErr = ort.CreateAndRegisterAllocator(mi, cfg)
	})
	return arenaErr
}

// appendCUDA adds the CUDA execution provider, or says clearly what is missing.
func appendCUDA(so *ort.SessionOptions, deviceID int, extra map[string]string) error {
	lib := LibraryPath()
	dir := filepath.Dir(lib)
	var missing []string
	for _, name := range cudaProviderLibs {
		if !fileExists(filepath.Join(dir, name)) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return errs.Input("device cuda: %s not found in %s (ONNX Runtime loads its CUDA provider from the folder of %s); put the provider libraries for ONNX Runtime %s there, or set %s to a libonnxruntime.so.1 that has them beside it; %s",
			strings.Join(missing, " and "), dir, filepath.Base(lib), Version(), LibraryEnv, cudaHint)
	}
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return errs.Input("device cuda: ONNX Runtime cannot load the CUDA provider from %s: %s%s; %s", dir, oneLine(err), gpuNote(), cudaHint)
	}
	defer co.Destroy()
	settings := map[string]string{"device_id": strconv.Itoa(deviceID)}
	for k, v := range extra {
		settings[k] = v
	}
	if err := co.Update(settings); err != nil {
		return fmt.Errorf("device cuda: ONNX Runtime cannot load the CUDA provider from %s (setting device_id %d): %s%s; %s", dir, deviceID, oneLine(err), gpuNote(), cudaHint)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("device cuda: ONNX Runtime cannot enable the CUDA provider from %s: %s%s; %s", dir, oneLine(err), gpuNote(), cudaHint)
	}
	return nil
}

// gpuNote returns a remark when this machine shows no NVIDIA GPU device.
func gpuNote() string {
	m, _ := filepath.Glob("/dev/nvidia[0-9]*")
	if len(m) == 0 {
		if _, err := os.Stat("/proc/driver/nvidia"); err != nil {
			return " (no NVIDIA GPU found: no /dev/nvidia* device, no /proc/driver/nvidia)"
		}
	}
	return ""
}
