package report

import (
	"bytes"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var keep = flag.String("keep", "", "write the test figures into this folder to look at them")

// sampleCurves is a short run: 3 epochs of 4 steps, validation in the last two only.
func sampleCurves() *Curves {
	c := &Curves{}
	for s := 1; s <= 12; s++ {
		c.Step = append(c.Step, float64(s))
		c.StepLoss = append(c.StepLoss, 2/math.Sqrt(float64(s))+0.1*math.Sin(float64(s)))
	}
	c.EpochStep = []float64{4, 8, 12}
	c.EpochLoss = []float64{1.5, 0.9, 0.6}
	c.Epoch = []float64{1, 2, 3}
	c.TrainAcc = []float64{0.3, 0.6, 0.8}
	c.ValAcc = []float64{math.NaN(), 0.5, 0.7}
	return c
}

// trickyClasses are class names a bitmap font gets wrong.
var trickyClasses = []string{"Crème brûlée", "Bird's nest", "McDonald's", "São Paulo", "naïve Bayes", "ĆEVAPČIĆI"}

func sampleConfusion() [][]int {
	n := len(trickyClasses)
	m := make([][]int, n)
	for i := range m {
		m[i] = make([]int, n)
		m[i][i] = 8 - i
		m[i][(i+1)%n] = i
	}
	return m
}

func TestFigures(t *testing.T) {
	curves, err := CurvesFigure(sampleCurves())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := ConfusionFigure(trickyClasses, sampleConfusion(), "Confusion matrix: top-1 71.4%")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fig  *Figure
		want []string
	}{
		{"curves", curves, []string{"Training loss", "Accuracy", "optimizer step", "epoch", "mean loss per epoch", "validation", "train"}},
		{"confusion", conf, append([]string{"predicted class", "true class", "Confusion matrix: top-1 71.4%"}, trickyClasses...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if *keep != "" {
				dir = *keep
			}
			pngPath := filepath.Join(dir, tc.name+".png")
			svgPath, err := tc.fig.Save(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if w := img.Bounds().Dx(); w < 400 {
				t.Errorf("PNG is %d pixels wide", w)
			}
			svg, err := os.ReadFile(svgPath)
			if err != nil {
				t.Fatal(err)
			}
			// The SVG carries each text as written (HTML-escaped).
			for _, w := range tc.want {
				esc := strings.NewReplacer("'", "&#39;", "&", "&amp;").Replace(w)
				if !bytes.Contains(svg, []byte(">"+esc+"<")) {
					t.Errorf("SVG has no text %q", w)
				}
			}
		})
	}
}

func TestConfusionFigureRejects(t *testing.T) {
	if _, err := ConfusionFigure([]string{"a", "b"}, [][]int{{1, 0}}, ""); err == nil {
		t.Error("a matrix of 1 row for 2 classes was drawn")
	}
	if _, err := ConfusionFigure([]string{"a", "b"}, [][]int{{1, 0}, {1}}, ""); err == nil {
		t.Error("a ragged matrix was drawn")
	}
}

func TestReadCurves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	os.WriteFile(path, []byte(`{"type":"step","epoch":1,"step":1,"loss":2.5}
{"type":"step","epoch":1,"step":2,"loss":2.0}
not json
{"type":"epoch","epoch":1,"step":2,"loss":2.25,"acc":0.5}
{"type":"epoch","epoch":2,"step":4,"loss":1.5,"acc":0.75,"val_acc":0.625}
`), 0o644)
	c, err := ReadCurves(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Step) != 2 || c.StepLoss[1] != 2.0 || len(c.Epoch) != 2 || c.EpochStep[1] != 4 || c.TrainAcc[1] != 0.75 || !math.IsNaN(c.ValAcc[0]) || c.ValAcc[1] != 0.625 {
		t.Fatalf("curves %+v", c)
	}
}

func TestIntegerTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.8, 12.2, []string{"2", "4", "6", "8", "10", "12"}},
		{0.8, 6.2, []string{"1", "2", "3", "4", "5", "6"}},
		{1, 144, []string{"20", "40", "60", "80", "100", "120", "140"}},
		{0, 30, []string{"0", "5", "10", "15", "20", "25", "30"}},
		{3, 3, []string{"3"}},
	} {
		var got []string
		for _, tk := range (integerTicks{}).Ticks(tc.lo, tc.hi) {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ticks of [%g, %g]: %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
}
