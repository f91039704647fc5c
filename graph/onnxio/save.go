package onnxio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/skipgraph/skipgraph/graph"
)

// SaveOptions control how Save lays out a model.
type SaveOptions struct {
	// ExternalData puts initializers of SizeThreshold bytes or more into an external data file
	// beside the model. Models larger than MaxModelSize get external data even when it is unset.
	ExternalData bool
	// ExternalFile is the data file's name, relative to the model's folder and inside it;
	// default: the model file's name with ".data" appended (model.onnx.data).
	ExternalFile string
	// SizeThreshold is the size in bytes from which an initializer goes to the external file;
	// 0 or less means 1024.
	SizeThreshold int64
}

// DefaultSizeThreshold is the SizeThreshold used when SaveOptions leaves it unset.
const DefaultSizeThreshold = 1024

// bufSize is the buffer for small pieces of output; larger pieces are written directly.
const bufSize = 1 << 20

// stripe is how much of a mapped piece is written at a time before its pages are dropped.
const stripe = 16 << 20

// writeChunks streams chunks to w. Large pieces lying in a mapped file are copied from that file
// inside the kernel when w is a file; otherwise they are written in stripes from the mapping and
// their pages dropped afterwards. Either way resident memory stays small however big the
// weights are.
func writeChunks(w io.Writer, chunks []chunk) error {
	// The chunks' resources keep the mappings their bytes lie in.
	defer runtime.KeepAlive(chunks)
	bw := bufio.NewWriterSize(w, bufSize)
	for _, c := range chunks {
		if len(c.b) < bufSize {
			if _, err := bw.Write(c.b); err != nil {
				return err
			}
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if f, ok := w.(*os.File); ok {
			if done, err := copyFromFile(f, c.m, c.b); done || err != nil {
				if err != nil {
					return err
				}
				continue
			}
		}
		for off := 0; off < len(c.b); off += stripe {
			part := c.b[off:min(off+stripe, len(c.b))]
			if _, err := w.Write(part); err != nil {
				return err
			}
			c.m.release(part)
		}
	}
	return bw.Flush()
}

// Write writes m to w as one ONNX model file, all weights inside. Unchanged weights are copied
// from the file they were read from, never decoded. A model larger than MaxModelSize is refused:
// use Save with external data.
func Write(w io.Writer, m *graph.Model) error {
	p, err := newPlan(m, false, 0, "")
	if err != nil {
		return err
	}
	if p.size > MaxModelSize {
		return fmt.Errorf("the model needs %d bytes, more than a single ONNX file can hold; save it with external data", p.size)
	}
	return writeChunks(w, p.chunks)
}

// Encode returns m as the bytes of one ONNX model file (see Write). An unmodified model read
// from a deterministically serialised file encodes to the very bytes that were read.
func Encode(m *graph.Model) ([]byte, error) {
	p, err := newPlan(m, false, 0, "")
	if err != nil {
		return nil, err
	}
	if p.size > MaxModelSize {
		return nil, fmt.Errorf("the model needs %d bytes, more than a single ONNX file can hold; save it with external data", p.size)
	}
	var buf bytes.Buffer
	buf.Grow(int(p.size))
	if err := writeChunks(&buf, p.chunks); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes m to path. The model (and its external data file, if any) is written to a
// temporary file in the same folder, synced and renamed into place, so a failed save leaves
// nothing behind and never a partial file under path. Unchanged weights are copied from the
// file they were read from without being decoded; an unmodified model read from a
// deterministically serialised file is saved as the very bytes that were read. Saving over the
// file a model was loaded from is safe: the loaded model keeps reading the old file.
func Save(m *graph.Model, path string, opts SaveOptions) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	threshold := opts.SizeThreshold
	if threshold <= 0 {
		threshold = DefaultSizeThreshold
	}
	extLoc := opts.ExternalFile
	if extLoc == "" {
		extLoc = base + ".data"
	}
	external := opts.ExternalData
	var p *plan
	var err error
	if !external {
		if p, err = newPlan(m, false, 0, ""); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		external = p.size > MaxModelSize
	}
	var extPath string
	if external {
		if extPath, err = checkSaveLocation(dir, extLoc); err != nil {
			return fmt.Errorf("%s: external data file %q %w", path, extLoc, err)
		}
		if filepath.Clean(extPath) == filepath.Clean(filepath.Join(dir, base)) {
			return fmt.Errorf("%s: the external data file cannot be the model file itself", path)
		}
		if p, err = newPlan(m, true, threshold, filepathToLoc(extLoc)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if p.size > MaxModelSize {
			return fmt.Errorf("%s: the model needs %d bytes even with its weights outside, more than an ONNX file can hold", path, p.size)
		}
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	write := func(final string, chunks []chunk) (string, error) {
		f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp*")
		if err != nil {
			return "", err
		}
		temps = append(temps, f.Name())
		err = writeChunks(f, chunks)
		if err == nil {
			err = f.Chmod(0o644)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return f.Name(), err
	}
	var extTemp string
	if external && len(p.ext) > 0 {
		if extTemp, err = write(extPath, p.ext); err != nil {
			return fmt.Errorf("%s: writing external data: %w", path, err)
		}
	}
	tmp, err := write(path, p.chunks)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if extTemp != "" {
		if err := os.Rename(extTemp, extPath); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	temps = nil
	syncDir(dir)
	return nil
}

// filepathToLoc writes a location with forward slashes, as ONNX files do.
func filepathToLoc(loc string) string {
	return filepath.ToSlash(filepath.Clean(filepath.FromSlash(loc)))
}

// checkSaveLocation checks that an external data file to be written stays inside dir and
// returns its path.
func checkSaveLocation(dir, loc string) (string, error) {
	local := filepath.FromSlash(loc)
	if filepath.IsAbs(local) || filepath.VolumeName(local) != "" {
		return "", errors.New("is an absolute path; give a name relative to the model's folder")
	}
	if !filepath.IsLocal(local) {
		return "", errors.New("leaves the model's folder; give a name inside it")
	}
	full := filepath.Join(dir, local)
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	rparent, err := filepath.EvalSymlinks(filepath.Dir(full))
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(rdir, rparent); err != nil || (rel != "." && !filepath.IsLocal(rel)) {
		return "", errors.New("leads out of the model's folder through a symbolic link")
	}
	return full, nil
}

// syncDir flushes a folder's entries (the renames) to disk, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
