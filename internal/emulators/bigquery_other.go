//go:build !unix

package emulators

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
)

var errUnsupported = errors.New("the BigQuery emulator launcher needs a Unix system")

func childProcAttr() *syscall.SysProcAttr { return nil }

func startLocked(*exec.Cmd, chan struct{}, *error) error { return errUnsupported }

func killGroup(int) error { return errUnsupported }

func lockFile(context.Context, string) (func(), error) { return nil, errUnsupported }
