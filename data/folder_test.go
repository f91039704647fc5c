package data

import (
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// makeFolder writes tiny PNG images: files maps "class/name.png" to nil.
func makeFolder(t *testing.T, root string, files ...string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for _, f := range files {
		path := filepath.Join(root, filepath.FromSlash(f))
		if strings.HasSuffix(f, "/") {
			os.MkdirAll(path, 0o755)
			continue
		}
		if IsImageFile(f) {
			writeImage(t, path, img)
		} else {
			os.MkdirAll(filepath.Dir(path), 0o755)
			os.WriteFile(path, []byte("x"), 0o644)
		}
	}
}

func TestLoadFolder(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, root, "zebra_fish/1.png", "zebra_fish/2.JPG", "zebra_fish/notes.txt", "apple/a.jpeg",
		"apple/sub/b.png", "apple/.hidden.png", ".git/x.png")
	ds, err := LoadFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Classes, []string{"apple", "zebra fish"}) || !slices.Equal(ds.Folders, []string{"apple", "zebra_fish"}) {
		t.Errorf("classes %q folders %q", ds.Classes, ds.Folders)
	}
	var got []string
	for _, it := range ds.Items {
		rel, _ := filepath.Rel(root, it.Path)
		got = append(got, filepath.ToSlash(rel)+":"+string(rune('0'+it.Label)))
	}
	want := []string{"apple/a.jpeg:0", "apple/sub/b.png:0", "zebra_fish/1.png:1", "zebra_fish/2.JPG:1"}
	if !slices.Equal(got, want) {
		t.Errorf("items %q, want %q", got, want)
	}
	if !slices.Equal(ds.CountPerClass(), []int{2, 2}) {
		t.Errorf("CountPerClass = %v", ds.CountPerClass())
	}
}

func TestLoadFolderClassesTxt(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, root, "b/1.png", "a/1.png")
	os.WriteFile(filepath.Join(root, "classes.txt"), []byte("b Bee\na\n"), 0o644)
	ds, err := LoadFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Classes, []string{"Bee", "a"}) || ds.Items[0].Label != 0 || !strings.Contains(ds.Items[0].Path, "b") {
		t.Errorf("classes %q items %v", ds.Classes, ds.Items)
	}
}

func TestLoadFolderErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		cls   string
		want  string
	}{
		{"no classes", []string{"readme.txt"}, "", "no class sub-folders"},
		{"empty class", []string{"a/1.png", "b/readme.txt"}, "", "b: class folder has no .jpg"},
		{"unlisted folder", []string{"a/1.png", "b/1.png"}, "a\n", `folder "b" is not listed`},
		{"listed without folder", []string{"a/1.png"}, "a\nc\n", `class "c" has no folder`},
	}
	for _, tt := range tests {
		root := t.TempDir()
		makeFolder(t, root, tt.files...)
		if tt.cls != "" {
			os.WriteFile(filepath.Join(root, "classes.txt"), []byte(tt.cls), 0o644)
		}
		_, err := LoadFolder(root)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadFolder(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestLoadSplitsFolders(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, root, "train/a/1.png", "train/a/2.png", "train/b/1.png", "val/b/1.png", "test/a/9.png", "test/b/9.png")
	s, err := LoadSplits(root, SplitOptions{ValFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Train.Items) != 3 || len(s.Val.Items) != 1 || len(s.Test.Items) != 2 {
		t.Fatalf("sizes %d %d %d", len(s.Train.Items), len(s.Val.Items), len(s.Test.Items))
	}
	if s.Val.Items[0].Label != 1 || !slices.Equal(s.Val.Classes, []string{"a", "b"}) {
		t.Errorf("val labels follow train: %v %q", s.Val.Items, s.Val.Classes)
	}
	makeFolder(t, root, "test/c/1.png")
	if _, err := LoadSplits(root, SplitOptions{}); err == nil || !strings.Contains(err.Error(), `folder "c" is not a class`) {
		t.Errorf("unknown test class: %v", err)
	}
}

func TestSplitFractions(t *testing.T) {
	root := t.TempDir()
	var files []string
	for _, c := range []string{"a", "b", "c"} {
		for i := range 10 {
			files = append(files, c+"/"+string(rune('a'+i))+".png")
		}
	}
	files = append(files, "d/only.png")
	makeFolder(t, root, files...)
	s, err := LoadSplits(root, SplitOptions{ValFraction: 0.2, TestFraction: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Train.CountPerClass(); !slices.Equal(got, []int{5, 5, 5, 1}) {
		t.Errorf("train counts %v", got)
	}
	if got := s.Val.CountPerClass(); !slices.Equal(got, []int{2, 2, 2, 0}) {
		t.Errorf("val counts %v", got)
	}
	if got := s.Test.CountPerClass(); !slices.Equal(got, []int{3, 3, 3, 0}) {
		t.Errorf("test counts %v", got)
	}
	seen := map[string]bool{}
	for _, d := range []*Dataset{s.Train, s.Val, s.Test} {
		for _, it := range d.Items {
			if seen[it.Path] {
				t.Errorf("%s in two splits", it.Path)
			}
			seen[it.Path] = true
		}
	}
	again, _ := LoadSplits(root, SplitOptions{ValFraction: 0.2, TestFraction: 0.3, Seed: 1})
	other, _ := LoadSplits(root, SplitOptions{ValFraction: 0.2, TestFraction: 0.3, Seed: 2})
	if !slices.Equal(again.Val.Paths(), s.Val.Paths()) {
		t.Error("same seed, different split")
	}
	if slices.Equal(other.Val.Paths(), s.Val.Paths()) {
		t.Error("different seed, same split")
	}
	if _, err := s.Train.Split(0.6, 0.5, 1); err == nil {
		t.Error("fractions summing over 1 accepted")
	}
	whole, _ := LoadSplits(root, SplitOptions{})
	if whole.Val != nil || whole.Test != nil || len(whole.Train.Items) != 31 {
		t.Errorf("no fractions: %+v", whole)
	}
}

func TestFewShot(t *testing.T) {
	root := t.TempDir()
	if err := GenerateDataset(root, 3, 6, 8, 1); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k    int
		want []int
	}{{0, []int{6, 6, 6}}, {2, []int{2, 2, 2}}, {6, []int{6, 6, 6}}, {10, []int{6, 6, 6}}}
	for _, tt := range tests {
		if got := ds.FewShot(tt.k, 5).CountPerClass(); !slices.Equal(got, tt.want) {
			t.Errorf("FewShot(%d) counts %v, want %v", tt.k, got, tt.want)
		}
	}
	a, b, c := ds.FewShot(2, 5), ds.FewShot(2, 5), ds.FewShot(2, 6)
	if !slices.Equal(a.Paths(), b.Paths()) {
		t.Error("same seed, different shots")
	}
	if slices.Equal(a.Paths(), c.Paths()) {
		t.Error("different seed, same shots")
	}
	if err := a.Verify(); err != nil {
		t.Error(err)
	}
}
