package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeIDX writes an unsigned-byte IDX file, gzip-compressed when the name ends in .gz.
func writeIDX(t *testing.T, path string, dims []uint32, values []byte) {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(values)
	raw := b.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(raw)
		zw.Close()
		raw = z.Bytes()
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportIDX(t *testing.T) {
	dir := t.TempDir()
	// 5 images of 2x3 pixels; image i has every pixel 10*i+position.
	var px []byte
	for i := range 5 {
		for p := range 6 {
			px = append(px, byte(10*i+p))
		}
	}
	writeIDX(t, filepath.Join(dir, "img.gz"), []uint32{5, 2, 3}, px)
	writeIDX(t, filepath.Join(dir, "lab"), []uint32{5}, []byte{1, 0, 1, 2, 1})
	out := filepath.Join(dir, "set")
	counts, err := ImportIDX(IDXImport{Images: filepath.Join(dir, "img.gz"), Labels: filepath.Join(dir, "lab"),
		Classes: []string{"T-shirt/top", "Ankle boot", "Bag"}, Out: out, PerClass: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(counts, []int{1, 2, 1}) {
		t.Errorf("counts %v, want [1 2 1] (the third image of class 1 dropped)", counts)
	}
	ds, err := LoadFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"T-shirt/top", "Ankle boot", "Bag"}; !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %q, want %q", ds.Classes, want)
	}
	if want := []string{"T-shirt_top", "Ankle_boot", "Bag"}; !slices.Equal(ds.Folders, want) {
		t.Errorf("folders %q, want %q", ds.Folders, want)
	}
	img, err := LoadImage(filepath.Join(out, "Bag", "00003.png"))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 3 || b.Dy() != 2 {
		t.Fatalf("image size %v, want 3x2", b)
	}
	for p := range 6 {
		if got := img.Pix[4*p]; got != byte(30+p) {
			t.Errorf("pixel %d = %d, want %d", p, got, 30+p)
		}
	}
	if _, err := ImportIDX(IDXImport{Images: filepath.Join(dir, "img.gz"), Labels: filepath.Join(dir, "lab"), Classes: []string{"a", "b", "c"}, Out: out}); err == nil {
		t.Error("an existing folder was overwritten")
	}
}

func TestImportIDXRefused(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, filepath.Join(dir, "img"), []uint32{2, 1, 1}, []byte{1, 2})
	writeIDX(t, filepath.Join(dir, "lab"), []uint32{2}, []byte{0, 3})
	writeIDX(t, filepath.Join(dir, "lab3"), []uint32{3}, []byte{0, 1, 1})
	writeIDX(t, filepath.Join(dir, "short"), []uint32{4}, []byte{0, 1})
	os.WriteFile(filepath.Join(dir, "text"), []byte("hello world"), 0o644)
	for _, tt := range []struct {
		name, images, labels, want string
		classes                    []string
	}{
		{"label without a name", "img", "lab", "label 3 of image 1 has no class name", []string{"a", "b"}},
		{"count mismatch", "img", "lab3", "want one label for each of the 2 images", []string{"a", "b"}},
		{"truncated", "img", "short", "fewer values than its dimensions", []string{"a", "b"}},
		{"not IDX", "text", "lab", "not an IDX file", []string{"a", "b"}},
		{"labels as images", "lab", "lab", "want images x height x width", []string{"a", "b"}},
		{"same folder twice", "img", "lab", "give the folder \"a_b\" twice", []string{"a/b", "a b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ImportIDX(IDXImport{Images: filepath.Join(dir, tt.images), Labels: filepath.Join(dir, tt.labels), Classes: tt.classes, Out: filepath.Join(t.TempDir(), "o")})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
