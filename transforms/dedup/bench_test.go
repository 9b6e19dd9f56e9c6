package dedup_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
)

func init() {
	register.DoFn2x0[[]byte, func(beam.EventTime, schemas.Event)](&syntheticEventsFn{})
}

// syntheticEventsFn emits N events over one hour of event time; every
// DuplicateEvery-th record repeats the event_id of the record before it
// with a later ingest time.
type syntheticEventsFn struct {
	N, DuplicateEvery int
}

func (fn *syntheticEventsFn) ProcessElement(_ []byte, emit func(beam.EventTime, schemas.Event)) {
	platforms := []string{"web", "ios", "android", "other"}
	for i := range fn.N {
		id := i
		if fn.DuplicateEvery > 0 && i%fn.DuplicateEvery == fn.DuplicateEvery-1 {
			id = i - 1
		}
		user, msg := fmt.Sprintf("u%d", id%5000), fmt.Sprintf("m%d", i)
		value := float64(id % 100)
		ev := schemas.Event{
			EventID:    fmt.Sprintf("e%08d", id),
			EventType:  "page.view",
			EventTime:  t0 + int64(id)*(time.Hour.Microseconds()/int64(fn.N)),
			Source:     fmt.Sprintf("app-%d", id%7),
			Platform:   &platforms[id%len(platforms)],
			UserID:     &user,
			Value:      &value,
			IngestTime: t0 + int64(i),
			MessageID:  &msg,
			Layer:      schemas.LayerBatch,
		}
		emit(mtime.FromMilliseconds(ev.EventTime/1000), ev)
	}
}

// BenchmarkByEventIDExact runs the batch dedup over 100k synthetic
// records, one in ten a duplicate, on the test runner (Prism by default),
// and the source alone for comparison. ns/record includes starting the
// job.
func BenchmarkByEventIDExact(b *testing.B) {
	const n, every = 100_000, 10
	for _, bm := range []struct {
		name  string
		dedup bool
	}{{"source only", false}, {"source and dedup", true}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				p, s := beam.NewPipelineWithRoot()
				events := beam.ParDo(s, &syntheticEventsFn{N: n, DuplicateEvery: every}, beam.Impulse(s))
				if bm.dedup {
					dedup.ByEventID(s, events, dedup.Config{})
				}
				pr, err := ptest.RunWithMetrics(p)
				if err != nil {
					b.Fatalf("pipeline failed: %v", err)
				}
				if got, want := counter(b, pr, "duplicates"), int64(n/every); bm.dedup && got != want {
					b.Fatalf("railyard/duplicates = %d, want %d", got, want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
