package streamjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/metrics"
)

// A streaming job keeps its windows and sessions in the runner's state,
// and a new run starts with none. Without help, a window an earlier run
// left open would start again from the events that arrive now, and its
// next pane would replace the earlier run's with a smaller count. So a
// run starts by reading back, from events_speed, the events of every
// window and session the earlier run may have left open, and aggregates
// them again with what arrives (dedup removes a message that is both read
// back and delivered again). Everything before that recovery floor
// belongs to windows the earlier run closed: their final panes stand, and
// the new run leaves those events out of its aggregations.
//
// The earlier run's watermark is not stored anywhere, but a window fires
// on time when the watermark passes its end: the latest end of a window
// with an on-time or late pane is a lower bound of it. The floor is that,
// minus the allowed lateness, one window and one session gap. A session
// that had already run longer than that is split in two.
//
// The watermark follows publish times, which never run ahead of the wall
// clock, but a run that stops fires every window it holds on time, also
// one an event dated ahead of its ingest time opened (up to --max_future
// ahead; an earlier version of the job aggregated events dated up to year
// 2100). Such a window says nothing about how far the earlier run got,
// and taken as its watermark it would leave every current event out of
// the new run's aggregations. So windows that end more than one window
// ahead of the wall clock are ignored, and the floor is never ahead of
// it. (The window of the current minute ends up to one window ahead: a
// run stopped and started again within a minute has fired it on time,
// and must still recover it.)

// recoveryFloor returns the recovery floor in microseconds, or 0 when
// there is nothing to recover (no earlier run wrote a final pane).
func recoveryFloor(ctx context.Context, client *bigquery.Client, cfg Config) (int64, error) {
	now := time.Now()
	q := client.Query(fmt.Sprintf("SELECT MAX(window_end) AS closed FROM `%s.%s.%s` WHERE pane_timing IN ('ON_TIME', 'LATE') AND window_end <= @latest",
		cfg.Project, cfg.Dataset, schemas.TableMetricsMinuteSpeed))
	q.Parameters = []bigquery.QueryParameter{{Name: "latest", Value: now.Add(metrics.WindowSize).UTC()}}
	it, err := q.Read(ctx)
	if err != nil {
		return 0, fmt.Errorf("read how far the earlier run got: %w", err)
	}
	var row struct {
		Closed bigquery.NullTimestamp `bigquery:"closed"`
	}
	if err := it.Next(&row); err != nil && !errors.Is(err, iterator.Done) {
		return 0, fmt.Errorf("read how far the earlier run got: %w", err)
	}
	if !row.Closed.Valid {
		return 0, nil
	}
	return floorOf(row.Closed.Timestamp, now, cfg), nil
}

// floorOf is the recovery floor, in microseconds, when the latest window
// an earlier run closed ends at closed and the wall clock reads now:
// closed, but never ahead of now, minus the allowed lateness, one window
// and one session gap.
func floorOf(closed, now time.Time, cfg Config) int64 {
	if closed.After(now) {
		closed = now
	}
	return closed.Add(-cfg.AllowedLateness - metrics.WindowSize - cfg.SessionGap).UnixMicro()
}

func init() {
	register.DoFn3x1[context.Context, []byte, func(beam.EventTime, schemas.Event), error](&recoverFn{})
}

// withRecovered returns events and, merged in, the events of events_speed
// from floor on, one per event_id (the first by ingest time), each
// stamped with its event time and marked LayerRecovered.
func withRecovered(s beam.Scope, cfg Config, floor int64, events beam.PCollection) beam.PCollection {
	recovered := beam.ParDo(s, &recoverFn{Project: cfg.Project, Dataset: cfg.Dataset, Floor: floor}, beam.Impulse(s))
	return beam.Flatten(s, events, recovered)
}

type recoverFn struct {
	Project, Dataset string
	Floor            int64

	recovered beam.Counter
}

func (fn *recoverFn) Setup() {
	fn.recovered = beam.NewCounter(metricnames.Namespace, metricnames.RecoveredEvents)
}

// recoveredRow holds the columns the aggregations read.
type recoveredRow struct {
	EventID    string               `bigquery:"event_id"`
	EventType  string               `bigquery:"event_type"`
	EventTime  time.Time            `bigquery:"event_time"`
	Source     string               `bigquery:"source"`
	Platform   bigquery.NullString  `bigquery:"platform"`
	UserID     bigquery.NullString  `bigquery:"user_id"`
	Country    bigquery.NullString  `bigquery:"country"`
	Value      bigquery.NullFloat64 `bigquery:"value"`
	IngestTime time.Time            `bigquery:"ingest_time"`
	MessageID  bigquery.NullString  `bigquery:"message_id"`
}

func (fn *recoverFn) ProcessElement(ctx context.Context, _ []byte, emit func(beam.EventTime, schemas.Event)) error {
	client, err := bqsink.NewClient(ctx, fn.Project)
	if err != nil {
		return err
	}
	defer client.Close()
	// A failed read is tried again from the start, a few times: what was
	// emitted before it comes again, and dedup drops it (recovered events
	// are never counted as duplicates).
	delay := time.Second
	for attempt := 1; ; attempt++ {
		n, err := fn.read(ctx, client, emit)
		fn.recovered.Inc(ctx, n)
		if err == nil {
			return nil
		}
		if attempt == recoverAttempts || ctx.Err() != nil {
			return fmt.Errorf("recover the open windows from %s (attempt %d): %w", schemas.TableEventsSpeed, attempt, err)
		}
		slog.WarnContext(ctx, "recovering the open windows failed; trying again", "attempt", attempt, "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		delay *= 2
	}
}

// recoverAttempts bounds the tries of the recovery read.
const recoverAttempts = 5

// read runs the recovery query and emits its events; it returns how many.
func (fn *recoverFn) read(ctx context.Context, client *bigquery.Client, emit func(beam.EventTime, schemas.Event)) (int64, error) {
	q := client.Query(fmt.Sprintf(`SELECT event_id, event_type, event_time, source, platform, user_id, country, value, ingest_time, message_id
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingest_time, message_id) AS arrival
  FROM `+"`%s.%s.%s`"+`
  WHERE event_time >= @floor
)
WHERE arrival = 1`, fn.Project, fn.Dataset, schemas.TableEventsSpeed))
	q.Parameters = []bigquery.QueryParameter{{Name: "floor", Value: time.UnixMicro(fn.Floor).UTC()}}
	it, err := q.Read(ctx)
	if err != nil {
		return 0, err
	}
	n := int64(0)
	for {
		var r recoveredRow
		err := it.Next(&r)
		if errors.Is(err, iterator.Done) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		ev := r.event()
		emit(mtime.FromMilliseconds(ev.EventTime/1000), ev)
		n++
	}
}

func (r recoveredRow) event() schemas.Event {
	return schemas.Event{
		EventID: r.EventID, EventType: r.EventType, EventTime: r.EventTime.UnixMicro(), Source: r.Source,
		Platform: nullString(r.Platform), UserID: nullString(r.UserID), Country: nullString(r.Country),
		Value:      nullFloat(r.Value),
		IngestTime: r.IngestTime.UnixMicro(), Layer: schemas.LayerRecovered, MessageID: nullString(r.MessageID),
	}
}

func nullString(v bigquery.NullString) *string {
	if !v.Valid {
		return nil
	}
	return &v.StringVal
}

func nullFloat(v bigquery.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}
