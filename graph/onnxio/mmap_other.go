//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package onnxio

import (
	"io"
	"os"
)

// mapFile reads size bytes of f into memory, where memory mapping is not available, and
// closes f.
func mapFile(f *os.File, size int64) (*mapping, error) {
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), b); err != nil {
		return nil, err
	}
	return &mapping{data: b}, nil
}

// unmap drops the reference to the data; the garbage collector frees it.
func unmap(m *mapping) { m.data = nil }
