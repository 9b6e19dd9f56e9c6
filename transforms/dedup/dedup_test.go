package dedup_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// t0 is the event time of the test events: 2026-03-01T12:00:00Z in microseconds.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMicro()

// event is a record of event id with the given ingest time (microseconds
// after t0) and, if not empty, Pub/Sub message id.
func event(id string, ingest int64, messageID string) schemas.Event {
	ev := schemas.Event{
		EventID:    id,
		EventType:  "page.view",
		EventTime:  t0,
		Source:     "web-shop",
		IngestTime: t0 + ingest,
		Layer:      schemas.LayerBatch,
	}
	if messageID != "" {
		ev.MessageID = &messageID
	}
	return ev
}

// lakeLine is a bare lake line of event id read from uri.
func lakeLine(id string, ingest int64, uri string) schemas.Event {
	ev := event(id, ingest, "")
	ev.SourceURI = &uri
	return ev
}

func withProperties(ev schemas.Event, props string) schemas.Event {
	ev.Properties = &props
	return ev
}

// counter is the value of the counter railyard/name summed over all steps.
func counter(t testing.TB, pr beam.PipelineResult, name string) int64 {
	t.Helper()
	var total int64
	for _, c := range pr.Metrics().Query(func(r beam.MetricResult) bool {
		return r.Namespace() == "railyard" && r.Name() == name
	}).Counters() {
		total += c.Result()
	}
	return total
}

func TestByEventIDExact(t *testing.T) {
	tests := []struct {
		name           string
		in             []schemas.Event
		want           []schemas.Event
		wantDuplicates int64
	}{
		{
			name:           "keeps the earliest ingest time when it comes last",
			in:             []schemas.Event{event("a", 30, "m3"), event("b", 5, "m9"), event("a", 20, "m2"), event("a", 10, "m1")},
			want:           []schemas.Event{event("a", 10, "m1"), event("b", 5, "m9")},
			wantDuplicates: 2,
		},
		{
			name:           "keeps the earliest ingest time when it comes first",
			in:             []schemas.Event{event("a", 10, "m1"), event("a", 30, "m3"), event("b", 5, "m9"), event("a", 20, "m2")},
			want:           []schemas.Event{event("a", 10, "m1"), event("b", 5, "m9")},
			wantDuplicates: 2,
		},
		{
			name:           "breaks an ingest time tie by message id",
			in:             []schemas.Event{event("a", 10, "m2"), event("a", 10, "m1"), event("a", 10, "m3")},
			want:           []schemas.Event{event("a", 10, "m1")},
			wantDuplicates: 2,
		},
		{
			name:           "breaks a tie of bare lake lines by source uri",
			in:             []schemas.Event{lakeLine("a", 10, "gs://lake/f.jsonl.gz#L2"), lakeLine("a", 10, "gs://lake/f.jsonl.gz#L1")},
			want:           []schemas.Event{lakeLine("a", 10, "gs://lake/f.jsonl.gz#L1")},
			wantDuplicates: 1,
		},
		{
			name:           "breaks a full tie by the rest of the record",
			in:             []schemas.Event{withProperties(event("a", 10, "m1"), `{"x":2}`), withProperties(event("a", 10, "m1"), `{"x":1}`)},
			want:           []schemas.Event{withProperties(event("a", 10, "m1"), `{"x":1}`)},
			wantDuplicates: 1,
		},
		{
			name:           "emits nothing for no records",
			in:             []schemas.Event{},
			want:           []schemas.Event{},
			wantDuplicates: 0,
		},
		{
			name:           "keeps distinct events and counts no duplicate",
			in:             []schemas.Event{event("a", 10, "m1"), event("b", 10, "m2"), event("c", 10, "m3")},
			want:           []schemas.Event{event("a", 10, "m1"), event("b", 10, "m2"), event("c", 10, "m3")},
			wantDuplicates: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, col := ptest.CreateList(tt.in)
			got := dedup.ByEventID(s, col, dedup.Config{})
			passert.EqualsList(s, got, tt.want)
			pr, err := ptest.RunWithMetrics(p)
			if err != nil {
				t.Fatalf("pipeline failed: %v", err)
			}
			if got := counter(t, pr, "duplicates"); got != tt.wantDuplicates {
				t.Errorf("railyard/duplicates = %d, want %d", got, tt.wantDuplicates)
			}
			if unique := int64(len(tt.want)); int64(len(tt.in)) != unique+tt.wantDuplicates {
				t.Fatalf("bad test: %d records in, %d unique + %d duplicates", len(tt.in), unique, tt.wantDuplicates)
			}
		})
	}
}

func init() {
	register.Function2x1(stampOf)
}

// stamped is an event id with its element timestamp and event time, both
// in milliseconds.
type stamped struct {
	EventID     string
	TimestampMs int64
	EventTimeMs int64
}

func stampOf(ts beam.EventTime, ev schemas.Event) stamped {
	return stamped{EventID: ev.EventID, TimestampMs: ts.Milliseconds(), EventTimeMs: ev.EventTime / 1000}
}

func TestByEventIDExactTimestamps(t *testing.T) {
	t.Run("stamps each winner with its event time", func(t *testing.T) {
		early, late := event("a", 10, "m1"), event("b", 10, "m2")
		early.EventTime = t0 - 3*time.Hour.Microseconds() + 1234
		late.EventTime = t0 + 5*time.Minute.Microseconds() + 999
		dup := late
		dup.IngestTime++

		p, s, col := ptest.CreateList([]schemas.Event{dup, early, late})
		got := beam.ParDo(s, stampOf, dedup.ByEventID(s, col, dedup.Config{}))
		passert.Equals(s, got,
			stamped{EventID: "a", TimestampMs: early.EventTime / 1000, EventTimeMs: early.EventTime / 1000},
			stamped{EventID: "b", TimestampMs: late.EventTime / 1000, EventTimeMs: late.EventTime / 1000},
		)
		ptest.RunAndValidate(t, p)
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     dedup.Config
		wantErr string
	}{
		{name: "accepts the zero config as exact", cfg: dedup.Config{}},
		{name: "accepts streaming with a horizon", cfg: dedup.Config{Mode: dedup.Streaming, Horizon: 24 * time.Hour}},
		{name: "rejects streaming without a horizon", cfg: dedup.Config{Mode: dedup.Streaming}, wantErr: "needs a positive Horizon"},
		{name: "rejects streaming with a negative horizon", cfg: dedup.Config{Mode: dedup.Streaming, Horizon: -time.Hour}, wantErr: "needs a positive Horizon"},
		{name: "rejects a horizon in exact mode", cfg: dedup.Config{Horizon: time.Hour}, wantErr: "takes no horizon"},
		{name: "rejects an unknown mode", cfg: dedup.Config{Mode: 7}, wantErr: "unknown Mode Mode(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestByEventIDRejectsABadConfig(t *testing.T) {
	t.Run("panics while the pipeline is built", func(t *testing.T) {
		defer func() {
			r := recover()
			err, ok := r.(error)
			if !ok || !errors.Is(err, dedup.ErrInvalidConfig) || !strings.Contains(err.Error(), "needs a positive Horizon") {
				t.Fatalf("recovered %v, want an error wrapping ErrInvalidConfig about the horizon", r)
			}
		}()
		_, s, col := ptest.CreateList([]schemas.Event{event("a", 1, "m1")})
		dedup.ByEventID(s, col, dedup.Config{Mode: dedup.Streaming})
	})
}
