package pubsubio

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/protox"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/proto"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// NativeReadURN is the URN of Dataflow's own Pub/Sub source, the one
// Beam's io/pubsubio.Read emits.
const NativeReadURN = "beam:transform:pubsub_read:v1"

func init() {
	register.DoFn4x1[context.Context, beam.EventTime, []byte, func(beam.EventTime, schemas.Record), error](&fromNativeFn{})
}

// ReadNative reads the subscription with Dataflow's own Pub/Sub source.
// Only Dataflow runs it: Prism rejects the pipeline when it is submitted.
//
// It is Beam's io/pubsubio.Read(s, project, ReadOptions{Subscription,
// WithAttributes: true}), rebuilt here: that package imports
// google.golang.org/genproto/googleapis/pubsub/v1, which the genproto this
// module needs (for pubsub/v2, bigquery and gax) no longer has. The
// transform is the same URN and payload, and its output, serialized
// google.pubsub.v1.PubsubMessage, is decoded with the v2 client's types.
//
// It returns an unbounded PCollection<schemas.Record> as Read does, with
// the same timestamps: the event time in cfg.EventTimeAttribute when
// readable, else the publish time. Dataflow itself stamps, acknowledges
// and tracks the watermark on publish time (the attribute is deliberately
// not given to Dataflow as its timestamp attribute: a message without it
// would stall the source), so event-timed records can be behind the
// watermark by their publish delay; give windows that much allowed
// lateness. A message id or publish time that Dataflow leaves out of the
// message is the empty string, or the element's publish timestamp.
// Shards, pull sizes, StopAfterIdle, the leases and flow control do not
// apply.
func ReadNative(s beam.Scope, cfg Config) beam.PCollection {
	s = s.Scope("pubsubio.ReadNative")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	payload := &pipepb.PubSubReadPayload{
		Subscription:   cfg.Subscription,
		WithAttributes: true,
	}
	out := beam.External(s, NativeReadURN, protox.MustEncode(payload), nil,
		[]beam.FullType{typex.New(reflectx.ByteSlice)}, false)
	return beam.ParDo(s, &fromNativeFn{EventTimeAttribute: cfg.EventTimeAttribute}, out[0])
}

// fromNativeFn decodes the messages of Dataflow's source into Records.
type fromNativeFn struct {
	EventTimeAttribute string

	read beam.Counter
}

func (fn *fromNativeFn) Setup() {
	fn.read = beam.NewCounter(metricnames.Namespace, metricnames.PubsubMessagesRead)
}

func (fn *fromNativeFn) ProcessElement(ctx context.Context, et beam.EventTime, raw []byte, emit func(beam.EventTime, schemas.Record)) error {
	var msg pubsubpb.PubsubMessage
	if err := proto.Unmarshal(raw, &msg); err != nil {
		// Dataflow's output, not user input: a bug or a format change.
		return fmt.Errorf("pubsubio: decode a message from Dataflow's Pub/Sub source: %w", err)
	}
	rec := fromNative(&msg, et.ToTime())
	emit(mtime.FromTime(eventTime(rec.Attributes, fn.EventTimeAttribute, time.UnixMicro(rec.PublishTime))), rec)
	fn.read.Inc(ctx, 1)
	return nil
}

// fromNative is the Record of a message from Dataflow's source, whose
// element timestamp is its publish time.
func fromNative(msg *pubsubpb.PubsubMessage, elementTime time.Time) schemas.Record {
	rec := toRecord(msg)
	if rec.PublishTime == 0 {
		rec.PublishTime = elementTime.UnixMicro()
		rec.IngestTime = rec.PublishTime
	}
	return rec
}
