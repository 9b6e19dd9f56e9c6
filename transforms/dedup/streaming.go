package dedup

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
)

func init() {
	register.DoFn8x1[context.Context, beam.EventTime, state.Provider, timers.Provider, string, schemas.Event, func(schemas.Event), func(schemas.Event), error](&firstArrivalFn{})
	register.Emitter1[schemas.Event]()
}

// firstArrivals takes a PCollection<KV<string, schemas.Event>> keyed by
// event_id in the global window and returns two PCollection<schemas.Event>:
// the first arrival of each event_id within the horizon, and the later
// arrivals it dropped.
func firstArrivals(s beam.Scope, keyed beam.PCollection, horizon time.Duration) (first, dropped beam.PCollection) {
	return beam.ParDo2(s, &firstArrivalFn{
		Horizon: horizon,
		Seen:    state.MakeValueState[bool]("seen"),
		Expiry:  timers.InEventTime("expiry"),
	}, keyed)
}

// firstArrivalFn emits the first record of each event_id as soon as it
// arrives and drops, counting them, the later ones. It remembers an
// event_id until the watermark passes the first record's timestamp (its
// event time) plus Horizon: then its one event-time timer clears the
// state, and a record arriving after that is emitted again.
//
// It has exactly one timer family: Prism v2.77.0 hung on a DoFn with two
// (see DESIGN.md).
type firstArrivalFn struct {
	Horizon time.Duration
	Seen    state.Value[bool]
	Expiry  timers.EventTime
}

func (fn *firstArrivalFn) ProcessElement(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, eventID string, ev schemas.Event, emit, drop func(schemas.Event)) error {
	seen, _, err := fn.Seen.Read(sp)
	if err != nil {
		return fmt.Errorf("dedup: read state of event %q: %w", eventID, err)
	}
	if seen {
		if ev.Layer != schemas.LayerRecovered { // not a record of this run
			duplicates.Inc(ctx, 1)
		}
		drop(ev)
		return nil
	}
	if err := fn.Seen.Write(sp, true); err != nil {
		return fmt.Errorf("dedup: write state of event %q: %w", eventID, err)
	}
	// Beam runners reject an event-time timer past the end of its window
	// (Prism clamps it): a record not stamped with its event time may sit
	// at the end of the global window. The timer emits nothing, so it
	// need not hold the output watermark.
	// The horizon runs from the later of the event time and the ingest
	// time: an event that arrives hours after it happened is remembered
	// for Horizon after it arrived, not forgotten at once.
	start := max(ts, mtime.FromMilliseconds(ev.IngestTime/1000))
	expiry := min(start.Add(fn.Horizon), mtime.EndOfGlobalWindowTime)
	fn.Expiry.Set(tp, expiry.ToTime(), timers.WithNoOutputTimestamp())
	emit(ev)
	return nil
}

// OnTimer forgets the event_id: its horizon has passed. It emits nothing;
// the SDK requires the timer provider and the emitter of ProcessElement in
// its signature all the same.
func (fn *firstArrivalFn) OnTimer(ctx context.Context, sp state.Provider, _ timers.Provider, eventID string, timer timers.Context, _, _ func(schemas.Event)) error {
	if err := fn.Seen.Clear(sp); err != nil {
		return fmt.Errorf("dedup: clear state of event %q: %w", eventID, err)
	}
	return nil
}
