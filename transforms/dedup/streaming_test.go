package dedup_test

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
)

// step is one event of a test stream: records arriving at their event
// time, or, when records is empty, the watermark advancing to watermark.
type step struct {
	records   []schemas.Event
	watermark time.Time
}

// stream builds a TestStream of records stamped with their event time.
// Prism allows one TestStream per pipeline.
func stream(t *testing.T, s beam.Scope, steps []step) beam.PCollection {
	t.Helper()
	c := teststream.NewConfig()
	for _, st := range steps {
		if len(st.records) == 0 {
			if err := c.AdvanceWatermark(st.watermark.UnixMilli()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for _, r := range st.records {
			if err := c.AddElements(r.EventTime/1000, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}
	return teststream.Create(s, c)
}

func speed(ev schemas.Event) schemas.Event {
	ev.Layer = schemas.LayerSpeed
	return ev
}

func init() {
	register.Function1x2(stampEndOfTime)
}

// stampEndOfTime stamps a record with the end of the global window, as a
// step that forgot to stamp event times after a GroupByKey would.
func stampEndOfTime(ev schemas.Event) (beam.EventTime, schemas.Event) {
	return mtime.EndOfGlobalWindowTime, ev
}

func TestByEventIDStreamingEndOfTime(t *testing.T) {
	t.Run("dedups records stamped at the end of the global window", func(t *testing.T) {
		first, again := speed(event("a", 10, "m1")), speed(event("a", 20, "m2"))
		p, s := beam.NewPipelineWithRoot()
		events := beam.ParDo(s, stampEndOfTime, stream(t, s, []step{{records: []schemas.Event{first}}, {records: []schemas.Event{again}}}))
		got := dedup.ByEventID(s, events, dedup.Config{Mode: dedup.Streaming, Horizon: 24 * time.Hour})
		passert.Equals(s, got, first)
		ptest.RunAndValidate(t, p)
	})
}

func TestByEventIDStreaming(t *testing.T) {
	at := func(d time.Duration) time.Time { return time.UnixMicro(t0).Add(d) }
	cfg := dedup.Config{Mode: dedup.Streaming, Horizon: time.Hour}
	first, redelivery, afterHorizon := speed(event("a", 10, "m1")), speed(event("a", 5, "m2")), speed(event("a", 20, "m3"))
	other := speed(event("b", 10, "m4"))

	tests := []struct {
		name           string
		steps          []step
		want           []schemas.Event
		wantDuplicates int64
	}{
		{
			name: "drops a late redelivery even with an earlier ingest time",
			steps: []step{
				{records: []schemas.Event{first, other}},
				{watermark: at(10 * time.Minute)},
				{records: []schemas.Event{redelivery}},
			},
			want:           []schemas.Event{first, other},
			wantDuplicates: 1,
		},
		{
			name: "emits an event again once its horizon has passed",
			steps: []step{
				{records: []schemas.Event{first}},
				{watermark: at(10 * time.Minute)},
				{records: []schemas.Event{redelivery}},
				{watermark: at(2 * time.Hour)},
				{records: []schemas.Event{afterHorizon}},
			},
			want:           []schemas.Event{first, afterHorizon},
			wantDuplicates: 1,
		},
	}
	hoursLate := speed(event("c", (3 * time.Hour).Microseconds(), "m5"))
	hoursLateAgain := speed(event("c", (3*time.Hour + time.Minute).Microseconds(), "m6"))
	tests = append(tests, struct {
		name           string
		steps          []step
		want           []schemas.Event
		wantDuplicates int64
	}{
		name: "remembers an event that arrived hours late for the horizon after its arrival",
		steps: []step{
			{watermark: at(3 * time.Hour)},
			{records: []schemas.Event{hoursLate}},
			{watermark: at(3*time.Hour + 30*time.Minute)},
			{records: []schemas.Event{hoursLateAgain}},
		},
		want:           []schemas.Event{hoursLate},
		wantDuplicates: 1,
	})
	// A device with a wrong clock: dated in 2099, ingested at t0.
	in2099 := func(ev schemas.Event) schemas.Event {
		ev.EventTime = time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		return ev
	}
	future, futureRedelivery, futureAfterHorizon := in2099(speed(event("f", 10, "m7"))), in2099(speed(event("f", 20, "m7"))), in2099(speed(event("f", 30, "m8")))
	tests = append(tests, struct {
		name           string
		steps          []step
		want           []schemas.Event
		wantDuplicates int64
	}{
		name: "forgets an event dated years ahead the horizon after its ingest time, not after its event time",
		steps: []step{
			{records: []schemas.Event{future}},
			{watermark: at(30 * time.Minute)},
			{records: []schemas.Event{futureRedelivery}},
			{watermark: at(2 * time.Hour)},
			{records: []schemas.Event{futureAfterHorizon}},
		},
		want:           []schemas.Event{future, futureAfterHorizon},
		wantDuplicates: 1,
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			got := dedup.ByEventID(s, stream(t, s, tt.steps), cfg)
			passert.EqualsList(s, got, tt.want)
			pr, err := ptest.RunWithMetrics(p)
			if err != nil {
				t.Fatalf("pipeline failed: %v", err)
			}
			if got := counter(t, pr, "duplicates"); got != tt.wantDuplicates {
				t.Errorf("railyard/duplicates = %d, want %d", got, tt.wantDuplicates)
			}
		})
	}
}

func TestFirstArrivals(t *testing.T) {
	at := func(d time.Duration) time.Time { return time.UnixMicro(t0).Add(d) }
	recovered := event("a", 10, "m1")
	recovered.Layer = schemas.LayerRecovered
	redelivery, retry := speed(event("a", 10, "m1")), speed(event("a", 12, "m2"))
	other := speed(event("b", 10, "m4"))
	recoveredFirst := event("c", 10, "m5")
	recoveredFirst.Layer = schemas.LayerRecovered
	afterRecovered := speed(event("c", 20, "m5"))

	t.Run("returns what it drops, and counts only this run's records as duplicates", func(t *testing.T) {
		p, s := beam.NewPipelineWithRoot()
		events := stream(t, s, []step{
			{records: []schemas.Event{redelivery, other, recoveredFirst}},
			{watermark: at(time.Minute)},
			{records: []schemas.Event{recovered, retry, afterRecovered}},
		})
		unique, dropped := dedup.FirstArrivals(s, events, time.Hour)
		passert.EqualsList(s, unique, []schemas.Event{redelivery, other, recoveredFirst})
		// The first arrival's message_id, of this run only: a recovered
		// first arrival was written by an earlier run.
		passert.EqualsList(s, dropped, []dedup.Dropped{
			{Event: recovered, FirstMessageID: "m1"},
			{Event: retry, FirstMessageID: "m1"},
			{Event: afterRecovered, FirstMessageID: ""},
		})
		pr, err := ptest.RunWithMetrics(p)
		if err != nil {
			t.Fatalf("pipeline failed: %v", err)
		}
		if got := counter(t, pr, "duplicates"); got != 2 {
			t.Errorf("railyard/duplicates = %d, want 2 (the retry and the record after a recovered one; the recovered event is not a record of this run)", got)
		}
	})
}
