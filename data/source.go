package data

import (
	"fmt"
	"path/filepath"
)

// Class subsets of the base-to-new protocol.
const (
	ClassesAll  = "all"
	ClassesBase = "base"
	ClassesNew  = "new"
)

// BaseCount returns how many of c classes are base classes: ceil(c/2), as
// CoOp divides them.
func BaseCount(c int) int { return (c + 1) / 2 }

// ClassRange returns the labels [lo, hi) of a class subset of c classes:
// base is the first ceil(c/2) labels, new the rest, all (or "") every one.
func ClassRange(subset string, c int) (lo, hi int, err error) {
	switch subset {
	case "", ClassesAll:
		return 0, c, nil
	case ClassesBase:
		return 0, BaseCount(c), nil
	case ClassesNew:
		if c < 2 {
			return 0, 0, fmt.Errorf("%d class: no new classes to split off; base-to-new needs at least 2", c)
		}
		return BaseCount(c), c, nil
	}
	return 0, 0, fmt.Errorf("class subset %q: want base, new or all", subset)
}

// SubsetClasses keeps the images of the labels [lo, hi) and relabels them
// 0..hi-lo-1, with those classes' names only.
func (d *Dataset) SubsetClasses(lo, hi int) *Dataset {
	if d == nil {
		return nil
	}
	out := &Dataset{Root: d.Root, Classes: d.Classes[lo:hi:hi]}
	if len(d.Folders) == len(d.Classes) {
		out.Folders = d.Folders[lo:hi:hi]
	}
	for _, it := range d.Items {
		if it.Label >= lo && it.Label < hi {
			out.Items = append(out.Items, Item{Path: it.Path, Label: it.Label - lo})
		}
	}
	return out
}

// Classes returns the splits restricted to a class subset (see
// ClassRange), each relabelled 0..n-1 with the subset's class names.
func (s *Splits) Classes(subset string) (*Splits, error) {
	lo, hi, err := ClassRange(subset, len(s.Train.Classes))
	if err != nil {
		return nil, err
	}
	if lo == 0 && hi == len(s.Train.Classes) {
		return s, nil
	}
	return &Splits{Train: s.Train.SubsetClasses(lo, hi), Val: s.Val.SubsetClasses(lo, hi), Test: s.Test.SubsetClasses(lo, hi)}, nil
}

// Source says where a data set is and which part of it to read.
type Source struct {
	// Dir is the data set's folder: class folders (train/ [val/ test/] or
	// one folder of class folders), or the image root of SplitFile.
	Dir string
	// SplitFile is a published split file (split_zhou_<Name>.json) whose
	// paths are relative to Dir; empty reads Dir's folders.
	SplitFile string
	// Classes is the class subset: base, new, or all ("" is all).
	Classes string
	// ValFraction, TestFraction and Seed divide a folder without split
	// sub-folders (see LoadSplits).
	ValFraction, TestFraction float64
	Seed                      uint64
}

// Load reads the data set and applies the class subset.
func (src Source) Load() (*Splits, error) {
	var s *Splits
	var err error
	if src.SplitFile != "" {
		s, err = LoadSplitFile(src.SplitFile, src.Dir)
	} else {
		s, err = LoadSplits(src.Dir, SplitOptions{ValFraction: src.ValFraction, TestFraction: src.TestFraction, Seed: src.Seed})
	}
	if err != nil {
		return nil, err
	}
	sub, err := s.Classes(src.Classes)
	if err != nil {
		where := src.Dir
		if src.SplitFile != "" {
			where = src.SplitFile
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return sub, nil
}

// DrawRecord is the file a training run writes to record the images it
// drew: a split file (its train list is readable by ReadSplitFile, paths
// relative to Root) with how it was drawn.
type DrawRecord struct {
	// Root is the folder the paths are relative to.
	Root string `json:"root"`
	// SplitFile is the published split the images came from, if any.
	SplitFile string `json:"split_file,omitempty"`
	// Classes is the class subset, Shots the images per class (0: all),
	// Seed the seed of the draw.
	Classes string `json:"classes"`
	Shots   int    `json:"shots"`
	Seed    uint64 `json:"seed"`
	// ClassNames are the classes by label.
	ClassNames []string `json:"class_names"`
	// Train are the drawn images.
	Train []SplitEntry `json:"train"`
}

// NewDrawRecord describes the training images ds drawn from src.
func NewDrawRecord(src Source, ds *Dataset, shots int, seed uint64) *DrawRecord {
	root, err := filepath.Abs(src.Dir)
	if err != nil {
		root = src.Dir
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	rec := &DrawRecord{Root: root, Classes: src.Classes, Shots: shots, Seed: seed, ClassNames: ds.Classes}
	if rec.Classes == "" {
		rec.Classes = ClassesAll
	}
	if src.SplitFile != "" {
		rec.SplitFile = abs(src.SplitFile)
	}
	abs2 := &Dataset{Classes: ds.Classes}
	for _, it := range ds.Items {
		abs2.Items = append(abs2.Items, Item{Path: abs(it.Path), Label: it.Label})
	}
	rec.Train = abs2.Entries(root)
	return rec
}
