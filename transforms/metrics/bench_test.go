package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/metrics"
)

func init() {
	register.DoFn2x0[[]byte, func(beam.EventTime, schemas.Event)](&syntheticEventsFn{})
}

// syntheticEventsFn emits N events spread over one hour of event time,
// over 7 sources, 4 platforms, 3 countries (one NULL) and 5000 users.
type syntheticEventsFn struct {
	N int
}

func (fn *syntheticEventsFn) ProcessElement(_ []byte, emit func(beam.EventTime, schemas.Event)) {
	platforms := []string{"web", "ios", "android", "other"}
	countries := []*string{ptr("DE"), ptr("US"), nil}
	for i := range fn.N {
		user, value := fmt.Sprintf("u%d", i%5000), float64(i%100)
		ev := schemas.Event{
			EventID:    fmt.Sprintf("e%08d", i),
			EventType:  "page.view",
			EventTime:  t0.UnixMicro() + int64(i)*(time.Hour.Microseconds()/int64(fn.N)),
			Source:     fmt.Sprintf("app-%d", i%7),
			Platform:   &platforms[i%len(platforms)],
			Country:    countries[i%len(countries)],
			UserID:     &user,
			Value:      &value,
			IngestTime: t0.UnixMicro() + int64(i),
			Layer:      schemas.LayerBatch,
		}
		emit(mtime.FromMilliseconds(ev.EventTime/1000), ev)
	}
}

// BenchmarkPerMinute runs the batch metrics over 100k synthetic events on
// the test runner (Prism by default), and the source alone for
// comparison. ns/event includes starting the job.
func BenchmarkPerMinute(b *testing.B) {
	const n = 100_000
	// 60 windows x 7 sources x 4 platforms x 3 countries, all present.
	const rows = 60 * 7 * 4 * 3
	for _, bm := range []struct {
		name    string
		metrics bool
	}{{"source only", false}, {"source and metrics", true}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				p, s := beam.NewPipelineWithRoot()
				events := beam.ParDo(s, &syntheticEventsFn{N: n}, beam.Impulse(s))
				if bm.metrics {
					passert.Count(s, global(s, metrics.PerMinute(s, events, metrics.Config{})), "rows", rows)
				}
				if err := ptest.Run(p); err != nil {
					b.Fatalf("pipeline failed: %v", err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
