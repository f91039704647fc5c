package report

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/cost"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// sampleRun has every part of a report.
func sampleRun() *Run {
	n := len(trickyClasses)
	per := make([]float64, n)
	count := make([]int, n)
	conf := sampleConfusion()
	for i := range conf {
		for _, v := range conf[i] {
			count[i] += v
		}
		per[i] = float64(conf[i][i]) / float64(count[i])
	}
	per[n-1] = math.NaN()
	full := &cost.Estimate{Total: cost.Cost{TrainableParams: 150e6, OptimizerBytes: 600 << 20, ForwardFLOPs: 1e12, BackwardFLOPs: 2e12, ActivationBytes: 3 << 30}}
	chosen := &cost.Estimate{Total: cost.Cost{TrainableParams: 75e6, OptimizerBytes: 300 << 20, ForwardFLOPs: 3e11, BackwardFLOPs: 4e11, ActivationBytes: 1 << 29}, TextPrefixFLOPs: 5e9, ImagePrefixFLOPs: 2e9}
	return &Run{
		Title:    "Training run <demo> & \"friends\"",
		Settings: []KV{{"bundle", "my-bundle"}, {"epochs", "3"}, {"learning rate", "text 2e-05, vision 5e-06"}},
		Plan:     &Plan{Strategies: []string{"lskip (vision-start=6)", "cskip"}, Full: full, Chosen: chosen},
		Curves:   sampleCurves(),
		Eval:     &Eval{Split: "validation", Classes: trickyClasses, Accuracy: 0.714, PerClass: per, Count: count, Confusion: conf},
		Timings:  []KV{{"training", "12.5 s"}, {"steps per second", "3.2"}},
	}
}

func TestHTML(t *testing.T) {
	b, err := HTML(sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, w := range []string{
		"<title>Training run &lt;demo&gt; &amp; &#34;friends&#34;</title>",
		`id="plan-table"`, "150.00M", "75.00M", "2x", "4.29x", "text 5.00 GFLOP for all class prompts", // 3e12 / 7e11 FLOPs
		"Bird&#39;s nest", "Crème brûlée", "ĆEVAPČIĆI</td><td class=\"num\">8</td><td class=\"num\">n/a",
		"<svg role=\"img\" class=\"figure\"", "12.5 s",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if n := strings.Count(s, "<svg "); n != 2 {
		t.Errorf("page has %d inline SVG figures, want 2", n)
	}
	if strings.Contains(s, "<?xml") {
		t.Error("page carries an XML prolog inside HTML")
	}
	// Nothing is loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"[^"#]`).FindString(s); m != "" {
		t.Errorf("page refers to an outside resource: %s", m)
	}

	// Parts left out are left out.
	b, err = HTML(&Run{Title: "empty", Plan: &Plan{Strategies: []string{"plugin"}, Note: "no estimate for a plugin strategy"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "<svg") || strings.Contains(s, "per-class") || !strings.Contains(s, "no estimate for a plugin strategy") {
		t.Errorf("empty report:\n%s", s)
	}
}

// TestReportInChromium loads the page in headless Chromium with networking off: the DOM it
// builds holds both figures and the tables, the console shows no error, and the screenshot
// shows the figures' colours.
func TestReportInChromium(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, ReportFile)
	if err := Write(page, sampleRun()); err != nil {
		t.Fatal(err)
	}
	p := testenv.Chromium(t, page, 1200, 3000)
	for _, line := range p.Problems {
		t.Errorf("browser reports: %s", line)
	}
	if n := strings.Count(p.DOM, `<svg role="img" class="figure"`); n != 2 {
		t.Errorf("the DOM holds %d figures, want 2", n)
	}
	for _, w := range []string{"Per-class accuracy", "Confusion matrix", "Crème brûlée", "Bird's nest", "What the skip strategies save", "predicted class", "optimizer step"} {
		if !strings.Contains(p.DOM, w) {
			t.Errorf("the DOM lacks %q", w)
		}
	}
	// The curves' blue and red and the heat map's dark blue are on screen.
	for name, match := range figureColours {
		if n := testenv.CountPixels(p.Screenshot, match); n < 20 {
			t.Errorf("screenshot shows %d pixels of the %s (want the figure drawn)", n, name)
		}
	}
	if *keep != "" {
		f, err := os.Create(filepath.Join(*keep, "report-screenshot.png"))
		if err == nil {
			png.Encode(f, p.Screenshot)
			f.Close()
		}
	}
}

// figureColours pick out the figures' marks in a screenshot.
var figureColours = map[string]func(r, g, b uint8) bool{
	"loss blue":      func(r, g, b uint8) bool { return r < 40 && g > 70 && g < 110 && b > 160 && b < 200 },
	"train red":      func(r, g, b uint8) bool { return r > 200 && g < 70 && b < 50 },
	"heat map cells": func(r, g, b uint8) bool { return r < 60 && g < 100 && b > 90 && b < 170 },
}
