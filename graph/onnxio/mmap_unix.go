//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package onnxio

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only. The mapping is shared, so pages can be dropped from
// the process and read again from the page cache. The mapping takes f over: unmap closes it.
func mapFile(f *os.File, size int64) (*mapping, error) {
	if size <= 0 {
		f.Close()
		return &mapping{}, nil
	}
	if int64(int(size)) != size {
		f.Close()
		return nil, syscall.EFBIG
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &mapping{data: b, mmapped: true, file: f}, nil
}

// unmap releases a mapping made by mapFile.
func unmap(m *mapping) {
	if m.mmapped && m.data != nil {
		_ = syscall.Munmap(m.data)
		m.data = nil
	}
	if m.file != nil {
		m.file.Close()
		m.file = nil
	}
}
