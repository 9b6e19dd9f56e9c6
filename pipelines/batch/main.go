// Command batch is Railyard's batch layer: it reads the raw lake in Cloud
// Storage and replaces the day partitions it covers in BigQuery's *_batch
// tables.
//
//	go run ./pipelines/batch --input=GLOB[,GLOB…] --project=P --dataset=D
//	go run ./pipelines/batch --lake=gs://BUCKET[/prefix] --from=YYYY-MM-DD --to=YYYY-MM-DD --project=P --dataset=D
//
// An --input that reads some files of a lake day
// (<root>/raw/dt=DAY/hr=HH/) and not others stops the command before any
// job starts, as a bad flag does: the run would replace the day with the
// files read (batchjob.PartialDaysError).
//
// --runner is prism by default; dataflow, flink and universal work as in
// Beam. Emulators are reached through STORAGE_EMULATOR_HOST,
// BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST. The flags
// are batchjob.RegisterFlags'.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

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
	*runners.Runner = config.RunnerName(*runners.Runner)
	if err := config.ValidateRunner(*runners.Runner); err != nil {
		fail(err)
	}
	if err := cfg.Validate(); err != nil {
		fail(err)
	}
	// The run records its days as covered once its pipeline has finished,
	// so the runner must wait for the job to end.
	if boolFlag("async") || config.FlagValue(flag.CommandLine, "template_location") != "" {
		fail(fmt.Errorf("--async, --execute_async and --template_location are not supported: the batch job records its days as covered only after its pipeline has finished"))
	}
	if err := config.DefaultWorkerBinary(*runners.Runner); err != nil {
		fail(err)
	}
	if _, err := batchjob.Run(context.Background(), cfg); err != nil {
		// An --input that reads part of a lake day is a usage error.
		var partial *batchjob.PartialDaysError
		if errors.As(err, &partial) {
			fail(err)
		}
		slog.Error("batch job failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
}

// boolFlag reads a boolean flag that Beam may define: --async comes with
// Beam's job options.
func boolFlag(name string) bool { return config.FlagValue(flag.CommandLine, name) == "true" }

func fail(err error) {
	fmt.Fprintf(os.Stderr, "batch: %v\nRun with -help for the flags.\n", err)
	os.Exit(2)
}
