package dedup_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
)

// The batch job dedups its whole input exactly: the record with the
// earliest ingest time wins.
func ExampleByEventID_batch() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s,
		schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop", IngestTime: 2},
		schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop", IngestTime: 1},
	)
	unique := dedup.ByEventID(s, events, dedup.Config{})
	_ = unique // PCollection<schemas.Event>: the record ingested at 1.
}

// The streaming job emits the first arrival of each event at once, and
// drops redeliveries for a day of event time.
func ExampleByEventID_streaming() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s, schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop"})
	unique := dedup.ByEventID(s, events, dedup.Config{Mode: dedup.Streaming, Horizon: 24 * time.Hour})
	_ = unique
}
