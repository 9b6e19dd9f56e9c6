package pubsubio

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/railyard/railyard/schemas"
)

func TestParseEventTime(t *testing.T) {
	want := time.Date(2026, 11, 1, 10, 0, 0, 500_000_000, time.UTC)
	cases := []struct {
		in string
		ok bool
	}{
		{"2026-11-01T10:00:00.5Z", true},
		{"2026-11-01T11:00:00.5+01:00", true},
		{" 2026-11-01T10:00:00.500Z ", true},
		{"1793527200500", true}, // epoch milliseconds
		{"2026-11-01 10:00:00", false},
		{"2026-11-01", false},
		{"1793527200.5", false},
		{"", false},
		{"1999-12-31T23:59:59Z", false}, // before 2000
		{"2101-01-01T00:00:00Z", false}, // after 2100
		{"-1", false},
		{"99999999999999999", false},
	}
	for _, c := range cases {
		got, ok := parseEventTime(c.in)
		if ok != c.ok || (ok && !got.Equal(want)) {
			t.Errorf("parseEventTime(%q) = %v, %v; want %v, %v", c.in, got, ok, want, c.ok)
		}
	}
}

func TestEventTime(t *testing.T) {
	publish := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ts := "2026-11-01T10:00:00Z"
	attrs := map[string]string{"ts": ts, "bad": "soon"}
	if got := eventTime(attrs, "", publish); !got.Equal(publish) {
		t.Errorf("no attribute configured: %v, want the publish time", got)
	}
	if got := eventTime(attrs, "missing", publish); !got.Equal(publish) {
		t.Errorf("attribute missing: %v, want the publish time", got)
	}
	if got := eventTime(attrs, "bad", publish); !got.Equal(publish) {
		t.Errorf("attribute unreadable: %v, want the publish time", got)
	}
	if got := eventTime(attrs, "ts", publish); got.Format(time.RFC3339) != ts {
		t.Errorf("attribute readable: %v, want %s", got, ts)
	}
}

func TestToRecordAndFromNative(t *testing.T) {
	publish := time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC)
	msg := &pubsubpb.PubsubMessage{
		Data: []byte("x"), Attributes: map[string]string{"a": "b"},
		MessageId: "42", PublishTime: timestamppb.New(publish),
	}
	want := schemas.Record{Data: []byte("x"), Attributes: map[string]string{"a": "b"}, MessageID: "42",
		PublishTime: publish.UnixMicro(), IngestTime: publish.UnixMicro()}
	if got := toRecord(msg); describe(got) != describe(want) {
		t.Errorf("toRecord = %+v, want %+v", got, want)
	}
	// Dataflow's source may leave out the publish time; its element
	// timestamp is the publish time.
	elem := time.Date(2026, 11, 1, 12, 0, 1, 0, time.UTC)
	if got := fromNative(msg, elem); got.PublishTime != publish.UnixMicro() {
		t.Errorf("fromNative kept publish time %d, want %d", got.PublishTime, publish.UnixMicro())
	}
	bare := &pubsubpb.PubsubMessage{Data: []byte("y")}
	if got := fromNative(bare, elem); got.PublishTime != elem.UnixMicro() || got.IngestTime != elem.UnixMicro() || got.MessageID != "" {
		t.Errorf("fromNative(no publish time) = %+v, want the element time", got)
	}
	if got := toRecord(bare); got.PublishTime != 0 {
		t.Errorf("toRecord(no publish time).PublishTime = %d, want 0", got.PublishTime)
	}
}

func describe(r schemas.Record) string {
	return string(r.Data) + "|" + r.MessageID + "|" + r.Attributes["a"] + "|" +
		time.UnixMicro(r.PublishTime).String() + "|" + time.UnixMicro(r.IngestTime).String()
}

func TestEstimateWatermark(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	lag := 2 * time.Second
	cases := []struct {
		name   string
		oldest time.Time
		want   time.Time
	}{
		{"idle: now minus the lag", time.Time{}, now.Add(-lag)},
		{"holding: the oldest held", now.Add(-time.Hour), now.Add(-time.Hour)},
		{"holding recent: capped at now minus the lag", now.Add(-time.Second), now.Add(-lag)},
		{"a future event time cannot carry it past now", now.Add(24 * time.Hour), now.Add(-lag)},
	}
	for _, c := range cases {
		if got := estimateWatermark(c.oldest, now, lag); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
