package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// TestRunReport: a finished run leaves report.html with its settings, the estimated savings,
// both figures and the per-class table of the validation split, and headless Chromium renders
// it without complaint; the plot has an SVG twin.
func TestRunReport(t *testing.T) {
	b := fixtureBundle(t, "lskip,cskip")
	out := filepath.Join(t.TempDir(), "run")
	cfg := quickConfig(t, b, out)
	cfg.Epochs = 2
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Report != filepath.Join(out, ReportFile) {
		t.Fatalf("Result.Report = %q", res.Report)
	}
	if _, err := os.Stat(filepath.Join(out, "plot.svg")); err != nil {
		t.Errorf("no SVG beside the plot: %v", err)
	}
	html, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	s := string(html)
	want := []string{"lskip (", "cskip (", `id="plan-table"`, "trainable parameters", "Per-class accuracy (validation", "steps per second", "learning rate"}
	for _, c := range data.SyntheticClasses(fixClasses) {
		want = append(want, "<td>"+data.DisplayName(c)+"</td>")
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	p := testenv.Chromium(t, res.Report, 1200, 2600)
	for _, line := range p.Problems {
		t.Errorf("browser reports: %s", line)
	}
	if n := strings.Count(p.DOM, "<svg "); n != 2 {
		t.Errorf("the rendered page holds %d figures, want 2", n)
	}
	dark := testenv.CountPixels(p.Screenshot, func(r, g, b uint8) bool { return r < 60 && g < 130 && b > 150 })
	if dark < 200 {
		t.Errorf("screenshot shows %d blue pixels; the curves and the confusion matrix are not drawn", dark)
	}
}
