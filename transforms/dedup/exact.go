package dedup

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/internal/shard"
)

func init() {
	register.Function1x2(keyByShard)
	register.Combiner3[*recordBatch, schemas.Event, shardWinners](&earliestIngestFn{})
	register.DoFn3x0[context.Context, shardWinners, func(beam.EventTime, schemas.Event)](&emitEarliestFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
}

// exactShards is how many keys the batch dedup groups the records by.
// Each event_id belongs to one shard, and each shard's records cross the
// shuffle as a few large batches, not one element per record: the runner
// then keeps a few thousand elements and keys instead of one per record
// (Prism's bookkeeping of a key and an element took more memory and time
// than the record itself). It is below the SDK's combiner lifting cache
// (2000 keys per bundle), so that a bundle sends one batch per shard. On a runner that spreads keys over
// workers it also bounds the parallelism of the merge, and a shard's
// records are decoded together when it is merged: 100 million records are
// about 200,000 per shard.
const exactShards = 512

// shardOf is the shard of an event_id: the same on every worker.
func shardOf(eventID string) int {
	return shard.New().String(eventID).Of(exactShards)
}

// keyByShard keys an event by the shard of its event_id.
func keyByShard(ev schemas.Event) (int, schemas.Event) {
	return shardOf(ev.EventID), ev
}

// earliestIngests takes a PCollection<schemas.Event> in the global window
// and returns a PCollection<schemas.Event> holding each event_id's
// earliest record, stamped with its event time.
func earliestIngests(s beam.Scope, events beam.PCollection) beam.PCollection {
	sharded := beam.ParDo(s, keyByShard, events)
	winners := beam.CombinePerKey(s, &earliestIngestFn{}, sharded)
	return beam.ParDo(s, &emitEarliestFn{}, beam.DropKey(s, winners))
}

// shardWinners is the output of earliestIngestFn: the first record of
// each event_id of a shard, and how many records the shard had.
type shardWinners struct {
	Winners []schemas.Event
	Seen    int64
}

// earliestIngestFn is a CombineFn over the records of a shard. Its
// accumulator collects them, encoded; ExtractOutput keeps, for each
// event_id, the record that comes first in the order of before. The order
// is total, so the result does not depend on how the runner splits and
// merges the input.
type earliestIngestFn struct{}

func (*earliestIngestFn) CreateAccumulator() *recordBatch { return &recordBatch{} }

func (*earliestIngestFn) AddInput(acc *recordBatch, ev schemas.Event) *recordBatch {
	acc.add(ev)
	return acc
}

func (*earliestIngestFn) MergeAccumulators(a, b *recordBatch) *recordBatch {
	a.merge(b)
	return a
}

func (*earliestIngestFn) ExtractOutput(acc *recordBatch) (shardWinners, error) {
	var records int64
	for _, c := range acc.Chunks {
		records += c.Count
	}
	out := shardWinners{Winners: make([]schemas.Event, 0, records)}
	first := make(map[string]int, records) // event_id → index in out.Winners
	for _, c := range acc.Chunks {
		err := c.each(func(ev schemas.Event) {
			out.Seen++
			i, ok := first[ev.EventID]
			switch {
			case !ok:
				first[ev.EventID] = len(out.Winners)
				out.Winners = append(out.Winners, ev)
			case before(ev, out.Winners[i]):
				out.Winners[i] = ev
			}
		})
		if err != nil {
			return shardWinners{}, err
		}
	}
	return out, nil
}

// emitEarliestFn emits the winners of a shard, each with its event time as
// the element timestamp (after the combine in the global window the
// timestamp is the end of the window), and counts the other records as
// duplicates.
type emitEarliestFn struct{}

func (*emitEarliestFn) ProcessElement(ctx context.Context, w shardWinners, emit func(beam.EventTime, schemas.Event)) {
	if dups := w.Seen - int64(len(w.Winners)); dups > 0 {
		duplicates.Inc(ctx, dups)
	}
	for _, ev := range w.Winners {
		emit(eventTimestamp(ev), ev)
	}
}

// eventTimestamp is the element timestamp of an event: its event time, cut
// to the milliseconds Beam timestamps hold.
func eventTimestamp(ev schemas.Event) beam.EventTime {
	return mtime.FromTime(time.UnixMicro(ev.EventTime))
}
