// Package batchjob is Railyard's batch layer: it reads the raw lake,
// decodes, deduplicates and aggregates with the shared transforms, and
// replaces the day partitions it covers in the *_batch tables. Running it
// twice over the same input leaves the same rows.
package batchjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/serving"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/decode"
	"github.com/railyard/railyard/transforms/dedup"
	"github.com/railyard/railyard/transforms/lake"
	"github.com/railyard/railyard/transforms/metrics"
	"github.com/railyard/railyard/transforms/sessions"
	"github.com/railyard/railyard/transforms/windowing"
)

// Config is one batch run, from its flags.
type Config struct {
	config.Destination
	// Inputs are file globs to read (--input). Each lake day they read a
	// file of (<root>/raw/dt=DAY/hr=HH/<file>) they must read whole; other
	// files are taken as the whole of each day they hold.
	Inputs []string
	// Lake, From and To select whole event days of the lake
	// (--lake, --from, --to); an alternative to Inputs.
	Lake, From, To string
	// SessionGap closes a session after this much inactivity.
	SessionGap time.Duration
	// MaxFuture is how far ahead of its ingest time an event may be dated
	// and still be aggregated (--max_future; 0 is DefaultMaxFuture):
	// later-dated events are written to events_batch, counted, and left
	// out of metrics and sessions, as the streaming job leaves them out
	// (windowing.LeaveOutFuture).
	MaxFuture time.Duration
	// RunID names this run in staging tables and the watermark.
	RunID string
	// DryRun only builds the job and hands it to the runner, which
	// translates it without running it (Dataflow's --dry_run prints the
	// job): Run then makes no BigQuery call, neither to prepare the
	// dataset before nor to record coverage after.
	DryRun bool
}

// DefaultSessionGap is the --session_gap default, the sessions'.
const DefaultSessionGap = sessions.DefaultGap

// DefaultMaxFuture is the --max_future default, the streaming job's.
const DefaultMaxFuture = windowing.DefaultMaxFuture

// maxFuture is MaxFuture, or its default when unset.
func (c Config) maxFuture() time.Duration {
	if c.MaxFuture == 0 {
		return DefaultMaxFuture
	}
	return c.MaxFuture
}

