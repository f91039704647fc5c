package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
)

// TestDataAndRun writes a data set past the synthetic class count, times the cache of a tiny
// LSkip bundle over it on ONNX Runtime, and checks the timings, the rates derived from them and
// the table.
func TestDataAndRun(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if _, err := synth.Write(synth.Config{Style: synth.StyleHF, Size: "tiny", Seed: 1}, model); err != nil {
		t.Fatal(err)
	}
	src, err := bundle.LoadSource(filepath.Join(model, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "bundle")
	if _, err := bundle.Convert(context.Background(), src, b, bundle.Options{Strategies: []bundle.StrategySpec{{Strategy: lskip.Strategy{}}}}); err != nil {
		t.Fatal(err)
	}

	imgs := filepath.Join(dir, "images")
	classes := data.MaxSyntheticClasses + 2
	if err := makeData([]string{"-o", imgs, "-classes", strconv.Itoa(classes), "-shots", "1", "-size", "32",
		"-tokenizer", model, "-vocab", strconv.Itoa(synth.Sizes["tiny"].Vocab)}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadFolder(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Classes) != classes || len(ds.Items) != classes {
		t.Fatalf("%d classes, %d images; want %d of each", len(ds.Classes), len(ds.Items), classes)
	}
	if _, err := os.Stat(filepath.Join(model, "tokenizer.json")); err != nil {
		t.Errorf("no tokenizer written: %v", err)
	}
	if err := makeData([]string{"-o", imgs, "-classes", "2"}); err == nil {
		t.Error("data wrote over an existing folder")
	}

	var out bytes.Buffer
	sums, err := run([]string{"-bundle", b, "-images", imgs, "-batch", "16,7", "-threads", "1", "-rounds", "2", "-augment",
		"-classes", "5", "-text-chunk", "0,2", "-gflop-image", "0.5", "-gflop-text", "2", "-peak", "100"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 4 || sums[0].Batch != 16 || sums[1].Batch != 7 || sums[2].TextChunk != 0 || sums[3].TextChunk != 2 {
		t.Fatalf("summaries %+v: want batch 16, batch 7, text in one run, text 2 per run", sums)
	}
	modes := map[string]int{}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines[:len(lines)-4] {
		var tm timing
		if err := json.Unmarshal([]byte(l), &tm); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if tm.Images != classes || tm.WallMs <= 0 || (tm.Mode == "decode") != (tm.PrefixMs == 0) || tm.PrefixMs > tm.WallMs {
			t.Errorf("timing %+v", tm)
		}
		modes[tm.Mode+"/"+strconv.Itoa(tm.Batch)]++
	}
	for _, m := range []string{"decode", "sequential", "pipelined"} {
		for _, n := range []string{"16", "7"} {
			if modes[m+"/"+n] != 2 {
				t.Errorf("timed modes %v, want each twice per batch size", modes)
			}
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }
	for _, sum := range sums[:2] {
		if !near(sum.PrefixGFLOPs, 0.5*float64(classes)/(sum.PrefixMs/1000)) || !near(sum.PrefixShare, sum.PrefixGFLOPs/100) ||
			!near(sum.CacheGFLOPs, 0.5*float64(classes)/(min(sum.SequentialMs, sum.PipelinedMs)/1000)) {
			t.Errorf("rates do not follow from the times: %+v", sum)
		}
	}
	sum := sums[0]
	for _, ts := range sums[2:] {
		if ts.Kind != "text" || ts.TextClasses != 5 || ts.TextMs <= 0 || !near(ts.TextGFLOPs, 2/(ts.TextMs/1000)) {
			t.Errorf("text prefix: %+v", ts)
		}
	}

	jl := filepath.Join(dir, "f.jsonl")
	if err := os.WriteFile(jl, []byte(strings.ReplaceAll(out.String(), `{"kind":`, `{"config":"x","kind":`)), 0o644); err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	if err := table([]string{jl}, &tab); err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(tab.String(), "\n| x | 16 | GOMAXPROCS | on |"); rows != 1 {
		t.Errorf("table has %d rows of the run:\n%s", rows, tab.String())
	}
	if !strings.Contains(tab.String(), "x: text prefix, 5 class prompts in one run") || !strings.Contains(tab.String(), "x: text prefix, 5 class prompts 2 per run") {
		t.Errorf("table lacks the text prefix:\n%s", tab.String())
	}
	// shares of another peak
	tab.Reset()
	if err := table([]string{"-peak", "50", jl}, &tab); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("(%.0f%%) | %.0f (%.0f%%) | 50 |", 100*sum.PrefixGFLOPs/50, sum.CacheGFLOPs, 100*sum.CacheGFLOPs/50)
	if !strings.Contains(tab.String(), want) {
		t.Errorf("table with -peak 50 lacks %q:\n%s", want, tab.String())
	}
}
