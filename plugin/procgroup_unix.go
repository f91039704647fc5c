//go:build unix

package plugin

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so that the plugin and every process it
// starts can be stopped together (a child of a shell-script plugin may hold its stdout).
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	parentDeathSignal(cmd.SysProcAttr)
}

// killGroup kills the process group that ownGroup gave cmd. It does nothing before the start.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
