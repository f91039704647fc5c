// Command featbench measures the feature cache against the machine: a bundle's frozen image
// prefix (features.onnx) over a folder of images, decoded and preprocessed as training does
// (data.Preprocessor.Each), and the frozen text prefix over the class prompts. It also writes
// the synthetic inputs of the benchmarks.
//
//	featbench data -o DIR -classes C -shots S [-size 224] [-tokenizer MODEL_DIR -vocab N]
//	featbench run -bundle DIR -images DIR [-batch 8,32] [-threads 2] [-workers 0] [-ahead 2]
//	          [-rounds 3] [-augment] [-classes 100 [-text-chunk 0,25]] [-gflop-image G] [-gflop-text G]
//	          [-peak GFLOPS] [-nospin] [-profile PREFIX]
//	featbench table [-peak GFLOPS] FILE.jsonl
//
// data writes an image folder of C classes with S PNG images each (any number of classes: the
// synthetic classes repeat with a suffix past data.MaxSyntheticClasses) and, with -tokenizer,
// a tokenizer covering the class prompts into MODEL_DIR, where training finds it.
//
// run times, in each of -rounds rounds and alternating within the round, for each batch size
// of -batch: decoding alone (Each with nothing to do), the cache with each batch decoded just
// before its features run (sequential), and with decoding -ahead batches ahead (pipelined). It
// prints one JSON line per timing and then a line of medians per batch size; given the
// prefix's GFLOP per image (the cost model's image_prefix_flops, 'skipgraph plan --json') and
// the sgemm peak (bench/peak), it reports the GFLOP/s of the prefix alone and of the whole
// cache and their shares of the peak. With -classes it also times the text prefix over that
// many prompts, once per round for each -text-chunk (prompts per run, 0: all in one run), and
// prints a line of medians per chunk size.
// With -profile it writes ORT's profile of one more pipelined pass (bench/ortprof reads it).
//
// table prints the summary lines of a JSON-lines file of run outputs (each may carry a
// "config" label) as a Markdown table, with the shares of -peak when given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bench/internal/stats"
	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: featbench data|run|table [flags] (see the package documentation)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "data":
		err = makeData(os.Args[2:])
	case "run":
		_, err = run(os.Args[2:], os.Stdout)
	case "table":
		err = table(os.Args[2:], os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "featbench: unknown command %q; want data, run or table\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "featbench:", err)
		os.Exit(1)
	}
}

// makeData writes the synthetic image folder (and the tokenizer).
func makeData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ExitOnError)
	out := fs.String("o", "", "image folder to write (must not exist)")
	classes := fs.Int("classes", 4, "number of classes")
	shots := fs.Int("shots", 16, "images per class")
	size := fs.Int("size", 224, "image side in pixels")
	tok := fs.String("tokenizer", "", "also write a tokenizer for the class prompts into this model folder")
	vocab := fs.Int("vocab", synth.Sizes["vit-b-16"].Vocab, "the tokenizer's vocabulary size (the model's token embedding rows)")
	fs.Parse(args)
	if *out == "" || *classes < 1 || *shots < 1 {
		return errors.New("data needs -o, -classes >= 1 and -shots >= 1")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists; give a new folder", *out)
	}
	tmp := *out + ".tmp"
	os.RemoveAll(tmp)
	var names []string
	for g := 0; g*data.MaxSyntheticClasses < *classes; g++ {
		n := min(data.MaxSyntheticClasses, *classes-g*data.MaxSyntheticClasses)
		part := filepath.Join(tmp, "part"+strconv.Itoa(g))
		if err := data.GenerateDataset(part, n, *shots, *size, uint64(1+g)); err != nil {
			return err
		}
		for _, c := range data.SyntheticClasses(n) {
			name := c
			if g > 0 {
				name = fmt.Sprintf("%s_%d", c, g+1)
			}
			if err := os.Rename(filepath.Join(part, c), filepath.Join(tmp, name)); err != nil {
				return err
			}
			names = append(names, data.DisplayName(name))
		}
		if err := os.RemoveAll(part); err != nil {
			return err
		}
	}
	if *tok != "" {
		if _, err := synth.WriteTokenizerSize(*tok, synth.PromptWords(names, []string{data.DefaultTemplate}), *vocab); err != nil {
			return err
		}
	}
	return os.Rename(tmp, *out)
}

// timing is one timed pass.
type timing struct {
	Mode   string  `json:"mode"`
	Round  int     `json:"round"`
	Images int     `json:"images"`
	Batch  int     `json:"batch"`
	WallMs float64 `json:"wall_ms"`
	// PrefixMs is the time inside the features runs (0 for decode).
	PrefixMs float64 `json:"prefix_ms"`
}

