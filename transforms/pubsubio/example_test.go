package pubsubio_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/transforms/pubsubio"
)

// Read on Prism or Flink: the streaming job's source, ending once the
// subscription has been idle for a minute (0 runs for ever).
func ExampleRead() {
	_, s := beam.NewPipelineWithRoot()
	records := pubsubio.Read(s, pubsubio.Config{
		Subscription:       "projects/my-project/subscriptions/railyard-speed",
		EventTimeAttribute: "event_time",
		StopAfterIdle:      time.Minute,
	})
	_ = records // PCollection<schemas.Record>, on to decoding
}

// The pipeline acknowledges what Read reads: here as soon as a message is
// read; the streaming job does it once the message is archived and
// written.
func ExampleAck() {
	_, s := beam.NewPipelineWithRoot()
	cfg := pubsubio.Config{
		Subscription: "projects/my-project/subscriptions/railyard-speed",
	}
	records := pubsubio.Read(s, cfg)
	pubsubio.Ack(s, cfg, beam.ParDo(s, ackID, records))
}
