package onnxio

import "unsafe"

// addrOf returns the address of b's first byte.
func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// addrDiff returns the offset of sub, a subslice, from the start of base.
func addrDiff(sub, base []byte) uintptr { return addrOf(sub) - addrOf(base) }