// summary is the last line: medians and rates.
type summary struct {
	Config         string  `json:"config,omitempty"`
	Kind           string  `json:"kind"`
	Images         int     `json:"images"`
	Batch          int     `json:"batch"`
	Threads        int     `json:"threads"`
	Workers        int     `json:"decode_workers"`
	Ahead          int     `json:"ahead"`
	NoSpin         bool    `json:"nospin"`
	Rounds         int     `json:"rounds"`
	DecodeMs       float64 `json:"decode_ms"`
	SequentialMs   float64 `json:"sequential_ms"`
	PipelinedMs    float64 `json:"pipelined_ms"`
	PrefixMs       float64 `json:"prefix_ms"`
	ImagesPerS     float64 `json:"images_per_s"`
	GFLOPImage     float64 `json:"gflop_per_image,omitempty"`
	PrefixGFLOPs   float64 `json:"prefix_gflops,omitempty"`
	CacheGFLOPs    float64 `json:"cache_gflops,omitempty"`
	PeakGFLOPs     float64 `json:"peak_gflops,omitempty"`
	PrefixShare    float64 `json:"prefix_share_of_peak,omitempty"`
	CacheShare     float64 `json:"cache_share_of_peak,omitempty"`
	TextClasses    int     `json:"text_classes,omitempty"`
	TextChunk      int     `json:"text_chunk,omitempty"`
	TextMs         float64 `json:"text_ms,omitempty"`
	TextGFLOP      float64 `json:"text_gflop,omitempty"`
	TextGFLOPs     float64 `json:"text_gflops,omitempty"`
	TextShare      float64 `json:"text_share_of_peak,omitempty"`
	ProfileWritten string  `json:"profile,omitempty"`
}

