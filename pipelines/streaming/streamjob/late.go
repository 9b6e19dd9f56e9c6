package streamjob

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/metrics"
)

func init() {
	register.DoFn4x0[context.Context, beam.EventTime, schemas.Event, func(beam.EventTime, schemas.Event)](&onTimeEnoughFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
}

// onTimeRule says which events an aggregation still takes (onTimeEnough).
type onTimeRule struct {
	// Aggregation names the counters: metricnames.AggregationMetrics or
	// AggregationSessions.
	Aggregation string
	// SessionGap is the gap of session windows; 0 for the metrics'
	// fixed windows of metrics.WindowSize.
	SessionGap time.Duration
	// Lateness is the allowed lateness of the aggregation's windows.
	Lateness time.Duration
	// CloseMargin, when positive, also leaves out an event whose window
	// closes within that margin of the wall clock (Config.closeMargin).
	CloseMargin time.Duration
	// Floor is a restarted job's recovery floor in microseconds, 0 for
	// none.
	Floor int64
}

// onTimeEnough returns the events an aggregation still takes. A runner
// drops, silently, an element whose window has ended more than the
// allowed lateness before the watermark. The job decides it first, and
// the same way on every runner: an event is too late when the end of its
// window plus the allowed lateness is before its ingest time (the
// watermark is never ahead of the ingest time of what is still being
// read). It is counted in too_late_<aggregation> and left out; it is in
// events_speed and in the lake all the same, and the batch layer counts
// it. Events before the rule's Floor are left out too: the windows they
// belong to were closed by an earlier run, whose final panes stand. With
// a CloseMargin (a runner with the early-timer race, see
// Config.closeMargin), an event whose window closes within it of the wall
// clock is left out as well, counted in window_closing_<aggregation>:
// this one rule depends on when the job runs, not only on the data; it is
// in events_speed, the lake and the batch layer all the same.
//
// For metrics, an event's window is its minute; for sessions, the session
// of its own (event time to event time + gap) before merging.
func onTimeEnough(s beam.Scope, events beam.PCollection, rule onTimeRule) beam.PCollection {
	return beam.ParDo(s, &onTimeEnoughFn{
		Aggregation: rule.Aggregation, SessionGapMicros: rule.SessionGap.Microseconds(), LatenessMicros: rule.Lateness.Microseconds(),
		Floor: rule.Floor, CloseMarginMicros: rule.CloseMargin.Microseconds(),
	}, events)
}

// wallClock is the wall clock of the close margin, in microseconds.
var wallClock = func() int64 { return time.Now().UnixMicro() }

type onTimeEnoughFn struct {
	Aggregation      string
	SessionGapMicros int64 // 0: fixed windows of WindowMicros
	WindowMicros     int64 // 0: metrics.WindowSize
	LatenessMicros   int64
	Floor            int64
	// CloseMarginMicros, when positive, also leaves out an event whose
	// window closes (its end plus the allowed lateness) within that
	// margin of the wall clock: see Config.closeMargin.
	CloseMarginMicros int64

	late, tooLate, beforeFloor, closing beam.Counter
}

func (fn *onTimeEnoughFn) Setup() {
	fn.late = beam.NewCounter(metricnames.Namespace, metricnames.LateEvents(fn.Aggregation))
	fn.tooLate = beam.NewCounter(metricnames.Namespace, metricnames.TooLate(fn.Aggregation))
	fn.beforeFloor = beam.NewCounter(metricnames.Namespace, metricnames.RecoveredFloorSkipped(fn.Aggregation))
	fn.closing = beam.NewCounter(metricnames.Namespace, metricnames.WindowClosing(fn.Aggregation))
}

func (fn *onTimeEnoughFn) ProcessElement(ctx context.Context, ts beam.EventTime, ev schemas.Event, emit func(beam.EventTime, schemas.Event)) {
	if ev.EventTime < fn.Floor {
		fn.beforeFloor.Inc(ctx, 1)
		return
	}
	end := fn.windowEnd(ev.EventTime)
	if ev.IngestTime > end {
		fn.late.Inc(ctx, 1)
	}
	if end+fn.LatenessMicros < ev.IngestTime {
		fn.tooLate.Inc(ctx, 1)
		return
	}
	if fn.CloseMarginMicros > 0 && end+fn.LatenessMicros < wallClock()+fn.CloseMarginMicros {
		fn.closing.Inc(ctx, 1)
		return
	}
	emit(ts, ev)
}

// windowEnd is the end of the window that holds an event at t (t ≥ 0).
func (fn *onTimeEnoughFn) windowEnd(t int64) int64 {
	if fn.SessionGapMicros > 0 {
		return t + fn.SessionGapMicros
	}
	size := fn.WindowMicros
	if size == 0 {
		size = metrics.WindowSize.Microseconds()
	}
	return t - t%size + size
}
