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

// FuzzDecodeImage: no file makes the decoder panic, answer with several lines, or hold more
// than its budget: the header is read first and decoding is refused when its estimated cost
// exceeds the budget.
func FuzzDecodeImage(f *testing.F) {
	for _, name := range []string{"preprocess_20x13.png", "preprocess_61x47.png"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 17, 9)), nil)
	f.Add(append([]byte(nil), buf.Bytes()...))
	buf.Reset()
	png.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 5, 3), color.Palette{color.Gray{3}, color.RGBA{1, 2, 3, 255}}))
	f.Add(append([]byte(nil), buf.Bytes()...))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xc2, 0, 11, 8, 0xff, 0xff, 0xff, 0xff, 1, 1, 0x11, 0})
	budget := NewDecodeBudget(2 << 20) // small images only: a few megapixels take seconds under coverage instrumentation
	p := NewPreprocessor(16)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "x.img")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, p.ImageLen())
		err := budget.decode(path, p.Size, func(img *image.RGBA) error {
			p.Augment = false
			if err := p.Image(img, nil, dst); err != nil {
				return err
			}
			p.Augment = true
			return p.Image(img, rand.New(rand.NewPCG(1, 2)), dst)
		})
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error has several lines: %v", err)
		}
		if budget.Peak() > budget.Limit() {
			t.Fatalf("held %d bytes of a %d budget", budget.Peak(), budget.Limit())
		}
	})
}

// FuzzSplitFile: no split file makes the reader panic or answer with several lines, and every
// item it accepts lies inside the data root.
func FuzzSplitFile(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "split_zhou_Tiny.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"train": [["a/1.png", 0, "a"], ["../x.png", 1, "b"]]}`))
	f.Add([]byte(`{"train": [["a/1.png", 2147483647, "a"]]}`))
	f.Add([]byte(`{"train": [["a/1.png", 0, "a"], ["a/1.png", 0, "b"]]}`))
	f.Add([]byte(`{"train": [["a/line\nbreak.png", 0, "a"]]}`))
	f.Add([]byte(`{"train": 5}`))
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "a"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "1.png"), []byte("png"), 0o644)
	os.Symlink("/etc/hostname", filepath.Join(root, "a", "out.png"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "split.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSplitFile(path, root)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %v", err)
			}
			return
		}
		for _, ds := range []*Dataset{s.Train, s.Val, s.Test} {
			if ds == nil {
				continue
			}
			for _, it := range ds.Items {
				real, err := filepath.EvalSymlinks(it.Path)
				if err != nil {
					t.Fatalf("accepted %s: %v", it.Path, err)
				}
				if rel, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(rel) {
					t.Fatalf("accepted %s, outside the root", it.Path)
				}
				if it.Label < 0 || it.Label >= len(ds.Classes) {
					t.Fatalf("label %d of %d classes", it.Label, len(ds.Classes))
				}
			}
		}
	})
}
