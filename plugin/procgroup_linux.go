package plugin

import "syscall"

// parentDeathSignal has the kernel kill the plugin when skipgraph dies without stopping it.
func parentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
