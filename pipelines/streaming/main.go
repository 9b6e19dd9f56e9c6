// Command streaming is Railyard's speed layer: it reads a Pub/Sub
// subscription, archives every raw message to the lake, and appends
// events, per-minute metrics, sessions and dead letters to BigQuery's
// *_speed tables and dead_letter within seconds.
//
//	go run ./pipelines/streaming --subscription=projects/P/subscriptions/S --project=P --dataset=D --lake=gs://BUCKET[/prefix]
//
// --stop_after_idle=DURATION ends the job once the subscription has been
// idle that long and everything read is written (local runs and tests);
// 0, the default, runs for ever. --runner is prism by default; dataflow,
// flink and universal work as in Beam. Emulators are reached through
// PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST, BIGQUERY_EMULATOR_HOST and
// BIGQUERY_STORAGE_EMULATOR_HOST. The flags are streamjob.RegisterFlags';
// with Dataflow's --dry_run the job is translated and printed, and
// nothing is called (streamjob.DryRun).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/pipelines/streaming/streamjob"
)

func main() {
	buildConfig := streamjob.RegisterFlags(flag.CommandLine)
	flag.Parse()
	beam.Init() // a worker started by the runner does not return from here

	cfg := buildConfig()
	if err := cfg.Validate(); err != nil {
		fail(err)
	}
	if err := defaultWorkerBinary(cfg.Runner); err != nil {
		fail(err)
	}
	run := streamjob.Run
	if flagValue("dry_run") == "true" {
		run = streamjob.DryRun
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg); err != nil {
		slog.Error("streaming job failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
}

// defaultWorkerBinary names this binary as the Dataflow worker binary
// when --worker_binary is not given and it can serve: Beam Go v2.77.0
// never reuses the running binary and otherwise compiles one with the go
// command, which a container (a Flex Template launcher) does not have. A
// static linux/amd64 build is its own worker. Tau T2A machine types
// (--worker_machine_type=t2a-…) run linux/arm64 workers: without a go
// command they need --worker_binary, an arm64 build.
func defaultWorkerBinary(runner string) error {
	if runner != "dataflow" || flagValue("worker_binary") != "" {
		return nil
	}
	machine := flagValue("worker_machine_type")
	if machine == "" {
		machine = flagValue("machine_type")
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

// flagValue reads a flag that Beam may define; "" when none does.
func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "streaming: %v\nRun with -help for the flags.\n", err)
	os.Exit(2)
}
