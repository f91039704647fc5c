package data

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	if err := GenerateDataset(dir, 5, 4, 32, 3); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantClasses := []string{"red circle", "green square", "blue triangle", "yellow cross", "purple horizontal stripes"}
	if strings.Join(ds.Classes, ",") != strings.Join(wantClasses, ",") {
		t.Errorf("classes %q, want %q", ds.Classes, wantClasses)
	}
	if len(ds.Items) != 20 {
		t.Errorf("%d items, want 20", len(ds.Items))
	}
	if err := ds.Verify(); err != nil {
		t.Fatal(err)
	}
	// Images of a class differ; the same seed gives the same bytes.
	a, _ := os.ReadFile(ds.Items[0].Path)
	b, _ := os.ReadFile(ds.Items[1].Path)
	if bytes.Equal(a, b) {
		t.Error("two images of a class are identical")
	}
	dir2 := filepath.Join(t.TempDir(), "synth")
	GenerateDataset(dir2, 5, 4, 32, 3)
	c, _ := os.ReadFile(filepath.Join(dir2, "red_circle", "0000.png"))
	if !bytes.Equal(a, c) {
		t.Error("same seed gave different images")
	}
	img, _ := LoadImage(ds.Items[0].Path)
	if img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
		t.Errorf("size %v", img.Bounds())
	}
}

// TestSyntheticSeparable checks the classes can be told apart by a
// trivial position-invariant model: nearest class mean of a coarse colour
// histogram of the saturated pixels. The first six classes differ in
// colour; later ones share colours and differ in shape, which this model
// does not see.
func TestSyntheticSeparable(t *testing.T) {
	dir := t.TempDir()
	const classes, per = 6, 12
	if err := GenerateDataset(dir, classes, per, 48, 11); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ds.Split(0, 0.5, 1)
	hist := func(path string) []float64 {
		img, err := LoadImage(path)
		if err != nil {
			t.Fatal(err)
		}
		h := make([]float64, 64)
		for i := 0; i < len(img.Pix); i += 4 {
			r, g, b := int(img.Pix[i]), int(img.Pix[i+1]), int(img.Pix[i+2])
			if max(r, g, b)-min(r, g, b) > 70 { // saturated: the object
				h[r/64*16+g/64*4+b/64]++
			}
		}
		return h
	}
	means := make([][]float64, classes)
	for _, it := range s.Train.Items {
		if means[it.Label] == nil {
			means[it.Label] = make([]float64, 64)
		}
		for j, v := range hist(it.Path) {
			means[it.Label][j] += v
		}
	}
	correct := 0
	for _, it := range s.Test.Items {
		f := hist(it.Path)
		best, bestD := -1, 0.0
		for l, m := range means {
			// Cosine distance to the class's summed histogram.
			dot, nf, nm := 0.0, 0.0, 0.0
			for j := range f {
				dot += f[j] * m[j]
				nf += f[j] * f[j]
				nm += m[j] * m[j]
			}
			d := -dot / math.Sqrt(nf*nm)
			if best < 0 || d < bestD {
				best, bestD = l, d
			}
		}
		if best == it.Label {
			correct++
		}
	}
	acc := float64(correct) / float64(len(s.Test.Items))
	t.Logf("nearest-mean colour-histogram accuracy %.2f on %d test images (chance %.2f)", acc, len(s.Test.Items), 1.0/classes)
	if acc < 0.9 {
		t.Errorf("synthetic classes look inseparable: accuracy %.2f", acc)
	}
}

func TestGenerateDatasetErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	tests := []struct {
		dir                string
		classes, per, size int
		want               string
	}{
		{t.TempDir(), 0, 1, 32, "classes"},
		{t.TempDir(), MaxSyntheticClasses + 1, 1, 32, "classes"},
		{t.TempDir(), 2, 0, 32, "images per class"},
		{t.TempDir(), 2, 1, 4, "image size"},
		{dir, 2, 1, 32, "not empty"},
	}
	for _, tt := range tests {
		err := GenerateDataset(tt.dir, tt.classes, tt.per, tt.size, 1)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("GenerateDataset(%d, %d, %d) = %v, want %q", tt.classes, tt.per, tt.size, err, tt.want)
		}
	}
	if n := len(SyntheticClasses(MaxSyntheticClasses)); n != MaxSyntheticClasses {
		t.Errorf("SyntheticClasses gives %d names", n)
	}
	seen := map[string]bool{}
	for _, c := range SyntheticClasses(MaxSyntheticClasses) {
		if seen[c] {
			t.Errorf("duplicate class %s", c)
		}
		seen[c] = true
	}
}