// Validate checks the configuration and returns every problem, joined,
// each worded for the person who typed the flags (as the streaming job's
// Config.Validate does).
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Destination.Validate(); err != nil {
		errs = append(errs, err)
	}
	byDays := c.From != "" || c.To != ""
	switch {
	case len(c.Inputs) > 0 && byDays:
		add("give either --input or --from/--to, not both")
	case len(c.Inputs) == 0 && !byDays:
		add("nothing to read: give --input=GLOB[,GLOB…] or --lake=gs://… with --from=YYYY-MM-DD --to=YYYY-MM-DD")
	case byDays && (c.From == "" || c.To == ""):
		add("--from and --to go together (both inclusive event days, YYYY-MM-DD)")
	case byDays:
		if err := config.ValidateLake(c.Lake); err != nil {
			errs = append(errs, err)
		}
		if _, err := config.Days(c.From, c.To); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SessionGap <= 0 {
		add("--session_gap=%v must be positive", c.SessionGap)
	}
	if c.MaxFuture < 0 || c.MaxFuture > windowing.MaxMaxFuture {
		add("--max_future=%v must be positive and at most %v: how far ahead of its ingest time an event may be dated and still be aggregated", c.MaxFuture, windowing.MaxMaxFuture)
	}
	if c.RunID == "" {
		add("batchjob: RunID is empty")
	} else if err := config.ValidateRunID(c.RunID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// globs returns what to read, and the days the run covers whole (those
// partitions are replaced even when no valid event remains in them).
// A --from/--to run also reads the day before and the day after: the lake
// files of a day are those of its ingest time, so an event of a covered day
// that reached the lake after midnight (or was dated a little ahead of its
// ingest) is in a neighbour day's files. Those context days are read, not
// written. (Sessions need no neighbour: they end at midnight UTC.)
func (c Config) globs() (globs, days []string) {
	if len(c.Inputs) > 0 {
		return c.Inputs, nil
	}
	days, _ = config.Days(c.From, c.To) // checked by Validate
	first, _ := time.Parse(schemas.DayLayout, days[0])
	last, _ := time.Parse(schemas.DayLayout, days[len(days)-1])
	globs = append(globs, config.DayGlob(c.Lake, first.AddDate(0, 0, -1).Format(schemas.DayLayout)))
	for _, d := range days {
		globs = append(globs, config.DayGlob(c.Lake, d))
	}
	globs = append(globs, config.DayGlob(c.Lake, last.AddDate(0, 0, 1).Format(schemas.DayLayout)))
	return globs, days
}

// Build adds the batch job to s. The steps carry stable names: they are
// what the Dataflow graph and Prism's UI show.
func Build(s beam.Scope, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	globs, days := cfg.globs()
	sink := cfg.Sink(cfg.RunID)

	// 1. Read every line of the lake files the run covers.
	records, readDead, files := lake.Read(s.Scope("ReadLake"), lake.ReadConfig{Globs: globs, AllowEmpty: len(days) > 0})
	// 2. Decode and conform them to the event contract.
	events, decodeDead := decode.Events(s.Scope("DecodeEvents"), records, decode.Config{Layer: schemas.LayerBatch})
	// 3. Keep the first of each event_id by ingest time, exactly.
	unique := dedup.ByEventID(s.Scope("DedupEvents"), events, dedup.Config{Mode: dedup.Exact})
	covered := unique
	if days != nil {
		covered = keepDays(s.Scope("KeepCoveredDays"), unique, days)
	}
	// 4. Aggregate per minute and per session what is not dated too far
	// ahead of its ingest time (the streaming job's rule too).
	current := windowing.LeaveOutFuture(s.Scope("LeaveOutFutureEvents"), unique, cfg.maxFuture())
	currentCovered := current
	if days != nil {
		currentCovered = keepDays(s.Scope("KeepCoveredCurrentDays"), current, days)
	}
	perMinute := metrics.WithoutPane(s, metrics.PerMinute(s.Scope("ComputeMetrics"), currentCovered, metrics.Config{}))
	perSession := sessions.WithoutPane(s, sessions.PerUser(s.Scope("ComputeSessions"), current, sessions.Config{Gap: cfg.SessionGap}))
	if days != nil {
		perSession = keepDays(s.Scope("KeepCoveredSessions"), perSession, days)
	}
	// 5. Replace the covered day partitions of each batch table.
	writeDead := []beam.PCollection{
		bqsink.ReplacePartitions(s.Scope("WriteEvents"), sink, schemas.MustLookupTable(schemas.TableEventsBatch), covered, days),
		bqsink.ReplacePartitions(s.Scope("WriteMetrics"), sink, schemas.MustLookupTable(schemas.TableMetricsMinuteBatch), perMinute, days),
		bqsink.ReplacePartitions(s.Scope("WriteSessions"), sink, schemas.MustLookupTable(schemas.TableSessionsBatch), perSession, days),
	}
	// 6. Dead letters of the files read replace those of earlier runs.
	dead := beam.Flatten(s, append([]beam.PCollection{readDead, decodeDead}, writeDead...)...)
	bqsink.ReplaceDeadLetters(s.Scope("WriteDeadLetters"), sink, dead, files)
	return nil
}

// Run ensures the dataset and tables exist, then builds and runs the job
// on the runner of --runner, and returns its result (metrics included).
// With cfg.DryRun it only builds the job and hands it to the runner.
// Otherwise, before any BigQuery call, it checks that --input reads every
// file of each lake day it reads a file of, and returns a
// *PartialDaysError if not.
func Run(ctx context.Context, cfg Config) (beam.PipelineResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DryRun {
		p, s := beam.NewPipelineWithRoot()
		if err := Build(s, cfg); err != nil {
			return nil, err
		}
		return beamx.RunWithMetrics(ctx, p)
	}
	// An --input that reads part of a lake day would replace that day
	// with the part: stop before anything is written.
	if err := cfg.checkWholeDays(ctx); err != nil {
		return nil, err
	}
	client, err := serving.Prepare(ctx, cfg.Sink(cfg.RunID))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, cfg); err != nil {
		return nil, err
	}
	slog.Info("batch job starting", "run_id", cfg.RunID, "project", cfg.Project, "dataset", cfg.Dataset)
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return res, fmt.Errorf("batch job %s: %w", cfg.RunID, err)
	}
	config.LogCounters(ctx, "batch", cfg.RunID, res)
	// 7. Only now, with every partition written, do the covered days count
	// as batch-complete: the views switch them to the batch rows.
	_, days := cfg.globs()
	if err := serving.RecordBatchRun(ctx, client, cfg.Dataset, cfg.RunID, days, time.Now()); err != nil {
		return res, fmt.Errorf("batch job %s wrote its partitions but could not record its coverage (rerun it): %w", cfg.RunID, err)
	}
	return res, nil
}
