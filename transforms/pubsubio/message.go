package pubsubio

import (
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/schemas"
)

// Event times outside these bounds are not trusted as element timestamps:
// the event contract's years 2000–2100.
var (
	minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC)
)

// toRecord turns a received message into a Record. The ingest time is the
// publish time, as in the lake.
func toRecord(m *pubsubpb.PubsubMessage) schemas.Record {
	pt := m.GetPublishTime().AsTime().UnixMicro()
	if m.GetPublishTime() == nil {
		pt = 0
	}
	return schemas.Record{
		Data:        m.GetData(),
		Attributes:  m.GetAttributes(),
		MessageID:   m.GetMessageId(),
		PublishTime: pt,
		IngestTime:  pt,
	}
}

// eventTime returns the element timestamp of a message: the time in the
// attribute attr if it is set, present and readable, else the publish
// time.
func eventTime(attrs map[string]string, attr string, publish time.Time) time.Time {
	if attr == "" {
		return publish
	}
	v, ok := attrs[attr]
	if !ok {
		return publish
	}
	t, ok := parseEventTime(v)
	if !ok {
		return publish
	}
	return t
}

// parseEventTime reads an RFC 3339 time or integer epoch milliseconds,
// within the years 2000–2100.
func parseEventTime(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	var t time.Time
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		t = time.UnixMilli(ms).UTC()
	} else if p, err := time.Parse(time.RFC3339Nano, v); err == nil {
		t = p.UTC()
	} else {
		return time.Time{}, false
	}
	if t.Before(minEventTime) || !t.Before(maxEventTime) {
		return time.Time{}, false
	}
	return t, true
}
