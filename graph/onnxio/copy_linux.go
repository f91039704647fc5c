package onnxio

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
)

// copyFromFile writes b, a part of mapping m, to dst by copying from m's file inside the kernel
// (copy_file_range or splice), which neither faults the pages into this process nor copies
// them through it. The file is reopened through /proc/self/fd, which gives an offset of its own
// (so concurrent saves do not interfere) and still reaches the mapped file when its path has
// since been replaced. It reports false, having written nothing, when this is not possible.
func copyFromFile(dst *os.File, m *mapping, b []byte) (bool, error) {
	if m == nil || m.file == nil || !m.mmapped {
		return false, nil
	}
	defer runtime.KeepAlive(m)
	src, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(m.file.Fd())))
	if err != nil {
		return false, nil
	}
	defer src.Close()
	off := int64(addrDiff(b, m.data))
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return false, nil
	}
	n, err := dst.ReadFrom(&io.LimitedReader{R: src, N: int64(len(b))})
	if err != nil {
		return true, err
	}
	if n != int64(len(b)) {
		return true, fmt.Errorf("copied %d bytes of %d from %s", n, len(b), m.file.Name())
	}
	return true, nil
}
