//go:build !linux

package onnxio

// dropPages does nothing where the kernel is not asked to drop mapped pages.
func dropPages(b []byte) {}
