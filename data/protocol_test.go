package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinySplitRoot writes the images that testdata/split_zhou_Tiny.json names into a temporary root.
func tinySplitRoot(t *testing.T) string {
	t.Helper()
	sf, err := ReadSplitFile(filepath.Join("testdata", "split_zhou_Tiny.json"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, list := range [][]SplitEntry{sf.Train, sf.Val, sf.Test} {
		for _, e := range list {
			makeFolder(t, root, filepath.ToSlash(e.Path))
		}
	}
	return root
}

func TestLoadSplitFile(t *testing.T) {
	root := tinySplitRoot(t)
	s, err := Source{Dir: root, SplitFile: filepath.Join("testdata", "split_zhou_Tiny.json")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"circle", "square", "red star"}; !slices.Equal(s.Train.Classes, want) {
		t.Errorf("classes %q, want %q", s.Train.Classes, want)
	}
	for _, tt := range []struct {
		name   string
		ds     *Dataset
		counts []int
		first  string
	}{
		{"train", s.Train, []int{2, 2, 2}, "circle/c1.png"},
		{"val", s.Val, []int{1, 0, 1}, "circle/c3.png"},
		{"test", s.Test, []int{1, 1, 1}, "circle/c4.png"},
	} {
		if got := tt.ds.CountPerClass(); !slices.Equal(got, tt.counts) {
			t.Errorf("%s: counts %v, want %v", tt.name, got, tt.counts)
		}
		if got := tt.ds.Items[0].Path; got != filepath.Join(root, filepath.FromSlash(tt.first)) {
			t.Errorf("%s: first path %s, want %s under %s", tt.name, got, tt.first, root)
		}
	}
	// The new half of 3 classes is the last one, relabelled 0.
	n, err := Source{Dir: root, SplitFile: filepath.Join("testdata", "split_zhou_Tiny.json"), Classes: ClassesNew}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.Test.Classes, []string{"red star"}) || !slices.Equal(n.Test.Labels(), []int{0}) ||
		filepath.Base(n.Test.Items[0].Path) != "r4.png" {
		t.Errorf("new classes of the split file: %q %v %v", n.Test.Classes, n.Test.Labels(), n.Test.Paths())
	}
}

// TestSplitFileRefused: malformed entries and paths leaving the root are refused with one line
// that names the file and the entry.
func TestSplitFileRefused(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, root, "a/1.png", "b/2.png")
	outside := t.TempDir()
	makeFolder(t, outside, "secret/x.png")
	if err := os.Symlink(filepath.Join(outside, "secret", "x.png"), filepath.Join(root, "a", "link.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	ok := `["a/1.png", 0, "a"], ["b/2.png", 1, "b"]`
	for _, tt := range []struct {
		name, body, want string
	}{
		{"not an object", `[1, 2]`, "not a split file"},
		{"not JSON", `{"train": [`, "not a split file"},
		{"train not a list", `{"train": {"a": 1}}`, `"train" is not a list`},
		{"short entry", `{"train": [` + ok + `, ["a/1.png", 0]]}`, "train[2]"},
		{"entry not a list", `{"train": [` + ok + `, "a/1.png"]}`, "want [relative image path, label, class name]"},
		{"label a string", `{"train": [["a/1.png", "0", "a"]]}`, "label must be an integer"},
		{"label negative", `{"train": [["a/1.png", -1, "a"]]}`, "label must be an integer"},
		{"label fractional", `{"train": [["a/1.png", 0.5, "a"]]}`, "label must be an integer"},
		{"empty class name", `{"train": [["a/1.png", 0, " "]]}`, "class name must be a non-empty string"},
		{"empty path", `{"train": [["", 0, "a"]]}`, "image path must be a non-empty string"},
		{"absolute path", `{"train": [["/etc/passwd", 0, "a"]]}`, "leaves the data root"},
		{"dot-dot path", `{"test": [["a/../../x.png", 0, "a"]]}`, "test[0]"},
		{"two names for a label", `{"train": [["a/1.png", 0, "a"], ["b/2.png", 0, "b"]]}`, "label 0 is named"},
		{"gap in labels", `{"train": [["a/1.png", 0, "a"], ["b/2.png", 2, "b"]]}`, "no entry has label 1"},
		{"missing image", `{"train": [` + ok + `, ["a/9.png", 0, "a"]]}`, "a/9.png"},
		{"symlinked file outside", `{"train": [` + ok + `, ["a/link.png", 0, "a"]]}`, "outside the data root"},
		{"symlinked folder outside", `{"val": [["dirlink/x.png", 0, "a"]], "train": [` + ok + `]}`, "outside the data root"},
		{"empty", `{}`, "no train, val or test entries"},
		{"no train", `{"test": [` + ok + `]}`, "no train entries"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "split_zhou_Bad.json")
			if err := os.WriteFile(path, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSplitFile(path, root)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, path, tt.want)
			}
		})
	}
}

