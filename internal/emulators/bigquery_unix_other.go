//go:build unix && !linux

package emulators

import "syscall"

// childProcAttr puts the emulator in its own process group, so Close can
// kill everything it started. Outside Linux there is no parent-death
// signal: a process killed before Close leaves the emulator running.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
