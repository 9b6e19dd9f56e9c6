// Package streamjob is Railyard's speed layer: it reads Pub/Sub, archives
// every raw message to the lake, decodes, deduplicates and aggregates
// with the same transforms as the batch job, and appends to the *_speed
// tables and dead_letter within seconds.
package streamjob

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/filter"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/serving"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/decode"
	"github.com/railyard/railyard/transforms/dedup"
	"github.com/railyard/railyard/transforms/lake"
	"github.com/railyard/railyard/transforms/metrics"
	"github.com/railyard/railyard/transforms/pubsubio"
	"github.com/railyard/railyard/transforms/sessions"
	"github.com/railyard/railyard/transforms/windowing"
)

func init() {
	register.Function1x1(isThisRun)
}

// isThisRun keeps the events of this run's records, not those recovered
// from an earlier run (already written).
func isThisRun(ev schemas.Event) bool { return ev.Layer != schemas.LayerRecovered }

// Build adds the streaming job to s. recoverFrom is the recovery floor
// (see recoveryFloor), 0 for a first run. The steps carry stable names:
// they are what Dataflow's graph shows and what --update maps.
func Build(s beam.Scope, cfg Config, recoverFrom int64) error {
	return build(s, cfg, recoverFrom, nil)
}

// Source, given to RunFrom, replaces the job's Pub/Sub read: it adds the
// records to s. It is for measuring the job without Pub/Sub (the
// streaming bench's --source=synthetic). A run from a Source
// acknowledges nothing and ends when its records end.
type Source func(s beam.Scope) beam.PCollection

// build is Build, reading from source instead of the subscription when
// source is not nil.
func build(s beam.Scope, cfg Config, recoverFrom int64, source Source) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	set := cfg.settings()
	sink := set.sink

	// 1. Read the subscription.
	var records beam.PCollection
	switch {
	case source != nil:
		records = source(s.Scope("ReadSource"))
	case set.nativeRead:
		records = pubsubio.ReadNative(s.Scope("ReadPubSub"), set.read)
	default:
		records = pubsubio.Read(s.Scope("ReadPubSub"), set.read)
	}
	// 2. Archive every message as received to the lake.
	archived := lake.Archive(s.Scope("ArchiveRaw"), lake.ArchiveConfig{Lake: cfg.Lake, Shards: cfg.ArchiveShards, Window: cfg.ArchiveWindow}, records)
	// 3. Decode and conform them to the event contract.
	events, decodeDead := decode.Events(s.Scope("DecodeEvents"), records, decode.Config{Layer: schemas.LayerSpeed})
	// 4. With the windows an earlier run left open, read back.
	if recoverFrom > 0 {
		events = withRecovered(s.Scope("RecoverOpenWindows"), cfg, recoverFrom, events)
	}
	// 5. Keep the first arrival of each event_id.
	unique, dropped := dedup.FirstArrivals(s.Scope("DedupEvents"), events, cfg.DedupHorizon)
	fresh := filter.Include(s.Scope("ThisRunOnly"), unique, isThisRun)
	// 6. Aggregate per minute and per session, in panes, what is not dated
	// too far ahead of its ingest time (the batch job's rule too).
	current := windowing.LeaveOutFuture(s.Scope("LeaveOutFutureEvents"), unique, cfg.MaxFuture)
	forMetrics := onTimeEnough(s.Scope("OnTimeForMetrics"), current, onTimeRule{
		Aggregation: metricnames.AggregationMetrics, Lateness: cfg.AllowedLateness, CloseMargin: set.closeMargin, Floor: recoverFrom,
	})
	perMinute := metrics.PerMinute(s.Scope("ComputeMetrics"), forMetrics, metrics.Config{
		Trigger: set.metricsTrigger, AllowedLateness: cfg.AllowedLateness, Panes: metrics.Accumulating,
	})
	forSessions := onTimeEnough(s.Scope("OnTimeForSessions"), current, onTimeRule{
		Aggregation: metricnames.AggregationSessions, SessionGap: cfg.SessionGap, Lateness: cfg.AllowedLateness, Floor: recoverFrom,
	})
	perSession := sessions.PerUser(s.Scope("ComputeSessions"), forSessions, sessions.Config{
		Gap: cfg.SessionGap, Trigger: set.sessionsTrigger, AllowedLateness: cfg.AllowedLateness, Panes: sessions.Accumulating,
		Groupings: set.sessionGroupings, RunningTotals: true,
	})
	// 7. Append to the speed tables.
	eventsWritten, eventsDead := bqsink.Stream(s.Scope("WriteEvents"), sink, schemas.MustLookupTable(schemas.TableEventsSpeed), fresh)
	_, metricsDead := bqsink.Stream(s.Scope("WriteMetrics"), sink, schemas.MustLookupTable(schemas.TableMetricsMinuteSpeed), perMinute)
	_, sessionsDead := bqsink.Stream(s.Scope("WriteSessions"), sink, schemas.MustLookupTable(schemas.TableSessionsSpeed), perSession)
	// 8. Dead letters, including rows the tables refused.
	dead := beam.Flatten(s.Scope("CollectDeadLetters"), decodeDead, eventsDead, metricsDead, sessionsDead)
	deadWritten, _ := bqsink.Stream(s.Scope("WriteDeadLetters"), sink, schemas.MustLookupTable(schemas.TableDeadLetter), dead)
	// 9. Acknowledge each message once it is archived and settled.
	if source == nil && !set.nativeRead {
		acks := ackIDs(s.Scope("AckDurable"), archived, []beam.PCollection{eventsWritten, deadWritten}, dropped)
		pubsubio.Ack(s.Scope("AckMessages"), set.read, acks)
	}
	return nil
}

// Run ensures the dataset, tables and views exist, finds what an earlier
// run left open, then builds and runs the job on the runner of --runner
// until it ends (StopAfterIdle) or ctx is cancelled. With cfg.DryRun it
// only builds the job and hands it to the runner.
func Run(ctx context.Context, cfg Config) (beam.PipelineResult, error) {
	return RunFrom(ctx, cfg, nil)
}

// RunFrom is Run, reading from source instead of the subscription when
// source is not nil (see Source).
func RunFrom(ctx context.Context, cfg Config, source Source) (beam.PipelineResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DryRun {
		return dryRun(ctx, cfg)
	}
	client, err := serving.Prepare(ctx, cfg.Sink(cfg.RunID))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var floor int64
	if cfg.Recover {
		if floor, err = recoveryFloor(ctx, client, cfg); err != nil {
			return nil, err
		}
	}
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, cfg, floor, source); err != nil {
		return nil, err
	}
	slog.Info("streaming job starting", "run_id", cfg.RunID, "subscription", cfg.Subscription,
		"project", cfg.Project, "dataset", cfg.Dataset, "lake", cfg.Lake, "recovery_floor_micros", floor)
	keepKeysInOneBundle(cfg.settings().profile)
	res, err := beamx.RunWithMetrics(ctx, p)
	// The job has ended (drained, failed or cancelled). What it read in
	// this process and did not acknowledge goes back to the subscription
	// now rather than when its leases run out (on a runner whose workers
	// are other processes there is nothing here to give back).
	pubsubio.ReleaseLeases(context.WithoutCancel(ctx), cfg.Subscription)
	if err != nil {
		return res, fmt.Errorf("streaming job %s: %w", cfg.RunID, err)
	}
	config.LogCounters(ctx, "streaming", cfg.RunID, res)
	return res, nil
}
