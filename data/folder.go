package data

import (
	"fmt"
	"image"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// Item is one image of a data set.
type Item struct {
	// Path is the image file.
	Path string
	// Label is the class index into Dataset.Classes.
	Label int
}

// Dataset is a list of labelled images.
type Dataset struct {
	// Root is the folder the data set was read from.
	Root string
	// Classes holds the class names used in prompts, by label.
	Classes []string
	// Folders holds the class sub-folder names, by label.
	Folders []string
	// Items are the images, by class then path unless re-ordered.
	Items []Item
}

// Splits holds the parts of a data set.
type Splits struct {
	// Train is the training split.
	Train *Dataset
	// Val is the validation split, or nil.
	Val *Dataset
	// Test is the test split, or nil.
	Test *Dataset
}

// Split folder names recognised by LoadSplits.
const (
	TrainDir = "train"
	ValDir   = "val"
	TestDir  = "test"
)

// IsImageFile reports whether a file name has an image extension that
// LoadFolder reads (.jpg, .jpeg, .png, any case).
func IsImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// classDirs lists the non-hidden sub-folders of dir, sorted.
func classDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, safeio.PathCause(err))
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// images lists the image files under dir (recursively), sorted by path.
func images(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", path, safeio.PathCause(err))
		}
		if strings.HasPrefix(d.Name(), ".") && path != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && IsImageFile(d.Name()) {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

// classList decides the classes of root: classes.txt when present in one
// of the given folders, else the sorted sub-folders of root.
func classList(root string, classesIn ...string) ([]ClassEntry, string, error) {
	for _, dir := range classesIn {
		path := filepath.Join(dir, ClassesFile)
		if _, err := os.Stat(path); err == nil {
			entries, err := ReadClasses(path)
			return entries, path, err
		}
	}
	dirs, err := classDirs(root)
	if err != nil {
		return nil, "", err
	}
	if len(dirs) == 0 {
		return nil, "", fmt.Errorf("%s: no class sub-folders; put the images of each class in a folder of its own", root)
	}
	entries := make([]ClassEntry, len(dirs))
	for i, d := range dirs {
		entries[i] = ClassEntry{Folder: d, Name: DisplayName(d)}
	}
	return entries, "", nil
}

// LoadFolder reads an image folder with one sub-folder per class. Labels
// follow classes.txt when the folder has one (every listed class needs a
// folder, every folder must be listed), else the sorted folder names.
// Only .jpg, .jpeg and .png files are taken; others are ignored. Images are
// not decoded here (see Verify).
func LoadFolder(dir string) (*Dataset, error) {
	entries, classesPath, err := classList(dir, dir)
	if err != nil {
		return nil, err
	}
	return loadWithClasses(dir, entries, classesPath, true)
}

// loadWithClasses reads dir's class folders in the order of entries. With
// strict, every class needs a non-empty folder; otherwise missing folders
// are allowed (a validation split may lack a class) but empty ones are not.
func loadWithClasses(dir string, entries []ClassEntry, classesPath string, strict bool) (*Dataset, error) {
	ds := &Dataset{Root: dir}
	known := map[string]bool{}
	for label, e := range entries {
		known[e.Folder] = true
		ds.Classes = append(ds.Classes, e.Name)
		ds.Folders = append(ds.Folders, e.Folder)
		cdir := filepath.Join(dir, e.Folder)
		st, err := os.Stat(cdir)
		if err != nil || !st.IsDir() {
			if !strict {
				continue
			}
			where := dir
			if classesPath != "" {
				where = classesPath
			}
			return nil, fmt.Errorf("%s: class %q has no folder %s; add it or remove the class", where, e.Folder, cdir)
		}
		paths, err := images(cdir)
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("%s: class folder has no .jpg, .jpeg or .png images; add some or remove the folder", cdir)
		}
		for _, p := range paths {
			ds.Items = append(ds.Items, Item{Path: p, Label: label})
		}
	}
	dirs, err := classDirs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !known[d] {
			if classesPath != "" {
				return nil, fmt.Errorf("%s: folder %q is not listed in %s; add it there or remove the folder", dir, d, classesPath)
			}
			return nil, fmt.Errorf("%s: folder %q is not a class of the training split; remove it or add images of it to %s", dir, d, TrainDir)
		}
	}
	if len(ds.Items) == 0 {
		return nil, fmt.Errorf("%s: no images found; want one sub-folder of .jpg/.png images per class", dir)
	}
	return ds, nil
}

// SplitOptions says how LoadSplits divides a folder without split
// sub-folders.
type SplitOptions struct {
	// ValFraction and TestFraction are the shares of each class's images
	// put in the validation and test splits.
	ValFraction, TestFraction float64
	// Seed fixes the division.
	Seed uint64
}

