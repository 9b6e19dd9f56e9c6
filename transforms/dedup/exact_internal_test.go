package dedup

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
)

// TestEarliestAdd checks the accumulator outside a runner: whatever
// order the records arrive in, the winner and the count are the same.
func TestEarliestAdd(t *testing.T) {
	msg := func(s string) *string { return &s }
	records := []schemas.Event{
		{EventID: "a", IngestTime: 30, MessageID: msg("m3")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m2")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m1")},
		{EventID: "a", IngestTime: 10, MessageID: nil, SourceURI: msg("gs://lake/f#L9")},
		{EventID: "a", IngestTime: 20},
	}
	want := records[3] // the earliest ingest time, and a NULL message id first
	rng := rand.New(rand.NewPCG(1, 2))

	t.Run("picks the same winner in any arrival order", func(t *testing.T) {
		for range 200 {
			shuffled := append([]schemas.Event(nil), records...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			var got earliest
			for _, r := range shuffled {
				got = got.add(r, beam.EventTime(r.IngestTime))
			}
			if got.Seen != int64(len(records)) {
				t.Fatalf("Seen = %d, want %d", got.Seen, len(records))
			}
			if got.Earliest != 10 {
				t.Fatalf("Earliest = %d, want the smallest timestamp, 10", got.Earliest)
			}
			if compareRecords(got.Winner, want) != 0 {
				t.Fatalf("winner = %+v, want %+v", got.Winner, want)
			}
		}
	})
}
