package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageHeaderCost(t *testing.T) {
	dir := t.TempDir()
	jpg := filepath.Join(dir, "a.jpg")
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 64, 32)), nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(jpg, buf.Bytes(), 0o644)
	gray := filepath.Join(dir, "g.png")
	buf.Reset()
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 10, 20)))
	os.WriteFile(gray, buf.Bytes(), 0o644)
	const s = 224
	extra := func(w, h int64) int64 { return 4*s*h + 4*s*s + 16*(w+h) + 64*s + 1<<20 }
	for _, tc := range []struct {
		name   string
		path   string
		make   func(string) error
		model  color.Model
		w, h   int64
		pixels int64 // bytes per pixel held
	}{
		{"8-bit RGBA PNG, converted in place", "rgba8.png", func(p string) error { return WriteLargePNG(p, 300, 200, 8, true) }, color.NRGBAModel, 300, 200, 4},
		{"8-bit RGB PNG, converted in place", "rgb8.png", func(p string) error { return WriteLargePNG(p, 300, 200, 8, false) }, color.RGBAModel, 300, 200, 4},
		{"16-bit RGBA PNG", "rgba16.png", func(p string) error { return WriteLargePNG(p, 300, 200, 16, true) }, color.NRGBA64Model, 300, 200, 12},
		{"16-bit RGB PNG", "rgb16.png", func(p string) error { return WriteLargePNG(p, 300, 200, 16, false) }, color.RGBA64Model, 300, 200, 12},
		{"gray PNG", gray, nil, color.GrayModel, 10, 20, 5},
		{"baseline JPEG", jpg, nil, color.YCbCrModel, 64, 32, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if tc.make != nil {
				path = filepath.Join(dir, tc.path)
				if err := tc.make(path); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := ReadImageHeader(f)
			if err != nil {
				t.Fatal(err)
			}
			if h.ColorModel != tc.model || int64(h.Width) != tc.w || int64(h.Height) != tc.h || h.Progressive || h.Interlaced {
				t.Fatalf("header %+v", h)
			}
			if got, want := h.DecodeCost(s), tc.w*tc.h*tc.pixels+extra(tc.w, tc.h); got != want {
				t.Errorf("cost %d, want %d", got, want)
			}
			// The image decodes and preprocesses within a budget of exactly its cost.
			b := NewDecodeBudget(h.DecodeCost(s))
			p := NewPreprocessor(s)
			p.Budget = b
			if _, err := p.Batch([]string{path}, nil); err != nil {
				t.Fatal(err)
			}
			if b.Peak() != h.DecodeCost(s) {
				t.Errorf("peak %d, want the image's cost %d", b.Peak(), h.DecodeCost(s))
			}
		})
	}
}

