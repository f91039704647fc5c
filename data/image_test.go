package data

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEvalMatchesPIL compares the evaluation resize and crop, and the
// augmentation's crop and resize, with PIL's bicubic resize
// (testdata/gen_preprocess_reference.py).
func TestEvalMatchesPIL(t *testing.T) {
	data, err := os.ReadFile("testdata/preprocess_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			File   string `json:"file"`
			Size   int    `json:"size"`
			Crop   []int  `json:"crop"` // left, top, width, height
			Pixels []int  `json:"pixels"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		t.Run(c.File, func(t *testing.T) {
			img, err := LoadImage(filepath.Join("testdata", c.File))
			if err != nil {
				t.Fatal(err)
			}
			out := NewPreprocessor(c.Size).EvalImage(img)
			if len(c.Crop) == 4 {
				r := image.Rect(c.Crop[0], c.Crop[1], c.Crop[0]+c.Crop[2], c.Crop[1]+c.Crop[3])
				out = resizeBicubic(img, r, c.Size, c.Size, image.Rect(0, 0, c.Size, c.Size))
			}
			if len(c.Pixels) != c.Size*c.Size*3 {
				t.Fatalf("reference has %d values", len(c.Pixels))
			}
			maxDiff, sum := 0, 0
			for y := range c.Size {
				for x := range c.Size {
					for ch := range 3 {
						got := int(out.Pix[out.PixOffset(x, y)+ch])
						want := c.Pixels[(y*c.Size+x)*3+ch]
						d := got - want
						if d < 0 {
							d = -d
						}
						maxDiff = max(maxDiff, d)
						sum += d
					}
				}
			}
			mean := float64(sum) / float64(len(c.Pixels))
			t.Logf("max |diff| %d, mean %.3f grey levels", maxDiff, mean)
			if maxDiff != 0 {
				t.Errorf("differs from PIL: max %d, mean %.3f grey levels; want identical", maxDiff, mean)
			}
		})
	}
}

func TestResizeShortCrop(t *testing.T) {
	tests := []struct {
		w, h, size, rw, rh int
		crop               image.Rectangle
	}{
		{640, 480, 224, 298, 224, image.Rect(37, 0, 261, 224)},
		{480, 640, 224, 224, 298, image.Rect(0, 37, 224, 261)},
		{224, 224, 224, 224, 224, image.Rect(0, 0, 224, 224)},
		{100, 103, 10, 10, 10, image.Rect(0, 0, 10, 10)},
		// (11-10)/2 = 0.5 rounds to even: 0; (13-10)/2 = 1.5 rounds to 2.
		{10, 11, 10, 10, 11, image.Rect(0, 0, 10, 10)},
		{10, 13, 10, 10, 13, image.Rect(0, 2, 10, 12)},
		{3, 1000, 224, 224, 74666, image.Rect(0, 37221, 224, 37445)},
	}
	for _, tt := range tests {
		rw, rh, crop := ResizeShortCrop(tt.w, tt.h, tt.size)
		if rw != tt.rw || rh != tt.rh || crop != tt.crop {
			t.Errorf("ResizeShortCrop(%d, %d, %d) = %d, %d, %v; want %d, %d, %v", tt.w, tt.h, tt.size, rw, rh, crop, tt.rw, tt.rh, tt.crop)
		}
	}
}

func TestNormalize(t *testing.T) {
	p := NewPreprocessor(2)
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range 4 {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = 255, 0, uint8(60*i), 255
	}
	dst := make([]float32, p.ImageLen())
	p.Normalize(img, dst)
	for i := range 4 {
		want := []float32{
			(1 - CLIPMean[0]) / CLIPStd[0],
			(0 - CLIPMean[1]) / CLIPStd[1],
			(float32(60*i)/255 - CLIPMean[2]) / CLIPStd[2],
		}
		for c := range 3 {
			if got := dst[c*4+i]; math.Abs(float64(got-want[c])) > 1e-6 {
				t.Errorf("pixel %d channel %d = %v, want %v", i, c, got, want[c])
			}
		}
	}
}

func TestRandomResizedCrop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		w, h := 1+rng.IntN(400), 1+rng.IntN(400)
		r := RandomResizedCrop(w, h, [2]float64{0.08, 1}, [2]float64{3.0 / 4, 4.0 / 3}, rng)
		if r.Empty() || !r.In(image.Rect(0, 0, w, h)) {
			t.Fatalf("crop %v outside %dx%d", r, w, h)
		}
	}
	// Impossible scale forces the fallback centre crop, clamped to the ratio.
	for _, tt := range []struct {
		w, h int
		want image.Rectangle
	}{
		{100, 100, image.Rect(0, 0, 100, 100)},
		{300, 100, image.Rect(83, 0, 216, 100)}, // w = round(100*4/3) = 133
		{100, 300, image.Rect(0, 83, 100, 216)},
	} {
		got := RandomResizedCrop(tt.w, tt.h, [2]float64{2, 3}, [2]float64{3.0 / 4, 4.0 / 3}, rng)
		if got != tt.want {
			t.Errorf("fallback %dx%d = %v, want %v", tt.w, tt.h, got, tt.want)
		}
	}
}

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImageKinds(t *testing.T) {
	dir := t.TempDir()
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range gray.Pix {
		gray.Pix[i] = 77
	}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}})
	alpha := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(alpha.Pix); i += 4 {
		copy(alpha.Pix[i:], []uint8{200, 100, 50, 10}) // nearly transparent: colour is kept
	}
	g16 := image.NewGray16(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(g16.Pix); i += 2 {
		g16.Pix[i], g16.Pix[i+1] = 0x80, 0x00
	}
	rgb := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(rgb.Pix); i += 4 {
		copy(rgb.Pix[i:], []uint8{90, 120, 150, 255})
	}
	tests := []struct {
		name string
		img  image.Image
		want [3]uint8
		tol  int
	}{
		{"gray.png", gray, [3]uint8{77, 77, 77}, 0},
		{"pal.png", pal, [3]uint8{10, 20, 30}, 0},
		{"alpha.png", alpha, [3]uint8{200, 100, 50}, 0},
		{"gray16.png", g16, [3]uint8{128, 128, 128}, 0},
		{"rgb.jpg", rgb, [3]uint8{90, 120, 150}, 3},
		{"gray.JPEG", gray, [3]uint8{77, 77, 77}, 1},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		writeImage(t, path, tt.img)
		got, err := LoadImage(path)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		o := got.PixOffset(2, 2)
		for c := range 3 {
			if d := int(got.Pix[o+c]) - int(tt.want[c]); d < -tt.tol || d > tt.tol || got.Pix[o+3] != 255 {
				t.Errorf("%s: pixel %v, want %v", tt.name, got.Pix[o:o+4], tt.want)
				break
			}
		}
	}
}

func TestLoadImageErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "text.png"), []byte("not an image"), 0o644)
	var b bytes.Buffer
	png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	os.WriteFile(filepath.Join(dir, "cut.png"), b.Bytes()[:b.Len()/2], 0o644)
	tests := []struct{ file, want string }{
		{"text.png", "not a JPEG or PNG image"},
		{"cut.png", "corrupt png image"},
		{"missing.png", "no such file"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.file)
		_, err := LoadImage(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadImage(%s) = %v, want an error naming the file and %q", tt.file, err, tt.want)
		}
	}
}

func TestBatchDeterministic(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDataset(dir, 2, 3, 40, 7); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPreprocessor(16)
	eval1, err := p.Batch(ds.Paths(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eval1) != 6*3*16*16 {
		t.Fatalf("batch has %d floats", len(eval1))
	}
	p.Workers = 1
	eval2, _ := p.Batch(ds.Paths(), nil)
	if !slices.Equal(eval1, eval2) {
		t.Error("evaluation batch depends on the worker count")
	}
	p.Augment = true
	if _, err := p.Batch(ds.Paths(), nil); err == nil {
		t.Error("augmenting without a random source succeeded")
	}
	a, _ := p.Batch(ds.Paths(), rand.New(rand.NewPCG(3, 4)))
	p.Workers = 4
	b, _ := p.Batch(ds.Paths(), rand.New(rand.NewPCG(3, 4)))
	c, _ := p.Batch(ds.Paths(), rand.New(rand.NewPCG(5, 6)))
	if !slices.Equal(a, b) {
		t.Error("augmented batch differs for the same seed")
	}
	if slices.Equal(a, c) || slices.Equal(a, eval1) {
		t.Error("augmentation had no effect")
	}
	// A corrupt file in the batch is named.
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("junk"), 0o644)
	if _, err := p.Batch(append(ds.Paths(), bad), rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt image: %v", err)
	}
}

func TestFlip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 1))
	copy(img.Pix, []uint8{1, 1, 1, 255, 2, 2, 2, 255, 3, 3, 3, 255})
	flipH(img)
	if img.Pix[0] != 3 || img.Pix[4] != 2 || img.Pix[8] != 1 {
		t.Errorf("flip: %v", img.Pix)
	}
}

func TestPreprocessorChecks(t *testing.T) {
	p := NewPreprocessor(0)
	if err := p.Image(image.NewRGBA(image.Rect(0, 0, 4, 4)), nil, nil); err == nil {
		t.Error("size 0 accepted")
	}
	p = NewPreprocessor(4)
	if err := p.Image(image.NewRGBA(image.Rect(0, 0, 4, 4)), nil, make([]float32, 3)); err == nil {
		t.Error("short destination accepted")
	}
}
