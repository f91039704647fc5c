package onnxio

import "syscall"

// dropPages tells the kernel that the pages wholly inside b (a part of a shared, read-only file
// mapping) are not needed for now. They leave the process's resident set and are read back from
// the page cache on the next access, so the data stays valid.
func dropPages(b []byte) {
	const page = 4096
	if len(b) < 2*page {
		return
	}
	start := 0
	if off := addrOf(b) % page; off != 0 {
		start = int(page - off)
	}
	end := start + (len(b)-start)/page*page
	if end-start >= page {
		_ = syscall.Madvise(b[start:end], syscall.MADV_DONTNEED)
	}
}
