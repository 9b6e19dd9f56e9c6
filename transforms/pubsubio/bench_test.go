package pubsubio_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"

	"github.com/railyard/railyard/transforms/pubsubio"
)

// BenchmarkRead reads a backlog of 20,000 messages from pstest and reports
// how fast they were read and acked (msgs/s, from the start of the job to
// the last ack). The records go on to a passert count, as a job's go on to
// its GroupByKeys. Run it without -race:
//
//	go test -run '^$' -bench Read -benchtime 3x ./transforms/pubsubio/
func BenchmarkRead(b *testing.B) {
	const n = 20_000
	for _, shards := range []int{1, 4} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				f := newFixture(b, 60*time.Second)
				f.publish(b, testMessages(n))
				p, s := beam.NewPipelineWithRoot()
				recs := readAndAck(s, pubsubio.Config{Subscription: f.sub, Shards: shards, StopAfterIdle: time.Second})
				passert.Count(s, beam.ParDo(s, messageID, recs), "messages", n)
				done := make(chan error, 1)
				b.StartTimer()

				start := time.Now()
				go func() {
					_, err := run(context.Background(), p)
					done <- err
				}()
				for f.ackCounts()[1] < n {
					time.Sleep(100 * time.Millisecond)
				}
				took := time.Since(start)
				b.StopTimer()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(n/took.Seconds(), "msgs/s")
				b.StartTimer()
			}
		})
	}
}
