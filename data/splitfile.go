package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
)

// SplitFilePattern is the name CoOp and Dassl give their published splits
// (split_zhou_<Name>.json).
const SplitFilePattern = "split_zhou_*.json"

// SplitEntry is one line of a published split: an image path relative to
// the data set's image folder, its label and its class name.
type SplitEntry struct {
	Path  string
	Label int
	Class string
}

// MarshalJSON writes the entry as [path, label, class name].
func (e SplitEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{e.Path, e.Label, e.Class})
}

// UnmarshalJSON reads [path, label, class name], checked as ReadSplitFile checks it.
func (e *SplitEntry) UnmarshalJSON(b []byte) error {
	v, err := parseEntry(b)
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// SplitFile is the content of a published split file:
// {"train"|"val"|"test": [[relative image path, label, class name], ...]}.
type SplitFile struct {
	Train []SplitEntry `json:"train"`
	Val   []SplitEntry `json:"val,omitempty"`
	Test  []SplitEntry `json:"test,omitempty"`
}

// ReadSplitFile reads a published split file and checks every entry: a
// list of a relative path, a label >= 0 and a non-empty class name, one
// name per label. Keys other than train, val and test are ignored. The
// error names the file, the split and the entry.
func ReadSplitFile(path string) (*SplitFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%s: not a split file (%w); want {\"train\": [[path, label, class name], ...], \"val\": ..., \"test\": ...}", path, err)
	}
	sf := &SplitFile{}
	names := map[int]string{}
	for _, part := range []struct {
		key string
		dst *[]SplitEntry
	}{{TrainDir, &sf.Train}, {ValDir, &sf.Val}, {TestDir, &sf.Test}} {
		msg, ok := top[part.key]
		if !ok {
			continue
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(msg, &rows); err != nil {
			return nil, fmt.Errorf("%s: %q is not a list of [path, label, class name] entries", path, part.key)
		}
		for i, row := range rows {
			e, err := parseEntry(row)
			if err != nil {
				return nil, fmt.Errorf("%s: %s[%d] %s: %w", path, part.key, i, clip(row), err)
			}
			if prev, ok := names[e.Label]; ok && prev != e.Class {
				return nil, fmt.Errorf("%s: %s[%d]: label %d is named %q here and %q elsewhere; one label needs one class name", path, part.key, i, e.Label, e.Class, prev)
			}
			names[e.Label] = e.Class
			*part.dst = append(*part.dst, e)
		}
	}
	if len(sf.Train) == 0 && len(sf.Val) == 0 && len(sf.Test) == 0 {
		return nil, fmt.Errorf("%s: no train, val or test entries", path)
	}
	return sf, nil
}

// clip shortens a raw JSON value for an error message.
func clip(raw json.RawMessage) string {
	s := string(bytes.Join(bytes.Fields(raw), []byte(" ")))
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// parseEntry checks one [path, label, class name] entry.
func parseEntry(raw json.RawMessage) (SplitEntry, error) {
	var cells []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&cells); err != nil || len(cells) != 3 {
		return SplitEntry{}, fmt.Errorf("want [relative image path, label, class name]")
	}
	p, ok := cells[0].(string)
	if !ok || p == "" {
		return SplitEntry{}, fmt.Errorf("the image path must be a non-empty string")
	}
	num, ok := cells[1].(json.Number)
	if !ok {
		return SplitEntry{}, fmt.Errorf("the label must be an integer >= 0")
	}
	label, err := num.Int64()
	if err != nil || label < 0 || label > math.MaxInt32 {
		return SplitEntry{}, fmt.Errorf("the label must be an integer >= 0")
	}
	name, ok := cells[2].(string)
	if !ok || strings.TrimSpace(name) == "" {
		return SplitEntry{}, fmt.Errorf("the class name must be a non-empty string")
	}
	p = filepath.FromSlash(p)
	if !filepath.IsLocal(p) {
		return SplitEntry{}, fmt.Errorf("path %q leaves the data root; paths must be relative and stay inside it", cells[0])
	}
	return SplitEntry{Path: p, Label: int(label), Class: strings.TrimSpace(name)}, nil
}

// LoadSplitFile reads a published split file whose paths are relative to
// root. Labels must run 0..C-1 over the whole file; a label's class name
// is the prompt name. Every path must name an image file inside root, also
// after following symbolic links.
func LoadSplitFile(path, root string) (*Splits, error) {
	sf, err := ReadSplitFile(path)
	if err != nil {
		return nil, err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("data root %s: %w", root, safeio.PathCause(err))
	}
	realRoot, _ = filepath.Abs(realRoot)
	names := map[int]string{}
	for _, list := range [][]SplitEntry{sf.Train, sf.Val, sf.Test} {
		for _, e := range list {
			names[e.Label] = e.Class
		}
	}
	classes := make([]string, len(names))
	for l := range classes {
		n, ok := names[l]
		if !ok {
			return nil, fmt.Errorf("%s: no entry has label %d, but labels go up to %d; labels must run 0..C-1", path, l, slices.Max(mapKeys(names)))
		}
		classes[l] = n
	}
	s := &Splits{}
	for _, part := range []struct {
		key  string
		list []SplitEntry
		dst  **Dataset
	}{{TrainDir, sf.Train, &s.Train}, {ValDir, sf.Val, &s.Val}, {TestDir, sf.Test, &s.Test}} {
		if len(part.list) == 0 {
			continue
		}
		ds := &Dataset{Root: root, Classes: classes, Folders: classes}
		for i, e := range part.list {
			full := filepath.Join(root, e.Path)
			real, err := filepath.EvalSymlinks(full)
			if err != nil {
				return nil, fmt.Errorf("%s: %s[%d]: %s: %w", path, part.key, i, errs.Path(full), safeio.PathCause(err))
			}
			real, _ = filepath.Abs(real)
			if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) {
				return nil, fmt.Errorf("%s: %s[%d]: %s leads to %s, outside the data root %s; keep the images inside it", path, part.key, i, errs.Path(e.Path), errs.Path(real), root)
			}
			ds.Items = append(ds.Items, Item{Path: full, Label: e.Label})
		}
		*part.dst = ds
	}
	if s.Train == nil {
		return nil, fmt.Errorf("%s: no train entries", path)
	}
	return s, nil
}

func mapKeys(m map[int]string) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Entries lists d's items as split entries with paths relative to root
// (slash-separated), the form a split file holds.
func (d *Dataset) Entries(root string) []SplitEntry {
	out := make([]SplitEntry, len(d.Items))
	for i, it := range d.Items {
		p := it.Path
		if rel, err := filepath.Rel(root, it.Path); err == nil {
			p = rel
		}
		out[i] = SplitEntry{Path: filepath.ToSlash(p), Label: it.Label, Class: d.Classes[it.Label]}
	}
	return out
}
