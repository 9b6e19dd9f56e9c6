package dedup

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
)

func init() {
	register.Combiner2[earliest, schemas.Event](&earliestIngestFn{})
	register.DoFn3x0[context.Context, earliest, func(beam.EventTime, schemas.Event)](&emitEarliestFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
}

// earliestIngests takes a PCollection<KV<string, schemas.Event>> keyed by
// event_id in the global window and returns a PCollection<schemas.Event>
// holding each event_id's earliest record, stamped with its event time.
func earliestIngests(s beam.Scope, keyed beam.PCollection) beam.PCollection {
	firsts := beam.CombinePerKey(s, &earliestIngestFn{}, keyed)
	values := beam.DropKey(s, firsts)
	return beam.ParDo(s, &emitEarliestFn{}, values)
}

// earliest is the accumulator of earliestIngestFn: the winning record so
// far and how many records of the event were seen.
type earliest struct {
	Winner schemas.Event
	Seen   int64
}

// earliestIngestFn is a CombineFn that keeps the record that comes first
// in the order of before. The order is total, so the result does not
// depend on how the runner splits and merges the input; combiner lifting
// means only one record per event_id and bundle crosses the shuffle.
type earliestIngestFn struct{}

func (*earliestIngestFn) CreateAccumulator() earliest { return earliest{} }

func (*earliestIngestFn) AddInput(acc earliest, ev schemas.Event) earliest {
	if acc.Seen == 0 || before(ev, acc.Winner) {
		acc.Winner = ev
	}
	acc.Seen++
	return acc
}

func (*earliestIngestFn) MergeAccumulators(a, b earliest) earliest {
	switch {
	case b.Seen == 0:
		return a
	case a.Seen == 0:
		return b
	}
	if before(b.Winner, a.Winner) {
		a.Winner = b.Winner
	}
	a.Seen += b.Seen
	return a
}

// emitEarliestFn emits the winner of each event_id with its event time as
// the element timestamp (after the combine in the global window the
// timestamp is the end of the window), and counts the other records as
// duplicates.
type emitEarliestFn struct{}

func (*emitEarliestFn) ProcessElement(ctx context.Context, acc earliest, emit func(beam.EventTime, schemas.Event)) {
	if acc.Seen > 1 {
		duplicates.Inc(ctx, acc.Seen-1)
	}
	emit(eventTimestamp(acc.Winner), acc.Winner)
}

// eventTimestamp is the element timestamp of an event: its event time, cut
// to the milliseconds Beam timestamps hold.
func eventTimestamp(ev schemas.Event) beam.EventTime {
	return mtime.FromTime(time.UnixMicro(ev.EventTime))
}
