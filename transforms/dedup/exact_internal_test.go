package dedup

import (
	"math/rand/v2"
	"testing"

	"github.com/railyard/railyard/schemas"
)

// TestEarliestIngestFnMerge checks the combiner outside a runner: however
// the records are split into accumulators and merged, the winner and the
// count are the same. Prism merges few accumulators on small inputs, so
// the pipeline tests alone would not cover MergeAccumulators.
func TestEarliestIngestFnMerge(t *testing.T) {
	msg := func(s string) *string { return &s }
	records := []schemas.Event{
		{EventID: "a", IngestTime: 30, MessageID: msg("m3")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m2")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m1")},
		{EventID: "a", IngestTime: 10, MessageID: nil, SourceURI: msg("gs://lake/f#L9")},
		{EventID: "a", IngestTime: 20},
	}
	want := records[3] // the earliest ingest time, and a NULL message id first
	fn := &earliestIngestFn{}
	rng := rand.New(rand.NewPCG(1, 2))

	t.Run("picks the same winner for any split and merge order", func(t *testing.T) {
		for range 200 {
			shuffled := append([]schemas.Event(nil), records...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			accs := []earliest{fn.CreateAccumulator(), fn.CreateAccumulator(), fn.CreateAccumulator()}
			for _, r := range shuffled {
				i := rng.IntN(len(accs))
				accs[i] = fn.AddInput(accs[i], r)
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			got := fn.MergeAccumulators(fn.MergeAccumulators(accs[0], accs[1]), accs[2])
			if got.Seen != int64(len(records)) {
				t.Fatalf("Seen = %d, want %d", got.Seen, len(records))
			}
			if compareRecords(got.Winner, want) != 0 {
				t.Fatalf("winner = %+v, want %+v", got.Winner, want)
			}
		}
	})
}
