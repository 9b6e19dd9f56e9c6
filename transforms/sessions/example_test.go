package sessions_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/sessions"
)

func ptr[T any](v T) *T { return &v }

// The batch job closes each session once, with the default 30-minute gap,
// and writes the sessions without their pane.
func ExamplePerUser_batch() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s, schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop", UserID: ptr("u1")})
	rows := sessions.WithoutPane(s, sessions.PerUser(s, events, sessions.Config{}))
	_ = rows // PCollection<schemas.Session>
}

// The streaming job revises a session on every late event for an hour.
// Prism v2.77.0 accepts no element-count or processing-time trigger on
// session windows, hence Always.
func ExamplePerUser_streaming() {
	_, s := beam.NewPipelineWithRoot()
	events := beam.Create(s, schemas.Event{EventID: "a", EventType: "page.view", Source: "web-shop", UserID: ptr("u1")})
	rows := sessions.PerUser(s, events, sessions.Config{
		Trigger:         trigger.AfterEndOfWindow().LateFiring(trigger.Always()),
		AllowedLateness: time.Hour,
	})
	_ = rows // PCollection<schemas.SessionSpeed>
}
