package lake_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/lake"
)

// Archive the raw records of the streaming job, and get back what may be
// acknowledged.
func ExampleArchive() {
	_, s := beam.NewPipelineWithRoot()
	records := beam.Create(s, schemas.Record{MessageID: "1", Data: []byte(`{"event_id":"a"}`), AckID: "ack-1"}) // from pubsubio.Read in the job
	archived := lake.Archive(s, lake.ArchiveConfig{Lake: "gs://my-lake/prod", Shards: 4, Window: time.Minute}, records)
	_ = archived // PCollection<lake.Archived>: message ids and ack ids, once durable
}
