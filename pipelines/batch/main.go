// Command batch is Railyard's batch layer: it reads the raw lake in Cloud
// Storage and replaces the day partitions it covers in BigQuery's *_batch
// tables.
//
//	go run ./pipelines/batch --input=GLOB[,GLOB…] --project=P --dataset=D
//	go run ./pipelines/batch --lake=gs://BUCKET[/prefix] --from=YYYY-MM-DD --to=YYYY-MM-DD --project=P --dataset=D
//
// --runner is prism by default; dataflow, flink and universal work as in
// Beam. Emulators are reached through STORAGE_EMULATOR_HOST,
// BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
)

var (
	input      = flag.String("input", "", "Lake files to read: comma-separated globs, local or gs:// (** recurses on gs://). Alternative to --lake with --from/--to.")
	lakeRoot   = flag.String("lake", "", "The lake root, gs://BUCKET[/prefix]: with --from/--to, reads <lake>/raw/dt=DAY/ for each day.")
	from       = flag.String("from", "", "First event day to (re)compute, YYYY-MM-DD (UTC), inclusive.")
	to         = flag.String("to", "", "Last event day to (re)compute, YYYY-MM-DD (UTC), inclusive.")
	dataset    = flag.String("dataset", "railyard", "BigQuery dataset to write.")
	sessionGap = flag.Duration("session_gap", batchjob.DefaultSessionGap, "Inactivity that closes a user's session.")
	runID      = flag.String("run_id", "", "Name of this run (default: batch-<UTC time>).")
)

func main() {
	flag.Parse()
	beam.Init() // a worker started by the runner does not return from here

	cfg := batchjob.Config{
		Destination: config.Destination{Project: projectFlag(), Dataset: *dataset},
		Inputs:      config.SplitList(*input),
		Lake:        *lakeRoot, From: *from, To: *to,
		SessionGap: *sessionGap,
		RunID:      *runID,
		DryRun:     boolFlag("dry_run"),
	}
	if cfg.RunID == "" {
		cfg.RunID = "batch-" + time.Now().UTC().Format("20060102t150405")
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
	if _, err := batchjob.Run(context.Background(), cfg); err != nil {
		slog.Error("batch job failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
}

// projectFlag reads --project, which Beam's Dataflow runner also defines.
func projectFlag() string {
	if f := flag.Lookup("project"); f != nil {
		return f.Value.String()
	}
	return ""
}

// boolFlag reads a boolean flag that Beam may define: --dry_run comes
// with Beam's Dataflow runner.
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