// run times the cache as the package documentation says, printing JSON lines to w, and returns
// the summaries: one per batch size, then the text prefix's when timed.
func run(args []string, w io.Writer) ([]summary, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	dir := fs.String("bundle", "", "bundle folder (with features.onnx)")
	images := fs.String("images", "", "image folder (a sub-folder per class)")
	batchList := fs.String("batch", "32", "images per features run (the trainer's FeatureBatch); a comma-separated list alternates the sizes within each round")
	threads := fs.Int("threads", 0, "ORT intra-op threads (0: ORT's default)")
	workers := fs.Int("workers", 0, "image decoding workers (0: GOMAXPROCS)")
	ahead := fs.Int("ahead", 2, "batches decoded ahead in the pipelined mode")
	rounds := fs.Int("rounds", 3, "rounds; each times decode, sequential and pipelined once per batch size")
	augment := fs.Bool("augment", false, "decode with the training augmentation")
	classes := fs.Int("classes", 0, "also time the text prefix over this many prompts, once per round")
	textChunks := fs.String("text-chunk", "0", "prompts per text prefix run (0: all in one); a comma-separated list alternates them")
	gflopImage := fs.Float64("gflop-image", 0, "GFLOP of the image prefix per image (cost model)")
	gflopText := fs.Float64("gflop-text", 0, "GFLOP of the text prefix over -classes prompts (cost model)")
	peak := fs.Float64("peak", 0, "the machine's sgemm GFLOP/s (bench/peak)")
	profile := fs.String("profile", "", "write ORT's profile of one more pipelined pass (first batch size) with this prefix")
	nospin := fs.Bool("nospin", false, "ORT's intra-op threads do not spin while waiting for work")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	sizes, err := positiveList(*batchList, "-batch", 1)
	if err != nil {
		return nil, err
	}
	if *dir == "" || *images == "" || *rounds < 1 || *ahead < 1 {
		return nil, errors.New("run needs -bundle, -images, -rounds >= 1 and -ahead >= 1")
	}
	man, err := bundle.ReadManifest(*dir)
	if err != nil {
		return nil, err
	}
	var visionState, textState string
	for _, t := range man.Towers {
		switch t.Kind {
		case "vision":
			visionState = t.State
		case "text":
			textState = t.State
		}
	}
	rec, err := man.Graph("features")
	if err != nil || visionState == "" {
		return nil, fmt.Errorf("%s: no features graph with a cached image state; convert with --strategy lskip", *dir)
	}
	m, err := onnxio.Load(filepath.Join(*dir, rec.File))
	if err != nil {
		return nil, err
	}
	opts := &runtime.Options{IntraOpThreads: *threads}
	if *nospin {
		opts.Config = map[string]string{"session.intra_op.allow_spinning": "0"}
	}
	sess, err := bundle.OpenPart(m, "image prefix", []string{visionState}, opts)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	prep, _, err := data.PreprocessorFor(man.Vision.ImageSize, *dir)
	if err != nil {
		return nil, err
	}
	prep.Augment = *augment
	prep.Workers = *workers
	ds, err := data.LoadFolder(*images)
	if err != nil {
		return nil, err
	}
	paths := ds.Paths()
	split := func(n int) [][]string {
		var out [][]string
		for s := 0; s < len(paths); s += n {
			out = append(out, paths[s:min(s+n, len(paths))])
		}
		return out
	}
	size := int64(prep.Size)
	// pass caches the batches once and returns the wall time and the time in features runs.
	pass := func(s *runtime.Session, batches [][]string, ahead int, round int) (time.Duration, time.Duration, error) {
		var rng *rand.Rand
		if *augment {
			rng = rand.New(rand.NewPCG(uint64(round), 7))
		}
		var inRuns time.Duration
		t0 := time.Now()
		err := prep.Each(context.Background(), batches, rng, ahead, func(i int, px []float32) error {
			if s == nil {
				return nil
			}
			pt, err := tensorio.FromSlice([]int64{int64(len(batches[i])), 3, size, size}, px)
			if err != nil {
				return err
			}
			r0 := time.Now()
			_, err = s.Run(map[string]*tensorio.Tensor{man.Vision.Input: pt})
			inRuns += time.Since(r0)
			return err
		})
		return time.Since(t0), inRuns, err
	}
	// warm-up: ORT's first run of each shape allocates and plans
	for _, n := range sizes {
		if _, _, err := pass(sess, split(n)[:1], 0, -1); err != nil {
			return nil, err
		}
	}
	var text *runtime.Session
	var chunks []int
	// textFeeds returns the text prefix's inputs for n prompts (random token ids).
	textFeeds := func(n int) (map[string]*tensorio.Tensor, error) {
		in := bundle.RandomInputs(rand.New(rand.NewPCG(1, 1)), man, 1, n)
		feeds := map[string]*tensorio.Tensor{}
		for _, name := range text.InputNames() {
			if in[name] == nil {
				return nil, fmt.Errorf("no value for the text prefix's input %s", name)
			}
			feeds[name] = in[name]
		}
		return feeds, nil
	}
	// textPass runs the text prefix over all -classes prompts, chunk at a time (0: all).
	textPass := func(chunk int) error {
		if chunk <= 0 || chunk > *classes {
			chunk = *classes
		}
		for done := 0; done < *classes; done += chunk {
			feeds, err := textFeeds(min(chunk, *classes-done))
			if err != nil {
				return err
			}
			if _, err := text.Run(feeds); err != nil {
				return err
			}
		}
		return nil
	}
	if *classes > 0 && textState != "" {
		if chunks, err = positiveList(*textChunks, "-text-chunk", 0); err != nil {
			return nil, err
		}
		if text, err = bundle.OpenPart(m, "text prefix", []string{textState}, opts); err != nil {
			return nil, err
		}
		defer text.Close()
		for _, c := range chunks {
			if err := textPass(c); err != nil {
				return nil, err
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	type key struct {
		batch int
		mode  string
	}
	byKey := map[key][]float64{}
	textMs := map[int][]float64{}
	modes := []string{"decode", "sequential", "pipelined"}
	for r := range *rounds {
		for bi := range sizes {
			n := sizes[(bi+r)%len(sizes)] // the orders turn each round
			batches := split(n)
			for k := range modes {
				mode := modes[(k+r)%len(modes)]
				s, a := sess, 0
				switch mode {
				case "decode":
					s = nil
				case "pipelined":
					a = *ahead
				}
				wall, inRuns, err := pass(s, batches, a, r)
				if err != nil {
					return nil, err
				}
				byKey[key{n, mode}] = append(byKey[key{n, mode}], ms(wall))
				if mode == "sequential" {
					byKey[key{n, "prefix"}] = append(byKey[key{n, "prefix"}], ms(inRuns))
				}
				b, _ := json.Marshal(timing{Mode: mode, Round: r + 1, Images: len(paths), Batch: n, WallMs: ms(wall), PrefixMs: ms(inRuns)})
				fmt.Fprintln(w, string(b))
			}
		}
		for ci := range chunks {
			c := chunks[(ci+r)%len(chunks)]
			t0 := time.Now()
			if err := textPass(c); err != nil {
				return nil, err
			}
			textMs[c] = append(textMs[c], ms(time.Since(t0)))
		}
	}
	var out []summary
	for _, n := range sizes {
		sum := summary{Kind: "summary", Images: len(paths), Batch: n, Threads: *threads, Workers: *workers, Ahead: *ahead, NoSpin: *nospin, Rounds: *rounds,
			DecodeMs: stats.Median(byKey[key{n, "decode"}]), SequentialMs: stats.Median(byKey[key{n, "sequential"}]), PipelinedMs: stats.Median(byKey[key{n, "pipelined"}]),
			PrefixMs: stats.Median(byKey[key{n, "prefix"}]), GFLOPImage: *gflopImage, PeakGFLOPs: *peak}
		sum.ImagesPerS = float64(len(paths)) / (min(sum.PipelinedMs, sum.SequentialMs) / 1000)
		if *gflopImage > 0 {
			total := *gflopImage * float64(len(paths))
			sum.PrefixGFLOPs = total / (sum.PrefixMs / 1000)
			sum.CacheGFLOPs = total / (min(sum.PipelinedMs, sum.SequentialMs) / 1000)
			if *peak > 0 {
				sum.PrefixShare = sum.PrefixGFLOPs / *peak
				sum.CacheShare = sum.CacheGFLOPs / *peak
			}
		}
		out = append(out, sum)
	}
	for _, c := range chunks {
		sum := summary{Kind: "text", Threads: *threads, NoSpin: *nospin, Rounds: *rounds, PeakGFLOPs: *peak,
			TextClasses: *classes, TextChunk: c, TextMs: stats.Median(textMs[c]), TextGFLOP: *gflopText}
		if *gflopText > 0 {
			sum.TextGFLOPs = *gflopText / (sum.TextMs / 1000)
			if *peak > 0 {
				sum.TextShare = sum.TextGFLOPs / *peak
			}
		}
		out = append(out, sum)
	}
	if *profile != "" {
		popts := *opts
		popts.ProfilePrefix = *profile
		psess, err := bundle.OpenPart(m, "image prefix (profiled)", []string{visionState}, &popts)
		if err != nil {
			return nil, err
		}
		_, _, err = pass(psess, split(sizes[0]), *ahead, 0) // ortprof -skip 1 leaves the first run out
		psess.Close()
		if err != nil {
			return nil, err
		}
		out[0].ProfileWritten = *profile + "_*.json"
	}
	for _, sum := range out {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(w, string(b))
	}
	return out, nil
}

// positiveList parses a comma-separated list of numbers of at least least.
func positiveList(s, flag string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < least {
			return nil, fmt.Errorf("%s %q: want numbers of at least %d separated by commas", flag, s, least)
		}
		out = append(out, n)
	}
	return out, nil
}

// table prints the summaries of a file of run outputs as a Markdown table.
func table(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	peak := fs.Float64("peak", 0, "the sgemm GFLOP/s the shares are of (0: each run's own -peak)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: featbench table [-peak GFLOPS] FILE.jsonl")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "| config | batch | decode workers | ORT spin | decode only ms | sequential ms | pipelined ms | pipelined / sequential | images/s | prefix alone GFLOP/s (of peak) | whole cache GFLOP/s (of peak) | sgemm peak GFLOP/s |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var text []summary
	for _, line := range strings.Split(string(b), "\n") {
		var s summary
		if json.Unmarshal([]byte(line), &s) != nil || s.Kind != "summary" && s.Kind != "text" {
			continue
		}
		if *peak > 0 {
			s.PeakGFLOPs, s.PrefixShare, s.CacheShare, s.TextShare = *peak, s.PrefixGFLOPs / *peak, s.CacheGFLOPs / *peak, s.TextGFLOPs / *peak
		}
		if s.Kind == "text" {
			text = append(text, s)
			continue
		}
		workers := "GOMAXPROCS"
		if s.Workers > 0 {
			workers = strconv.Itoa(s.Workers)
		}
		spin := map[bool]string{false: "on", true: "off"}[s.NoSpin]
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.0f |\n", s.Config, s.Batch, workers, spin,
			s.DecodeMs, s.SequentialMs, s.PipelinedMs, s.PipelinedMs/s.SequentialMs, s.ImagesPerS,
			s.PrefixGFLOPs, 100*s.PrefixShare, s.CacheGFLOPs, 100*s.CacheShare, s.PeakGFLOPs)
	}
	if len(text) > 0 {
		fmt.Fprintln(w)
	}
	for _, s := range text {
		runs := "in one run"
		if s.TextChunk > 0 && s.TextChunk < s.TextClasses {
			runs = fmt.Sprintf("%d per run", s.TextChunk)
		}
		fmt.Fprintf(w, "%s: text prefix, %d class prompts %s: %.0f ms, %.1f GFLOP, %.0f GFLOP/s (%.0f%% of the sgemm peak %.0f)\n",
			s.Config, s.TextClasses, runs, s.TextMs, s.TextGFLOP, s.TextGFLOPs, 100*s.TextShare, s.PeakGFLOPs)
	}
	return nil
}
