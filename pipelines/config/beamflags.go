package config

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
)

// DefaultWorkerBinary names this binary as the Dataflow worker binary
// when --worker_binary is not given and it can serve: Beam Go v2.77.0
// never reuses the running binary and otherwise compiles one with the go
// command, which a container (a Cloud Run job, a Flex Template launcher) does not have. A
// static linux/amd64 build is its own worker. Tau T2A machine types
// (--worker_machine_type=t2a-…) run linux/arm64 workers: without a go
// command they need --worker_binary, an arm64 build.
func DefaultWorkerBinary(runner string) error {
	if runner != "dataflow" || FlagValue(flag.CommandLine, "worker_binary") != "" {
		return nil
	}
	machine := FlagValue(flag.CommandLine, "worker_machine_type")
	if machine == "" {
		machine = FlagValue(flag.CommandLine, "machine_type")
	}
	if strings.HasPrefix(machine, "t2a") {
		if _, err := exec.LookPath("go"); err != nil {
			return fmt.Errorf("--worker_machine_type=%s runs linux/arm64 workers and there is no go command to build one: give --worker_binary, a linux/arm64 build of this command", machine)
		}
		return nil // Beam cross-compiles for arm64
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" || !staticBuild() {
		return nil // Beam cross-compiles for linux/amd64
	}
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	return flag.Set("worker_binary", self)
}

// staticBuild reports whether this binary was built without cgo, so that
// it runs in any Linux container.
func staticBuild() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "0"
		}
	}
	return false
}

// FlagValue reads the named flag of fs, a flag that Beam may define; ""
// when none does. Beam defines its options on flag.CommandLine.
func FlagValue(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}
