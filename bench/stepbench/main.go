// Command stepbench measures one training step of a skipgraph bundle on ONNX Runtime: it feeds
// random data (a batch of images and a number of classes), runs warm-up steps, then times steps
// and reports the median, with the process's peak resident memory. Run each measurement in a
// fresh process so that the peak belongs to that bundle alone.
//
//	stepbench -bundle DIR [-batch 4] [-classes 100] [-steps 5] [-threads 0]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

func main() {
	dir := flag.String("bundle", "", "bundle folder")
	batch := flag.Int("batch", 4, "images per step")
	classes := flag.Int("classes", 100, "number of classes")
	steps := flag.Int("steps", 5, "timed steps")
	warm := flag.Int("warmup", 1, "untimed steps first")
	threads := flag.Int("threads", 0, "ORT intra-op threads (0: ORT's default)")
	flag.Parse()
	if err := run(*dir, *batch, *classes, *steps, *warm, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "stepbench:", err)
		os.Exit(1)
	}
}

// Result is one measurement, printed as JSON.
type Result struct {
	Bundle     string    `json:"bundle"`
	Strategies string    `json:"strategies"`
	Batch      int       `json:"batch"`
	Classes    int       `json:"classes"`
	StepsMs    []float64 `json:"steps_ms"`
	MedianMs   float64   `json:"median_ms"`
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	FeaturesMs float64   `json:"features_ms,omitempty"`
	ImagesPerS float64   `json:"feature_images_per_s,omitempty"`
}

func run(dir string, batch, classes, steps, warm, threads int) error {
	man, err := bundle.ReadManifest(dir)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 1))
	opts := &runtime.Options{IntraOpThreads: threads}
	data := randomInputs(r, man, batch, classes)
	res := Result{Bundle: dir, Batch: batch, Classes: classes}
	var names []string
	for _, s := range man.Strategies {
		names = append(names, s.Name)
	}
	res.Strategies = strings.Join(names, ",")
	if rec := man.Graphs["features"]; rec != nil {
		fs, err := runtime.NewSession(filepath.Join(dir, rec.File), opts)
		if err != nil {
			return err
		}
		in := map[string]*tensorio.Tensor{}
		for _, i := range rec.Inputs {
			in[i.Name] = data[i.Name]
		}
		t0 := time.Now()
		out, err := fs.Run(in)
		if err != nil {
			return err
		}
		res.FeaturesMs = float64(time.Since(t0).Microseconds()) / 1000
		res.ImagesPerS = float64(batch) / time.Since(t0).Seconds()
		fs.Close()
		for k, v := range out {
			data[k] = v
		}
	}
	params, err := bundle.InitialParams(dir, man)
	if err != nil {
		return err
	}
	st, err := bundle.OpenStepper(dir, man, params, nil, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, in := range man.Graphs["train_step"].Inputs {
		switch in.Role {
		case "image", "text_input", "state", "labels", "cskip_prototypes", "cskip_k", "cskip_tail":
			if data[in.Name] == nil {
				return fmt.Errorf("no data for input %s", in.Name)
			}
			err = st.Feed(in.Name, data[in.Name])
		case "lr":
			err = st.FeedScalar(in.Name, 1e-5)
		case "step":
			err = st.FeedScalar(in.Name, 1)
		}
		if err != nil {
			return err
		}
	}
	for i := 0; i < warm+steps; i++ {
		t0 := time.Now()
		if _, err := st.Step(); err != nil {
			return err
		}
		if i >= warm {
			res.StepsMs = append(res.StepsMs, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	sorted := append([]float64(nil), res.StepsMs...)
	sort.Float64s(sorted)
	res.MedianMs = sorted[len(sorted)/2]
	res.PeakRSSMiB = peakRSS()
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return nil
}

// randomInputs makes every data input a bundle's graphs may need.
func randomInputs(r *rand.Rand, man *bundle.Manifest, batch, classes int) map[string]*tensorio.Tensor {
	d := map[string]*tensorio.Tensor{}
	size := int64(man.Vision.ImageSize)
	px := make([]float32, int64(batch)*3*size*size)
	for i := range px {
		px[i] = float32(r.NormFloat64())
	}
	d[man.Vision.Input], _ = tensorio.FromSlice([]int64{int64(batch), 3, size, size}, px)
	ctx := man.Text.ContextLength
	ids := make([]int64, classes*ctx)
	mask := make([]int64, classes*ctx)
	for c := 0; c < classes; c++ {
		end := 2 + c%(min(ctx, 16)-2)
		for j := 0; j <= end; j++ {
			ids[c*ctx+j] = 1 + r.Int64N(man.Text.EOSToken-2)
			mask[c*ctx+j] = 1
		}
		ids[c*ctx+end] = man.Text.EOSToken
	}
	d[man.Text.InputIDs], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, ids)
	if man.Text.AttentionMask != "" {
		d[man.Text.AttentionMask], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, mask)
	}
	lab := make([]int64, batch)
	for i := range lab {
		lab[i] = r.Int64N(int64(classes))
	}
	d["labels"], _ = tensorio.FromSlice([]int64{int64(batch)}, lab)
	if man.CSkip != nil {
		cfg := cskip.Config{Ratio: man.CSkip.Ratio, Max: man.CSkip.Max, Lambda: man.CSkip.Lambda, Seed: man.CSkip.Seed}
		embed := int64(0)
		for _, o := range man.Graphs["eval"].Outputs {
			if o.Name == "text_embeds" {
				if i := strings.LastIndexByte(o.Type, ','); i >= 0 {
					embed, _ = strconv.ParseInt(strings.TrimSuffix(o.Type[i+1:], "]"), 10, 64)
				}
			}
		}
		pv := make([]float32, int64(classes)*embed)
		for i := range pv {
			pv[i] = float32(r.NormFloat64())
		}
		d["cskip.prototypes"], _ = tensorio.FromSlice([]int64{int64(classes), embed}, pv)
		d["cskip.k"], _ = tensorio.FromSlice([]int64{1}, []int64{int64(cfg.TopK(classes))})
		tail := cfg.Tail(classes)
		d["cskip.tail"], _ = tensorio.FromSlice([]int64{int64(len(tail))}, tail)
	}
	return d
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
