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
	register.DoFn3x0[beam.EventTime, schemas.Event, func(beam.EventTime, string, schemas.Event)](&keyAtArrivalFn{})
	register.Emitter3[beam.EventTime, string, schemas.Event]()
	register.DoFn8x1[context.Context, beam.EventTime, state.Provider, timers.Provider, string, schemas.Event, func(beam.EventTime, schemas.Event), func(Dropped), error](&firstArrivalFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
	register.Emitter1[Dropped]()
}

// Dropped is a record FirstArrivals dropped, with what it kept instead.
type Dropped struct {
	Event schemas.Event
	// FirstMessageID is the message_id of the first arrival of the same
	// event_id, the one kept: "" when it had none or was recovered
	// (schemas.LayerRecovered, written by an earlier run). Equal to the
	// Event's own message_id, the record is a redelivery of the kept
	// message, not a second message.
	FirstMessageID string
}

// firstArrivals takes a PCollection<schemas.Event> in the global window
// and returns the PCollection<schemas.Event> of the first arrival of each
// event_id within the horizon, each stamped with its event time, and the
// PCollection<Dropped> of the later arrivals it dropped.
func firstArrivals(s beam.Scope, events beam.PCollection, horizon time.Duration) (first, dropped beam.PCollection) {
	keyed := beam.ParDo(s, &keyAtArrivalFn{}, events)
	return beam.ParDo2(s, &firstArrivalFn{
		Horizon: horizon,
		First:   state.MakeValueState[string]("first_message_id"),
		Expiry:  timers.InEventTime("expiry"),
	}, keyed)
}

// keyAtArrivalFn keys an event by its event_id and stamps it with its
// ingest time when its event time is later (a clock ahead of the
// truth, up to year 2100). firstArrivalFn's timer runs from the ingest
// time; a runner may hand a key's records and timers over in timestamp
// order (Prism does), so a redelivery stamped with a date years ahead
// would wait behind its first copy's timer and come out as a new event
// once the timer had cleared the state. firstArrivalFn stamps what it
// emits with the event time again.
type keyAtArrivalFn struct{}

func (fn *keyAtArrivalFn) ProcessElement(ts beam.EventTime, ev schemas.Event, emit func(beam.EventTime, string, schemas.Event)) {
	if ev.IngestTime > 0 {
		ts = min(ts, mtime.FromMilliseconds(ev.IngestTime/1000))
	}
	emit(ts, ev.EventID, ev)
}

// firstArrivalFn emits the first record of each event_id as soon as it
// arrives and drops, counting them, the later ones. It remembers an
// event_id (state set: seen; its value: the first record's message_id of
// this run, see Dropped) until the watermark passes the first record's
// ingest time plus Horizon: then its one event-time timer clears the
// state, and a record arriving after that is emitted again.
//
// It has exactly one timer family: Prism v2.77.0 hung on a DoFn with two
// (see runners/KNOWN_ISSUES.md).
type firstArrivalFn struct {
	Horizon time.Duration
	First   state.Value[string]
	Expiry  timers.EventTime
}

func (fn *firstArrivalFn) ProcessElement(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, eventID string, ev schemas.Event, emit func(beam.EventTime, schemas.Event), drop func(Dropped)) error {
	first, seen, err := fn.First.Read(sp)
	if err != nil {
		return fmt.Errorf("dedup: read state of event %q: %w", eventID, err)
	}
	if seen {
		if ev.Layer != schemas.LayerRecovered { // not a record of this run
			duplicates.Inc(ctx, 1)
		}
		drop(Dropped{Event: ev, FirstMessageID: first})
		return nil
	}
	first = ""
	if ev.MessageID != nil && ev.Layer != schemas.LayerRecovered {
		first = *ev.MessageID
	}
	if err := fn.First.Write(sp, first); err != nil {
		return fmt.Errorf("dedup: write state of event %q: %w", eventID, err)
	}
	// Beam runners reject an event-time timer past the end of its window
	// (Prism clamps it): a record not stamped with its event time may sit
	// at the end of the global window. The timer emits nothing, so it
	// need not hold the output watermark.
	// The horizon runs from the ingest time, whatever the event time
	// says: an event that arrives hours after it happened is remembered
	// for Horizon after it arrived, not forgotten at once, and one dated
	// years ahead by a wrong clock is forgotten Horizon after it arrived,
	// not kept until its date (keyAtArrivalFn stamps it with its ingest
	// time). Only a record without an ingest time counts from its
	// timestamp.
	start := ts
	if ev.IngestTime > 0 {
		start = mtime.FromMilliseconds(ev.IngestTime / 1000)
	}
	expiry := min(start.Add(fn.Horizon), mtime.EndOfGlobalWindowTime)
	fn.Expiry.Set(tp, expiry.ToTime(), timers.WithNoOutputTimestamp())
	emit(mtime.FromMilliseconds(ev.EventTime/1000), ev)
	return nil
}

// OnTimer forgets the event_id: its horizon has passed. It emits nothing;
// the SDK requires the timer provider and the emitter of ProcessElement in
// its signature all the same.
func (fn *firstArrivalFn) OnTimer(ctx context.Context, sp state.Provider, _ timers.Provider, eventID string, timer timers.Context, _ func(beam.EventTime, schemas.Event), _ func(Dropped)) error {
	if err := fn.First.Clear(sp); err != nil {
		return fmt.Errorf("dedup: clear state of event %q: %w", eventID, err)
	}
	return nil
}
