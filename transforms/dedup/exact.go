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
	register.DoFn7x1[context.Context, beam.EventTime, state.Provider, timers.Provider, string, schemas.Event, func(beam.EventTime, schemas.Event), error](&earliestIngestFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
}

// earliestIngests takes a PCollection<KV<string, schemas.Event>> keyed by
// event_id in the global window and returns a PCollection<schemas.Event>
// holding each event_id's earliest record, stamped with its event time.
func earliestIngests(s beam.Scope, keyed beam.PCollection) beam.PCollection {
	return beam.ParDo(s, &earliestIngestFn{
		Best:  state.MakeValueState[earliest]("best"),
		Flush: timers.InEventTime("flush"),
	}, keyed)
}

// earliest is what earliestIngestFn remembers of an event_id: the winning
// record so far, how many records were seen, and the earliest timestamp
// among them.
type earliest struct {
	Winner   schemas.Event
	Seen     int64
	Earliest int64 // milliseconds, the smallest element timestamp seen
}

// add folds one record, stamped ts, into the accumulator.
func (a earliest) add(ev schemas.Event, ts beam.EventTime) earliest {
	if a.Seen == 0 || before(ev, a.Winner) {
		a.Winner = ev
	}
	if a.Seen == 0 || int64(ts) < a.Earliest {
		a.Earliest = int64(ts)
	}
	a.Seen++
	return a
}

// earliestIngestFn keeps, per event_id, the record that comes first in the
// order of before, and emits it once the watermark has passed every record
// of the event: in batch, after the whole input is read.
//
// Why state and a timer rather than a CombinePerKey: the output of a
// grouping in the global window is stamped at the end of the window, and
// stamping the winner back to its event time then makes it late for the
// event-time windows downstream, which a runner may drop (Prism does: the
// metrics and sessions came out empty). Its one event-time timer is set
// at the earliest timestamp of the event's records and holds the output
// watermark there, so the winner, emitted at its own event time (never
// earlier than that), is on time. One timer family only: Prism v2.77.0
// hung on a DoFn with two (DESIGN.md).
type earliestIngestFn struct {
	Best  state.Value[earliest]
	Flush timers.EventTime
}

func (fn *earliestIngestFn) ProcessElement(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, eventID string, ev schemas.Event, _ func(beam.EventTime, schemas.Event)) error {
	acc, _, err := fn.Best.Read(sp)
	if err != nil {
		return fmt.Errorf("dedup: read state of event %q: %w", eventID, err)
	}
	first := acc.Seen == 0
	prev := acc.Earliest
	acc = acc.add(ev, ts)
	if err := fn.Best.Write(sp, acc); err != nil {
		return fmt.Errorf("dedup: write state of event %q: %w", eventID, err)
	}
	if first || acc.Earliest < prev {
		at := mtime.Time(acc.Earliest).ToTime()
		fn.Flush.Set(tp, at, timers.WithOutputTimestamp(at))
	}
	return nil
}

// OnTimer emits the winner with its event time as the element timestamp
// and counts the other records as duplicates.
func (fn *earliestIngestFn) OnTimer(ctx context.Context, sp state.Provider, _ timers.Provider, eventID string, _ timers.Context, emit func(beam.EventTime, schemas.Event)) error {
	acc, ok, err := fn.Best.Read(sp)
	if err != nil {
		return fmt.Errorf("dedup: read state of event %q: %w", eventID, err)
	}
	if !ok || acc.Seen == 0 {
		return nil
	}
	if acc.Seen > 1 {
		duplicates.Inc(ctx, acc.Seen-1)
	}
	emit(max(eventTimestamp(acc.Winner), mtime.Time(acc.Earliest)), acc.Winner)
	return fn.Best.Clear(sp)
}

// eventTimestamp is the element timestamp of an event: its event time, cut
// to the milliseconds Beam timestamps hold.
func eventTimestamp(ev schemas.Event) beam.EventTime {
	return mtime.FromTime(time.UnixMicro(ev.EventTime))
}
