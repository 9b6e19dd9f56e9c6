package metrics_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/metrics"
)

// The batch job counts each minute once, and writes the metrics without
// their pane.
func ExamplePerMinute_batch() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s, schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop"})
	rows := metrics.WithoutPane(s, metrics.PerMinute(s, events, metrics.Config{}))
	_ = rows // PCollection<schemas.MetricMinute>
}

// The streaming job revises each minute: early every 30 s of processing
// time, on time, then on every late event for 10 minutes. Each pane holds
// the whole minute so far. On Prism v2.77.0, keep the allowed lateness
// well above the early-firing delay (see runners/KNOWN_ISSUES.md).
func ExamplePerMinute_streaming() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s, schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop"})
	rows := metrics.PerMinute(s, events, metrics.Config{
		Trigger: trigger.AfterEndOfWindow().
			EarlyFiring(trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(30 * time.Second))).
			LateFiring(trigger.Always()),
		AllowedLateness: 10 * time.Minute,
		Panes:           metrics.Accumulating,
	})
	_ = rows // PCollection<schemas.MetricMinuteSpeed>
}
