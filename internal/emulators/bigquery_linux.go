package emulators

import "syscall"

// childProcAttr puts the emulator in its own process group, so Close can
// kill everything it started, and asks the kernel to kill it when the
// thread that started it (held for the child's life) dies with this
// process — a panicking test leaves no emulator behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
