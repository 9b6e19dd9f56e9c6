// Command batch is Railyard's batch layer: it reads the raw lake in Cloud
// Storage and replaces the day partitions it covers in BigQuery's *_batch
// tables.
//
//	go run ./pipelines/batch --input=GLOB[,GLOB…] --project=P --dataset=D
//	go run ./pipelines/batch --lake=gs://BUCKET[/prefix] --from=YYYY-MM-DD --to=YYYY-MM-DD --project=P --dataset=D
//
// --runner is prism by default; dataflow, flink and universal work as in
// Beam. Emulators are reached through STORAGE_EMULATOR_HOST,
// BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST. The flags
// are batchjob.RegisterFlags'.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
)

func main() {
	buildConfig := batchjob.RegisterFlags(flag.CommandLine)
	flag.Parse()
	beam.Init() // a worker started by the runner does not return from here

	cfg := buildConfig()
	// Beam also names its Dataflow runner DataflowRunner, the name a Flex
	// Template launcher passes.
	if strings.EqualFold(*runners.Runner, "DataflowRunner") {
		*runners.Runner = "dataflow"
	}
	if err := config.ValidateRunner(*runners.Runner); err != nil {
		fail(err)
	}
	if err := cfg.Validate(); err != nil {
		fail(err)
	}
	// The run records its days as covered once its pipeline has finished,
	// so the runner must wait for the job to end.
	if boolFlag("async") || flagValue("template_location") != "" {
		fail(fmt.Errorf("--async, --execute_async and --template_location are not supported: the batch job records its days as covered only after its pipeline has finished"))
	}
	if err := defaultWorkerBinary(); err != nil {
		fail(err)
	}
	if _, err := batchjob.Run(context.Background(), cfg); err != nil {
		slog.Error("batch job failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
}

// defaultWorkerBinary names this binary as the Dataflow worker binary
// when --worker_binary is not given and it can serve: Beam Go v2.77.0
// never reuses the running binary and otherwise compiles one with the go
// command, which a container (a Cloud Run job, a Flex Template launcher)
// does not have. A static linux/amd64 build is its own worker. Tau T2A
// machine types (--worker_machine_type=t2a-…) run linux/arm64 workers:
// without a go command they need --worker_binary, an arm64 build.
func defaultWorkerBinary() error {
	if *runners.Runner != "dataflow" || flagValue("worker_binary") != "" {
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

// boolFlag reads a boolean flag that Beam may define: --async comes with
// Beam's job options.
func boolFlag(name string) bool { return flagValue(name) == "true" }

// flagValue reads a flag that Beam may define; "" when none does.
func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "batch: %v\nRun with -help for the flags.\n", err)
	os.Exit(2)
}
