package windowing_test

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/windowing"
)

func TestMain(m *testing.M) { ptest.Main(m) }

var ingest = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// dated is an event dated lead after its ingest time (negative: before).
func dated(id string, lead time.Duration) schemas.Event {
	return schemas.Event{
		EventID: id, EventType: "page.view", Source: "web-shop", Layer: schemas.LayerSpeed,
		EventTime: ingest.Add(lead).UnixMicro(), IngestTime: ingest.UnixMicro(),
	}
}

func TestTooFarAhead(t *testing.T) {
	const maxFuture = 30 * time.Minute
	noIngest := dated("n", 80*365*24*time.Hour)
	noIngest.IngestTime = 0
	beforeEpoch := dated("z", time.Hour)
	beforeEpoch.IngestTime = time.Time{}.UnixMicro() // a file system that gives no modification time
	tests := []struct {
		name string
		ev   schemas.Event
		want bool
	}{
		{name: "an event dated before its ingest time is not ahead", ev: dated("a", -time.Hour), want: false},
		{name: "an event dated at its ingest time is not ahead", ev: dated("b", 0), want: false},
		{name: "an event exactly max_future ahead is still taken", ev: dated("c", maxFuture), want: false},
		{name: "an event a microsecond more than max_future ahead is too far ahead", ev: dated("d", maxFuture+time.Microsecond), want: true},
		{name: "an event two hours ahead is too far ahead", ev: dated("e", 2*time.Hour), want: true},
		{name: "an event dated in 2099 is too far ahead", ev: func() schemas.Event {
			ev := dated("f", 0)
			ev.EventTime = time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			return ev
		}(), want: true},
		{name: "an event without an ingest time is never too far ahead", ev: noIngest, want: false},
		{name: "an event whose ingest time is before the epoch is never too far ahead", ev: beforeEpoch, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := windowing.TooFarAhead(tt.ev, maxFuture); got != tt.want {
				t.Errorf("TooFarAhead(event %s ahead, %v) = %v, want %v",
					time.Duration(tt.ev.EventTime-tt.ev.IngestTime)*time.Microsecond, maxFuture, got, tt.want)
			}
		})
	}
}

func TestLeaveOutFuture(t *testing.T) {
	t.Run("leaves out and counts the events too far ahead, except recovered ones", func(t *testing.T) {
		current, late, slightlyAhead := dated("a", -time.Second), dated("b", -3*time.Hour), dated("c", 10*time.Minute)
		ahead, farAhead := dated("d", 2*time.Hour), dated("e", 70*365*24*time.Hour)
		recoveredAhead := dated("f", 2*time.Hour)
		recoveredAhead.Layer = schemas.LayerRecovered
		p, s := beam.NewPipelineWithRoot()
		in := beam.CreateList(s, []schemas.Event{current, late, slightlyAhead, ahead, farAhead, recoveredAhead})
		got := windowing.LeaveOutFuture(s, in, 30*time.Minute)
		passert.EqualsList(s, got, []schemas.Event{current, late, slightlyAhead})
		pr, err := ptest.RunWithMetrics(p)
		if err != nil {
			t.Fatalf("pipeline failed: %v", err)
		}
		var n int64
		for _, c := range pr.Metrics().Query(func(r beam.MetricResult) bool {
			return r.Namespace() == metricnames.Namespace && r.Name() == metricnames.FutureEvents
		}).Counters() {
			n += c.Result()
		}
		if n != 2 {
			t.Errorf("railyard/%s = %d, want 2 (the events 2 h and 70 years ahead; the recovered one was counted by its own run)", metricnames.FutureEvents, n)
		}
	})
}
