package windowing

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// DefaultMaxFuture is how far ahead of its ingest time an event may be
// dated and still be aggregated, when a job's flag (--max_future) leaves
// it unset.
//
// 30 minutes tolerates any clock a device keeps roughly right, and stays
// below the streaming job's default allowed lateness plus session gap
// (32 minutes): an event it admits cannot lift a restarted job's
// recovery floor past the moment the earlier run stopped reading, so a
// backlog published while the job was down is still aggregated. It also
// bounds how long a window holds state after the ingest time of its
// latest event: 30 minutes plus the window and the allowed lateness.
const DefaultMaxFuture = 30 * time.Minute

// MaxMaxFuture is the longest --max_future a job accepts: a longer one
// would let one wrong clock keep a window's state for days.
const MaxMaxFuture = 24 * time.Hour

// TooFarAhead reports whether ev is dated more than maxFuture after its
// ingest time (the Pub/Sub publish time, or for a bare lake line its
// file's creation time): its clock is wrong, and its event time says
// nothing about when it happened. An event whose ingest time is unknown
// (0 or before the epoch) is never too far ahead.
func TooFarAhead(ev schemas.Event, maxFuture time.Duration) bool {
	if ev.IngestTime <= 0 {
		return false
	}
	return ev.EventTime-ev.IngestTime > maxFuture.Microseconds()
}

func init() {
	register.DoFn4x0[context.Context, beam.EventTime, schemas.Event, func(beam.EventTime, schemas.Event)](&leaveOutFutureFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
}

// LeaveOutFuture returns the events of a PCollection<schemas.Event> that
// the aggregations (metrics and sessions) take: all but those TooFarAhead
// with maxFuture, which it counts in future_events and leaves out. Both
// jobs run it before their aggregations, so the speed and batch layers
// leave out the same events; those events are in events_speed,
// events_batch and the lake all the same. Without it, one event dated in
// 2099 would open a window that fires in 2099, and a restarted streaming
// job would take that window as how far its earlier run got.
//
// An event recovered by a restarted streaming job
// (schemas.LayerRecovered) was counted by the run that read it: it is
// left out, not counted again. Timestamps are kept.
func LeaveOutFuture(s beam.Scope, events beam.PCollection, maxFuture time.Duration) beam.PCollection {
	s = s.Scope("windowing.LeaveOutFuture")
	if maxFuture <= 0 {
		panic("windowing.LeaveOutFuture: maxFuture must be positive")
	}
	return beam.ParDo(s, &leaveOutFutureFn{MaxFutureMicros: maxFuture.Microseconds()}, events)
}

type leaveOutFutureFn struct {
	MaxFutureMicros int64

	future beam.Counter
}

func (fn *leaveOutFutureFn) Setup() {
	fn.future = beam.NewCounter(metricnames.Namespace, metricnames.FutureEvents)
}

func (fn *leaveOutFutureFn) ProcessElement(ctx context.Context, ts beam.EventTime, ev schemas.Event, emit func(beam.EventTime, schemas.Event)) {
	if TooFarAhead(ev, time.Duration(fn.MaxFutureMicros)*time.Microsecond) {
		if ev.Layer != schemas.LayerRecovered {
			fn.future.Inc(ctx, 1)
		}
		return
	}
	emit(ts, ev)
}
