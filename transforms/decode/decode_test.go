package decode

import (
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// describeEvent and describeDeadLetter flatten rows into comparable strings
// for passert.
func describeEvent(e schemas.Event) string {
	return e.EventID + "|" + e.EventType + "|" + *e.Country + "|" + *e.Extra + "|" + e.Layer + "|" + *e.MessageID
}

func describeDeadLetter(d schemas.DeadLetter) string {
	uri, attrs := "", ""
	if d.SourceURI != nil {
		uri = *d.SourceURI
	}
	if d.Attributes != nil {
		attrs = *d.Attributes
	}
	return d.Reason + "|" + d.Stage + "|" + d.Layer + "|" + string(d.Payload) + "|" + uri + "|" + attrs
}

func init() {
	register.Function1x1(describeEvent)
	register.Function1x1(describeDeadLetter)
}

func TestEvents(t *testing.T) {
	good := schemas.Record{
		Data:        []byte(`{"event_id":" e1 ","event_type":"Page.View","event_time":"2026-11-01T10:00:00.123456789+01:00","source":"shop","country":"de","x":1}`),
		MessageID:   "m1",
		PublishTime: 1_761_991_300_000_000,
		IngestTime:  1_761_991_300_000_000,
	}
	bad := schemas.Record{
		Data:       []byte("{\"event_id\":\"e2\",\"event_type\":\"a\",\"event_time\":\"2026-11-01T10:00:00Z\",\"source\":\xff}"),
		SourceURI:  "gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L7",
		IngestTime: 1,
	}
	notObject := schemas.Record{Data: []byte(`[1,2]`), Attributes: map[string]string{"k": "v"}}

	p, s := beam.NewPipelineWithRoot()
	records := beam.CreateList(s, []schemas.Record{good, bad, notObject})
	events, dead := Events(s, records, Config{Layer: schemas.LayerSpeed})

	ids := beam.ParDo(s, describeEvent, events)
	passert.Equals(s, ids, "e1|page.view|DE|{\"x\":1}|speed|m1")
	reasons := beam.ParDo(s, describeDeadLetter, dead)
	passert.Equals(s, reasons,
		"invalid_utf8|decode|speed|"+string(bad.Data)+"|"+bad.SourceURI+"|",
		`not_object|decode|speed|[1,2]||{"k":"v"}`,
	)

	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	counters := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		counters[c.Key.Name] = c.Result()
	}
	want := map[string]int64{
		metricnames.RecordsIn: 3, metricnames.EventsValid: 1, metricnames.DeadLetters: 2,
		metricnames.DeadLetter(schemas.ReasonInvalidUTF8): 1, metricnames.DeadLetter(schemas.ReasonNotObject): 1,
	}
	for name, n := range want {
		if counters[name] != n {
			t.Errorf("counter %s = %d, want %d (all: %v)", name, counters[name], n, counters)
		}
	}
}

func TestConfigRejectsUnknownLayer(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("Events accepted layer \"fast\"")
		}
	}()
	_, s := beam.NewPipelineWithRoot()
	Events(s, beam.Create(s, schemas.Record{}), Config{Layer: "fast"})
}

func TestMaxRecordBytesTightensTheLimit(t *testing.T) {
	small := schemas.Record{Data: []byte(`{"event_id":"s","event_type":"a","event_time":"2026-11-01T10:00:00Z","source":"x"}`), MessageID: "m1"}
	large := schemas.Record{Data: []byte(`{"event_id":"l","event_type":"a","event_time":"2026-11-01T10:00:00Z","source":"x","pad":"` + strings.Repeat("x", 100) + `"}`), MessageID: "m2"}
	p, s := beam.NewPipelineWithRoot()
	events, dead := Events(s, beam.CreateList(s, []schemas.Record{small, large}), Config{Layer: schemas.LayerSpeed, MaxRecordBytes: 100})
	passert.Equals(s, beam.ParDo(s, describeEventID, events), "s")
	passert.Equals(s, beam.ParDo(s, describeDeadLetterReason, dead), "too_large|m2")
	if err := ptest.Run(p); err != nil {
		t.Fatal(err)
	}
}

func describeEventID(e schemas.Event) string { return e.EventID }

func describeDeadLetterReason(d schemas.DeadLetter) string { return d.Reason + "|" + *d.MessageID }

func init() {
	register.Function1x1(describeEventID)
	register.Function1x1(describeDeadLetterReason)
}