func TestJPEGProgressive(t *testing.T) {
	app0 := []byte{0xff, 0xe0, 0, 4, 1, 2}
	sof := func(m byte) []byte { return []byte{0xff, m, 0, 8, 8, 0, 1, 0, 1, 3} }
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"baseline", cat([]byte{0xff, 0xd8}, app0, sof(0xc0)), false},
		{"extended", cat([]byte{0xff, 0xd8}, sof(0xc1)), false},
		{"progressive", cat([]byte{0xff, 0xd8}, app0, sof(0xc2)), true},
		{"huffman table first", cat([]byte{0xff, 0xd8}, []byte{0xff, 0xc4, 0, 2}, sof(0xc0)), false},
		{"no frame header in reach", cat([]byte{0xff, 0xd8}, app0), true},
		{"garbage", []byte{0xff, 0xd8, 1, 2, 3, 4, 5}, true},
	} {
		if got := jpegProgressive(tc.b); got != tc.want {
			t.Errorf("%s: progressive %v, want %v", tc.name, got, tc.want)
		}
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestDecodeBudgetBounds: a large 8-bit image and seven 16-bit ones decoded by eight workers
// never hold more than the budget, and an image that alone exceeds it is refused with a line
// that names it, its size and the flag to raise the budget.
func TestDecodeBudgetBounds(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "big.png")}
	if err := WriteLargePNG(paths[0], 3000, 3000, 8, true); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		p := filepath.Join(dir, "deep"+string(rune('a'+i))+".png")
		if err := WriteLargePNG(p, 1200, 1200, 16, i%2 == 0); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	const limit = 48 << 20
	b := NewDecodeBudget(limit)
	p := NewPreprocessor(224)
	p.Budget, p.Workers = b, 8
	px, err := p.Batch(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != len(paths)*p.ImageLen() {
		t.Fatalf("%d floats", len(px))
	}
	t.Logf("peak %d MiB of a %d MiB budget", b.Peak()>>20, limit>>20)
	if b.Peak() > limit || b.Peak() < 36<<20 {
		t.Errorf("peak %d bytes, want between the big image's cost and the budget %d", b.Peak(), limit)
	}
	// The decoded pixels are the same as without a budget.
	ref, err := NewPreprocessor(224).Batch(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(px, ref) {
		t.Error("pixels differ from an unbounded decode")
	}
	// An image that alone needs more than the budget is refused.
	small := NewPreprocessor(224)
	small.Budget = NewDecodeBudget(16 << 20)
	_, err = small.Batch(paths[1:2], nil)
	if err == nil {
		t.Fatal("a 1200x1200 16-bit image was decoded within 16 MiB")
	}
	for _, w := range []string{paths[1], "1200x1200 16-bit png", "needs about 19 MiB", "budget of 16 MiB", "--decode-memory"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q: %v", w, err)
		}
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestToRGBFastPaths: the direct conversions of 16-bit, gray-16 and paletted images, and the
// in-place one of 8-bit RGBA images, give what the generic per-pixel colour conversion gives.
func TestToRGBFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rect := image.Rect(0, 0, 13, 7)
	fill := func(p []byte) {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	}
	n64 := image.NewNRGBA64(rect)
	fill(n64.Pix)
	r64 := image.NewRGBA64(rect)
	for y := range 7 {
		for x := range 13 {
			a := uint16(r.IntN(0x10000))
			if x == 0 {
				a = 0
			} else if x == 1 {
				a = 0xffff
			}
			c := func() uint16 { return uint16(r.IntN(int(a) + 1)) }
			r64.SetRGBA64(x, y, color.RGBA64{c(), c(), c(), a})
		}
	}
	g16 := image.NewGray16(rect)
	fill(g16.Pix)
	pal := image.NewPaletted(rect, color.Palette{color.RGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 128}, color.Gray{7}})
	for i := range pal.Pix {
		pal.Pix[i] = byte(r.IntN(3))
	}
	n8 := image.NewNRGBA(rect)
	fill(n8.Pix)
	r8 := image.NewRGBA(rect)
	for i := 0; i < len(r8.Pix); i += 4 {
		a := byte(r.Uint32())
		r8.Pix[i], r8.Pix[i+1], r8.Pix[i+2], r8.Pix[i+3] = byte(r.IntN(int(a)+1)), byte(r.IntN(int(a)+1)), byte(r.IntN(int(a)+1)), a
	}
	for _, img := range []image.Image{n64, r64, g16, pal, n8, r8} {
		want := image.NewRGBA(rect)
		for y := range 7 {
			for x := range 13 {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				if n, ok := img.(*image.NRGBA); ok { // colour channels kept as they are
					p := n.NRGBAAt(x, y)
					c = color.NRGBA64{R: uint16(p.R) << 8, G: uint16(p.G) << 8, B: uint16(p.B) << 8}
				}
				if _, ok := img.(*image.RGBA); ok { // 8-bit premultiplied: as NRGBAModel converts it
					n := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
					c = color.NRGBA64{R: uint16(n.R) << 8, G: uint16(n.G) << 8, B: uint16(n.B) << 8}
				}
				want.Set(x, y, color.RGBA{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8), 255})
			}
		}
		if got := ToRGB(img); !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%T: ToRGB differs from the per-pixel conversion", img)
		}
		if got := toRGBOwned(img); !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%T: toRGBOwned differs from the per-pixel conversion", img)
		}
	}
}