// TestClassRange checks CoOp's base/new rule against hand-computed halves.
func TestClassRange(t *testing.T) {
	for _, tt := range []struct {
		c                            int
		baseLo, baseHi, newLo, newHi int
	}{
		{2, 0, 1, 1, 2},
		{3, 0, 2, 2, 3},
		{4, 0, 2, 2, 4},
		{5, 0, 3, 3, 5},
		{10, 0, 5, 5, 10},
		{101, 0, 51, 51, 101}, // Caltech101-sized: 51 base, 50 new
	} {
		lo, hi, err := ClassRange(ClassesBase, tt.c)
		if err != nil || lo != tt.baseLo || hi != tt.baseHi {
			t.Errorf("base of %d: [%d,%d) %v, want [%d,%d)", tt.c, lo, hi, err, tt.baseLo, tt.baseHi)
		}
		lo, hi, err = ClassRange(ClassesNew, tt.c)
		if err != nil || lo != tt.newLo || hi != tt.newHi {
			t.Errorf("new of %d: [%d,%d) %v, want [%d,%d)", tt.c, lo, hi, err, tt.newLo, tt.newHi)
		}
		if lo, hi, _ := ClassRange(ClassesAll, tt.c); lo != 0 || hi != tt.c {
			t.Errorf("all of %d: [%d,%d)", tt.c, lo, hi)
		}
	}
	if _, _, err := ClassRange("novel", 4); err == nil {
		t.Error("an unknown subset was accepted")
	}
	if _, _, err := ClassRange(ClassesNew, 1); err == nil {
		t.Error("new classes of 1 class were accepted")
	}
}

func TestSubsetClassesRelabels(t *testing.T) {
	root := t.TempDir()
	var files []string
	for _, c := range []string{"e", "a", "c", "b", "d"} { // sorted folders: a b c d e
		files = append(files, c+"/1.png", c+"/2.png")
	}
	makeFolder(t, root, files...)
	for _, tt := range []struct {
		subset  string
		classes []string
		labels  []int
	}{
		{ClassesBase, []string{"a", "b", "c"}, []int{0, 0, 1, 1, 2, 2}},
		{ClassesNew, []string{"d", "e"}, []int{0, 0, 1, 1}},
		{ClassesAll, []string{"a", "b", "c", "d", "e"}, []int{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}},
	} {
		s, err := Source{Dir: root, Classes: tt.subset}.Load()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Train.Classes, tt.classes) || !slices.Equal(s.Train.Labels(), tt.labels) {
			t.Errorf("%s: classes %q labels %v, want %q %v", tt.subset, s.Train.Classes, s.Train.Labels(), tt.classes, tt.labels)
		}
		for _, it := range s.Train.Items {
			if got := filepath.Base(filepath.Dir(it.Path)); got != tt.classes[it.Label] {
				t.Errorf("%s: %s has label %d (%s)", tt.subset, it.Path, it.Label, tt.classes[it.Label])
			}
		}
	}
}

// TestDrawRecord: the few-shot draw depends only on (seed, data), and the record lists exactly
// the images drawn, relative to the data root, readable as a split file.
func TestDrawRecord(t *testing.T) {
	root := t.TempDir()
	var files []string
	for _, c := range []string{"a", "b", "c", "d"} {
		for i := range 6 {
			files = append(files, fmt.Sprintf("train/%s/%d.png", c, i))
		}
	}
	files = append(files, "train/e/0.png") // fewer images than shots: all kept
	makeFolder(t, root, files...)
	draw := func(seed uint64) []byte {
		src := Source{Dir: root, Classes: ClassesBase}
		s, err := src.Load()
		if err != nil {
			t.Fatal(err)
		}
		ds := s.Train.FewShot(4, seed)
		b, err := json.Marshal(NewDrawRecord(src, ds, 4, seed))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := draw(7), draw(7), draw(8)
	if string(a) != string(b) {
		t.Error("the same seed drew different images")
	}
	if string(a) == string(c) {
		t.Error("seeds 7 and 8 drew the same images")
	}
	path := filepath.Join(t.TempDir(), "train_items.json")
	if err := os.WriteFile(path, a, 0o644); err != nil {
		t.Fatal(err)
	}
	var rec DrawRecord
	if err := json.Unmarshal(a, &rec); err != nil || rec.Seed != 7 || len(rec.Train) != 12 {
		t.Fatalf("record does not read back: %v", err)
	}
	sf, err := ReadSplitFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 5 classes: base is a, b, c; 4 shots each.
	if len(sf.Train) != 12 {
		t.Fatalf("%d images recorded, want 12", len(sf.Train))
	}
	re, err := LoadSplitFile(path, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Train.CountPerClass(); !slices.Equal(got, []int{4, 4, 4}) {
		t.Errorf("replayed draw counts %v", got)
	}
	for _, e := range sf.Train {
		if !strings.HasPrefix(filepath.ToSlash(e.Path), "train/"+e.Class+"/") {
			t.Errorf("entry %v: path not relative to the root or class mismatch", e)
		}
	}
	var meta map[string]any
	json.Unmarshal(a, &meta)
	if meta["seed"] != float64(7) || meta["shots"] != float64(4) || meta["classes"] != ClassesBase {
		t.Errorf("record settings %v %v %v", meta["seed"], meta["shots"], meta["classes"])
	}
	// Every class with fewer images than shots keeps all of them.
	s, _ := Source{Dir: root}.Load()
	if got := s.Train.FewShot(4, 7).CountPerClass(); !slices.Equal(got, []int{4, 4, 4, 4, 1}) {
		t.Errorf("few-shot counts %v", got)
	}
}