// LoadSplits reads a data set. When dir has a train/ sub-folder, the splits
// are train/, val/ and test/ (the last two optional), with the classes of
// train/ (or of a classes.txt in dir or train/). Otherwise dir is one image
// folder divided per class by opt's fractions.
func LoadSplits(dir string, opt SplitOptions) (*Splits, error) {
	trainDir := filepath.Join(dir, TrainDir)
	if st, err := os.Stat(trainDir); err == nil && st.IsDir() {
		entries, classesPath, err := classList(trainDir, dir, trainDir)
		if err != nil {
			return nil, err
		}
		s := &Splits{}
		if s.Train, err = loadWithClasses(trainDir, entries, classesPath, true); err != nil {
			return nil, err
		}
		for _, part := range []struct {
			name string
			dst  **Dataset
		}{{ValDir, &s.Val}, {TestDir, &s.Test}} {
			pdir := filepath.Join(dir, part.name)
			if st, err := os.Stat(pdir); err != nil || !st.IsDir() {
				continue
			}
			if *part.dst, err = loadWithClasses(pdir, entries, "", false); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	ds, err := LoadFolder(dir)
	if err != nil {
		return nil, err
	}
	return ds.Split(opt.ValFraction, opt.TestFraction, opt.Seed)
}

// subset returns a data set with d's classes and the given items.
func (d *Dataset) subset(items []Item) *Dataset {
	return &Dataset{Root: d.Root, Classes: d.Classes, Folders: d.Folders, Items: items}
}

// byClass groups item indices by label.
func (d *Dataset) byClass() [][]int {
	out := make([][]int, len(d.Classes))
	for i, it := range d.Items {
		if it.Label >= 0 && it.Label < len(out) {
			out[it.Label] = append(out[it.Label], i)
		}
	}
	return out
}

// Split divides d per class: of each class's images (shuffled with seed),
// round(valFrac*n) go to Val, round(testFrac*n) to Test and the rest to
// Train, which keeps at least one image of every class. A zero fraction
// gives a nil split.
func (d *Dataset) Split(valFrac, testFrac float64, seed uint64) (*Splits, error) {
	if valFrac < 0 || testFrac < 0 || valFrac+testFrac >= 1 || math.IsNaN(valFrac+testFrac) {
		return nil, fmt.Errorf("split fractions val %g and test %g: want each >= 0 and their sum < 1", valFrac, testFrac)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed5))
	var train, val, test []Item
	for _, idx := range d.byClass() {
		idx = slices.Clone(idx)
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		n := len(idx)
		nv := int(math.Round(valFrac * float64(n)))
		nt := int(math.Round(testFrac * float64(n)))
		for nv+nt > n-1 && nv+nt > 0 {
			if nv >= nt {
				nv--
			} else {
				nt--
			}
		}
		for k, i := range idx {
			switch {
			case k < nv:
				val = append(val, d.Items[i])
			case k < nv+nt:
				test = append(test, d.Items[i])
			default:
				train = append(train, d.Items[i])
			}
		}
	}
	s := &Splits{Train: d.subset(sortItems(train))}
	if valFrac > 0 {
		s.Val = d.subset(sortItems(val))
	}
	if testFrac > 0 {
		s.Test = d.subset(sortItems(test))
	}
	return s, nil
}

// sortItems orders items by label then path.
func sortItems(items []Item) []Item {
	slices.SortFunc(items, func(a, b Item) int {
		if a.Label != b.Label {
			return a.Label - b.Label
		}
		return strings.Compare(a.Path, b.Path)
	})
	return items
}

// FewShot samples k images of each class without replacement, with seed.
// A class with fewer than k images keeps all of them (as Dassl does without
// repeat). k <= 0 returns d unchanged.
func (d *Dataset) FewShot(k int, seed uint64) *Dataset {
	if k <= 0 {
		return d
	}
	rng := rand.New(rand.NewPCG(seed, 0xf3e5))
	var items []Item
	for _, idx := range d.byClass() {
		idx = slices.Clone(idx)
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:min(k, len(idx))] {
			items = append(items, d.Items[i])
		}
	}
	return d.subset(sortItems(items))
}

// Labels returns the label of every item.
func (d *Dataset) Labels() []int {
	out := make([]int, len(d.Items))
	for i, it := range d.Items {
		out[i] = it.Label
	}
	return out
}

// Paths returns the path of every item.
func (d *Dataset) Paths() []string {
	out := make([]string, len(d.Items))
	for i, it := range d.Items {
		out[i] = it.Path
	}
	return out
}

// CountPerClass returns how many items each class has.
func (d *Dataset) CountPerClass() []int {
	out := make([]int, len(d.Classes))
	for _, it := range d.Items {
		if it.Label >= 0 && it.Label < len(out) {
			out[it.Label]++
		}
	}
	return out
}

// Verify decodes every image and returns the first failure, which names
// the file.
func (d *Dataset) Verify() error {
	for _, it := range d.Items {
		if err := DefaultDecodeBudget().decode(it.Path, DefaultImageSize, func(*image.RGBA) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}
