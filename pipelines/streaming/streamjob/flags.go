package streamjob

import (
	"context"
	"flag"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/railyard/railyard/pipelines/config"
)

// RegisterFlags defines the streaming command's own flags on fs, with the
// names, defaults (DefaultConfig) and help texts of the command-line
// contract, and returns a function that builds the run's Config from them
// once fs is parsed.
//
// Beam defines --project and --runner on flag.CommandLine; the Config
// reads them from fs where fs defines them, so on another FlagSet (a
// generator of template parameters, a test) the Config has no project and
// runs on Prism. The runner is named by config.RunnerName. RunID defaults
// to stream-<UTC time>.
func RegisterFlags(fs *flag.FlagSet) func() Config {
	defaults := DefaultConfig()
	subscription := fs.String("subscription", "", "Pub/Sub subscription to read: projects/PROJECT/subscriptions/NAME.")
	lakeRoot := fs.String("lake", "", "The lake root every raw message is archived under: gs://BUCKET[/prefix].")
	dataset := fs.String("dataset", defaults.Dataset, "BigQuery dataset to write.")
	stopAfterIdle := fs.Duration("stop_after_idle", 0, "End the job once the subscription has been idle this long and everything read is written (local runs and tests); 0 runs for ever.")
	readShards := fs.Int("read_shards", defaults.ReadShards, "How many pull loops read the subscription in parallel.")
	timestampAttribute := fs.String("timestamp_attribute", "", "Message attribute holding the event time (RFC 3339 or epoch milliseconds) that drives the watermark; empty: the publish time.")
	earlyFiring := fs.Duration("early_firing", defaults.EarlyFiring, "How often an open window fires an early pane; 0 fires only on time and late.")
	allowedLateness := fs.Duration("allowed_lateness", defaults.AllowedLateness, "How long after its end a window still takes late events (a LATE pane); later events are counted and left to the batch layer.")
	dedupHorizon := fs.Duration("dedup_horizon", defaults.DedupHorizon, "How long in event time an event_id is remembered to drop its duplicates.")
	sessionGap := fs.Duration("session_gap", defaults.SessionGap, "Inactivity that closes a user's session.")
	maxFuture := fs.Duration("max_future", defaults.MaxFuture, "How far ahead of its ingest time (publish time) an event may be dated and still be aggregated; events dated later are written, archived and counted (future_events), and left out of metrics and sessions.")
	archiveShards := fs.Int("archive_shards", defaults.ArchiveShards, "Files per lake hour folder and archive window.")
	archiveWindow := fs.Duration("archive_window", defaults.ArchiveWindow, "Window of ingest time per archive file; a message is acknowledged once its file is written.")
	ackDeadline := fs.Duration("ack_deadline", defaults.AckDeadline, "Lease of each message read, renewed while the job works on it: after a crash, unacknowledged messages come back within it (10s-10m).")
	ackExtension := fs.Duration("ack_extension", defaults.AckExtension, "How long a message read stays leased at most before Pub/Sub delivers it again: more than twice --archive_window (--ack_deadline to 1h).")
	maxOutstandingMessages := fs.Int("max_outstanding_messages", defaults.MaxOutstandingMessages, "Flow control: the most messages a worker holds read and not yet acknowledged; a backlog is read a cap at a time (1000-10000000).")
	maxOutstandingBytes := fs.Int64("max_outstanding_bytes", defaults.MaxOutstandingBytes, "Flow control: the most bytes of messages a worker holds read and not yet acknowledged (16 MiB-64 GiB).")
	recoverOpen := fs.Bool("recover", defaults.Recover, "At start, rebuild the windows and sessions an earlier run left open from events_speed.")
	runID := fs.String("run_id", "", "Name of this run in logs (default: stream-<UTC time>).")

	return func() Config {
		cfg := Config{
			Destination:        defaults.Destination,
			Runner:             config.RunnerName(config.FlagValue(fs, "runner")),
			Subscription:       *subscription,
			Lake:               *lakeRoot,
			StopAfterIdle:      *stopAfterIdle,
			ReadShards:         *readShards,
			TimestampAttribute: *timestampAttribute,
			EarlyFiring:        *earlyFiring,
			AllowedLateness:    *allowedLateness,
			DedupHorizon:       *dedupHorizon,
			SessionGap:         *sessionGap,
			MaxFuture:          *maxFuture,
			ArchiveShards:      *archiveShards,
			ArchiveWindow:      *archiveWindow,
			AckDeadline:        *ackDeadline,
			AckExtension:       *ackExtension,
			Recover:            *recoverOpen,
			RunID:              *runID,

			MaxOutstandingMessages: *maxOutstandingMessages,
			MaxOutstandingBytes:    *maxOutstandingBytes,
		}
		cfg.Project, cfg.Dataset = config.FlagValue(fs, "project"), *dataset
		cfg.DryRun = config.FlagValue(fs, "dry_run") == "true"
		if cfg.RunID == "" {
			cfg.RunID = "stream-" + time.Now().UTC().Format("20060102t150405")
		}
		return cfg
	}
}

// dryRun builds the job and hands it to the runner of --runner, as Run
// does, but calls nothing: no dataset, table or view is prepared and no
// recovery floor is read, so the job is built as a first run's (Build
// with recoverFrom 0). Dataflow's --dry_run then prints the job instead of
// submitting it. Run calls it for a valid Config with DryRun set.
func dryRun(ctx context.Context, cfg Config) (beam.PipelineResult, error) {
	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, cfg, 0); err != nil {
		return nil, err
	}
	return beamx.RunWithMetrics(ctx, p)
}
