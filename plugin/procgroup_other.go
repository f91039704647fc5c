//go:build unix && !linux

package plugin

import "syscall"

func parentDeathSignal(*syscall.SysProcAttr) {}
