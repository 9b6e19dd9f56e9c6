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
// BIGQUERY_STORAGE_EMULATOR_HOST.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/railyard/railyard/pipelines/streaming/streamjob"
)

var defaults = streamjob.DefaultConfig()

var (
	subscription       = flag.String("subscription", "", "Pub/Sub subscription to read: projects/PROJECT/subscriptions/NAME.")
	lakeRoot           = flag.String("lake", "", "The lake root every raw message is archived under: gs://BUCKET[/prefix].")
	dataset            = flag.String("dataset", defaults.Dataset, "BigQuery dataset to write.")
	stopAfterIdle      = flag.Duration("stop_after_idle", 0, "End the job once the subscription has been idle this long and everything read is written (local runs and tests); 0 runs for ever.")
	readShards         = flag.Int("read_shards", defaults.ReadShards, "How many pull loops read the subscription in parallel.")
	timestampAttribute = flag.String("timestamp_attribute", "", "Message attribute holding the event time (RFC 3339 or epoch milliseconds) that drives the watermark; empty: the publish time.")
	earlyFiring        = flag.Duration("early_firing", defaults.EarlyFiring, "How often an open window fires an early pane; 0 fires only on time and late.")
	allowedLateness    = flag.Duration("allowed_lateness", defaults.AllowedLateness, "How long after its end a window still takes late events (a LATE pane); later events are counted and left to the batch layer.")
	dedupHorizon       = flag.Duration("dedup_horizon", defaults.DedupHorizon, "How long in event time an event_id is remembered to drop its duplicates.")
	sessionGap         = flag.Duration("session_gap", defaults.SessionGap, "Inactivity that closes a user's session.")
	archiveShards      = flag.Int("archive_shards", defaults.ArchiveShards, "Files per lake hour folder and archive window.")
	archiveWindow      = flag.Duration("archive_window", defaults.ArchiveWindow, "Window of ingest time per archive file; a message is acknowledged once its file is written.")
	ackExtension       = flag.Duration("ack_extension", defaults.AckExtension, "How long each message read stays leased before Pub/Sub delivers it again: more than twice --archive_window; after a crash, unacknowledged messages come back after it (10s-10m).")
	recoverOpen        = flag.Bool("recover", defaults.Recover, "At start, rebuild the windows and sessions an earlier run left open from events_speed.")
	runID              = flag.String("run_id", "", "Name of this run in logs (default: stream-<UTC time>).")
)

func main() {
	flag.Parse()
	beam.Init() // a worker started by the runner does not return from here

	cfg := streamjob.Config{
		Destination:        defaults.Destination,
		Runner:             *runners.Runner,
		Subscription:       *subscription,
		Lake:               *lakeRoot,
		StopAfterIdle:      *stopAfterIdle,
		ReadShards:         *readShards,
		TimestampAttribute: *timestampAttribute,
		EarlyFiring:        *earlyFiring,
		AllowedLateness:    *allowedLateness,
		DedupHorizon:       *dedupHorizon,
		SessionGap:         *sessionGap,
		ArchiveShards:      *archiveShards,
		ArchiveWindow:      *archiveWindow,
		AckExtension:       *ackExtension,
		Recover:            *recoverOpen,
		RunID:              *runID,
	}
	cfg.Project, cfg.Dataset = projectFlag(), *dataset
	if cfg.RunID == "" {
		cfg.RunID = "stream-" + time.Now().UTC().Format("20060102t150405")
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "streaming: %v\nRun with -help for the flags.\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := streamjob.Run(ctx, cfg); err != nil {
		slog.Error("streaming job failed", "run_id", cfg.RunID, "error", err)
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
