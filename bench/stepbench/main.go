// Command stepbench measures one training step of a skipgraph bundle on ONNX Runtime: it feeds
// random data (a batch of images and a number of classes), runs warm-up steps, then times steps
// and reports the median, with the process's peak resident memory.
//
// A bundle with a frozen prefix runs in two phases so that the reported peak belongs to the step
// alone: the features phase (features.onnx, in a child process, or alone with -features-out)
// writes every step input as .npy into a folder, and the step phase loads them (-inputs) and
// times the steps. Run each measurement in a fresh process.
//
//	stepbench -bundle DIR [-batch 4] [-classes 100] [-steps 5] [-threads 0]
//	stepbench -bundle DIR -features-out IN     # features phase only
//	stepbench -bundle DIR -inputs IN           # step phase only
//
// -profile PREFIX writes ORT's per-node profile of the steps; -cpuprofile FILE writes a Go CPU
// profile of the timed steps; -arena, -no-arena, -mempattern and -opt tune the ORT session.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.dir, "bundle", "", "bundle folder")
	flag.IntVar(&cfg.batch, "batch", 4, "images per step")
	flag.IntVar(&cfg.classes, "classes", 100, "number of classes")
	flag.IntVar(&cfg.steps, "steps", 5, "timed steps")
	flag.IntVar(&cfg.warm, "warmup", 1, "untimed steps first")
	flag.IntVar(&cfg.threads, "threads", 0, "ORT intra-op threads (0: the runtime's default)")
	flag.StringVar(&cfg.featuresOut, "features-out", "", "run only the features phase and write the step inputs as .npy into this folder")
	flag.StringVar(&cfg.inputs, "inputs", "", "run only the step phase, with the step inputs read from this folder")
	flag.StringVar(&cfg.profile, "profile", "", "ORT profile file prefix for the step session")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the timed steps to this file")
	flag.BoolVar(&cfg.noArena, "no-arena", false, "disable ORT's CPU memory arena")
	flag.BoolVar(&cfg.pattern, "mempattern", false, "enable ORT's memory pattern planning")
	flag.StringVar(&cfg.arena, "arena", "exact", "CPU arena growth: exact (shared, grown as requested) or doubling (ORT's per-session default)")
	flag.StringVar(&cfg.device, "device", "cpu", "cpu or cuda (the step phase; the features phase runs on the CPU)")
	flag.BoolVar(&cfg.tf32, "tf32", false, "with -device cuda: allow TF32 matrix products (ORT's use_tf32)")
	flag.StringVar(&cfg.update, "update", "auto", "where the optimizer update runs: auto, host or graph")
	flag.StringVar(&cfg.opt, "opt", "all", "ORT graph optimisation level: all, extended, basic, disabled")
	flag.Func("config", "ORT session config entry KEY=VALUE (repeatable), e.g. session.intra_op.allow_spinning=0", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		if cfg.config == nil {
			cfg.config = map[string]string{}
		}
		cfg.config[k] = v
		return nil
	})
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "stepbench:", err)
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	dir, featuresOut, inputs, profile, cpuProfile, opt, arena, device, update string
	batch, classes, steps, warm, threads                                      int
	noArena, pattern, tf32                                                    bool
	config                                                                    map[string]string
}

// Result is one measurement, printed as JSON.
type Result struct {
	Bundle     string    `json:"bundle"`
	Strategies string    `json:"strategies"`
	Batch      int       `json:"batch"`
	Classes    int       `json:"classes"`
	StepsMs    []float64 `json:"steps_ms"`
	MedianMs   float64   `json:"median_ms"`
	MinMs      float64   `json:"min_ms"`
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	// SetupRSSMiB is the peak resident memory once the session is open and the inputs bound,
	// before the first step.
	SetupRSSMiB float64 `json:"setup_rss_mib"`
	// Update is where the optimizer update ran (host or graph); UpdateMs is the median time
	// of the host update within a step.
	Update     string  `json:"update"`
	UpdateMs   float64 `json:"update_ms,omitempty"`
	FeaturesMs float64 `json:"features_ms,omitempty"`
	ImagesPerS float64 `json:"feature_images_per_s,omitempty"`
	Options    string  `json:"options"`
}

func (c config) options() (*runtime.Options, error) {
	o := &runtime.Options{IntraOpThreads: c.threads, DisableMemArena: c.noArena, EnableMemPattern: c.pattern, ProfilePrefix: c.profile, Config: c.config}
	levels := map[string]runtime.OptLevel{"all": runtime.OptAll, "extended": runtime.OptExtended, "basic": runtime.OptBasic, "disabled": runtime.OptDisabled}
	lv, ok := levels[c.opt]
	if !ok {
		return nil, fmt.Errorf("unknown -opt %q", c.opt)
	}
	o.OptLevel = lv
	switch c.device {
	case runtime.DeviceCPU:
	case runtime.DeviceCUDA:
		o.Device = runtime.DeviceCUDA
		o.CUDA = map[string]string{"use_tf32": map[bool]string{true: "1", false: "0"}[c.tf32]}
	default:
		return nil, fmt.Errorf("unknown -device %q (cpu or cuda)", c.device)
	}
	switch c.arena {
	case "exact":
		o.ArenaGrowth = runtime.ArenaExact
	case "doubling":
		o.ArenaGrowth = runtime.ArenaDoubling
	default:
		return nil, fmt.Errorf("unknown -arena %q", c.arena)
	}
	return o, nil
}

