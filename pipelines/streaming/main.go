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
// nothing is called (streamjob.Config.DryRun), as in the batch command.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/pipelines/config"
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
	if err := config.DefaultWorkerBinary(cfg.Runner); err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := streamjob.Run(ctx, cfg); err != nil {
		slog.Error("streaming job failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "streaming: %v\nRun with -help for the flags.\n", err)
	os.Exit(2)
}
