package onnxio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"github.com/skipgraph/skipgraph/internal/safeio"
)

// externalKey returns the value of key in a tensor's external_data, or "".
func externalKey(tp *onnxpb.TensorProto, key string) string {
	for _, e := range tp.ExternalData {
		if e.GetKey() == key {
			return e.GetValue()
		}
	}
	return ""
}

// cleanLoc returns the canonical form of an external data location.
func cleanLoc(loc string) string { return filepath.Clean(filepath.FromSlash(loc)) }

// checkLocation checks that an external data location is a relative path that stays inside
// dir, symbolic links included, and returns the resolved path.
func checkLocation(dir, loc string) (string, error) {
	p, err := safeio.Within(dir, loc)
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, os.ErrNotExist):
		return "", errors.New("names a file that does not exist")
	case p == "":
		return "", errs.Wrap(err, "%s; external data must lie in the model's folder", strings.Replace(err.Error(), "the folder", "the model's folder", 1))
	}
	return "", err
}

// external returns the bytes of a tensor stored in an external file, mapping the file on first
// use. The location must stay inside the model's folder.
func (d *decoder) external(tp *onnxpb.TensorProto) ([]byte, error) {
	name := tp.GetName()
	loc := externalKey(tp, "location")
	bad := func(format string, args ...any) error {
		return errs.Input("%s: tensor %q: external data location %q %s", d.name, name, loc, strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
	key := cleanLoc(loc)
	m := d.res.ext[key]
	if m == nil {
		path, err := checkLocation(d.res.dir, loc)
		if err != nil {
			return nil, bad("%v", err)
		}
		f, err := safeio.Open(path)
		if err != nil {
			return nil, bad("cannot be opened: %v", safeio.PathCause(err))
		}
		st, err := f.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err == nil {
			m, err = mapFile(f, st.Size()) // m owns f
		} else {
			f.Close()
		}
		if err != nil {
			return nil, bad("cannot be read: %v", err)
		}
		d.res.add(m)
		d.res.ext[key] = m
	}
	parse := func(k string) (int64, bool, error) {
		s := externalKey(tp, k)
		if s == "" {
			return 0, false, nil
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, false, bad("has a bad %s %q", k, s)
		}
		return v, true, nil
	}
	off, _, err := parse("offset")
	if err != nil {
		return nil, err
	}
	n, hasLen, err := parse("length")
	if err != nil {
		return nil, err
	}
	size := int64(len(m.data))
	if !hasLen {
		n = size - off
		if tp.DataType != nil && validDType(*tp.DataType) {
			if _, nb, err := tensorSize(graph.DType(*tp.DataType), tp.Dims); err == nil && nb <= n {
				n = nb
			}
		}
	}
	if off > size || n > size-off {
		return nil, bad("ends past the end of the file (offset %d, length %d, file size %d); copy the data file again", off, n, size)
	}
	return m.data[off : off+n], nil
}