func run(c config) error {
	man, err := bundle.ReadManifest(c.dir)
	if err != nil {
		return err
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	res := Result{Bundle: c.dir, Batch: c.batch, Classes: c.classes,
		Options: fmt.Sprintf("update=%s device=%s tf32=%v threads=%d arena=%v growth=%s mempattern=%v opt=%s config=%v", c.update, c.device, c.tf32, c.threads, !c.noArena, c.arena, c.pattern, c.opt, c.config)}
	var names []string
	for _, s := range man.Strategies {
		names = append(names, s.Name)
	}
	res.Strategies = strings.Join(names, ",")
	if c.featuresOut != "" {
		ms, err := featuresPhase(c, man, c.featuresOut)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(map[string]float64{"features_ms": ms, "peak_rss_mib": peakRSS()})
		fmt.Println(string(b))
		return nil
	}
	in := c.inputs
	if in == "" {
		// The features phase runs in a child process, so that its memory stays out of this
		// process's peak.
		tmp, err := os.MkdirTemp("", "stepbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "-bundle", c.dir, "-batch", strconv.Itoa(c.batch), "-classes", strconv.Itoa(c.classes),
			"-threads", strconv.Itoa(c.threads), "-features-out", tmp)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("features phase: %w", err)
		}
		var fr struct {
			FeaturesMs float64 `json:"features_ms"`
		}
		if json.Unmarshal(out, &fr) == nil && fr.FeaturesMs > 0 {
			res.FeaturesMs = fr.FeaturesMs
			res.ImagesPerS = float64(c.batch) / (fr.FeaturesMs / 1000)
		}
		in = tmp
	}
	data, err := loadInputs(in)
	if err != nil {
		return err
	}
	upd, err := bundle.ParseUpdate(c.update)
	if err != nil {
		return err
	}
	runner := bundle.NewRunner(c.dir, man, opts)
	runner.Update = upd
	st, err := runner.OpenFed(data, 1e-5, 1)
	if err != nil {
		return err
	}
	defer st.Close()
	res.Update = bundle.UpdateGraph.String()
	if st.HostUpdate() {
		res.Update = bundle.UpdateHost.String()
	}
	var updMs []float64
	data = nil
	st.Trim() // a resident (CUDA) stepper's copy kernels let go of their device scratch
	// Return the freed host copies (initial parameters, loaded inputs) to the OS, so that the
	// peak below is the step's: Go would otherwise keep their pages resident for minutes.
	debug.FreeOSMemory()
	res.SetupRSSMiB = peakRSS()
	var stop func()
	for i := 0; i < c.warm+c.steps; i++ {
		if i == c.warm && c.cpuProfile != "" {
			f, err := os.Create(c.cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			stop = func() { pprof.StopCPUProfile(); f.Close() }
		}
		t0, u0 := time.Now(), st.UpdateTime()
		if _, err := st.Step(); err != nil {
			return err
		}
		if i >= c.warm {
			res.StepsMs = append(res.StepsMs, float64(time.Since(t0).Microseconds())/1000)
			updMs = append(updMs, float64((st.UpdateTime()-u0).Microseconds())/1000)
		}
	}
	if stop != nil {
		stop()
	}
	sorted := append([]float64(nil), res.StepsMs...)
	sort.Float64s(sorted)
	if len(sorted) > 0 {
		res.MedianMs = sorted[len(sorted)/2]
		res.MinMs = sorted[0]
	}
	if st.HostUpdate() && len(updMs) > 0 {
		sort.Float64s(updMs)
		res.UpdateMs = updMs[len(updMs)/2]
	}
	res.PeakRSSMiB = peakRSS()
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return nil
}

// featuresPhase makes the random data, runs features.onnx when the bundle has one, and writes
// every input of the train step as <name>.npy into dir. It returns the features run's time.
func featuresPhase(c config, man *bundle.Manifest, dir string) (float64, error) {
	r := rand.New(rand.NewPCG(1, 1))
	data := bundle.RandomInputs(r, man, c.batch, c.classes)
	took, err := bundle.NewRunner(c.dir, man, &runtime.Options{IntraOpThreads: c.threads}).Features(data)
	if err != nil {
		return 0, err
	}
	ms := float64(took.Microseconds()) / 1000
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	for _, in := range man.Graphs["train_step"].Inputs {
		t := data[in.Name]
		if t == nil {
			continue
		}
		if err := tensorio.SaveNPY(filepath.Join(dir, fileName(in.Name)), t); err != nil {
			return 0, err
		}
	}
	return ms, nil
}

// fileName is the .npy file of an input (names may hold '/').
func fileName(name string) string { return url.PathEscape(name) + ".npy" }

// loadInputs reads the .npy files a features phase wrote, keyed by input name.
func loadInputs(dir string) (map[string]*tensorio.Tensor, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*tensorio.Tensor{}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".npy")
		if !ok {
			continue
		}
		name, err := url.PathUnescape(base)
		if err != nil {
			return nil, err
		}
		t, err := tensorio.LoadNPY(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// peakRSS reads the process's peak resident set size (VmHWM) in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
