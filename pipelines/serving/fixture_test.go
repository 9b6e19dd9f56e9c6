package serving

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/schemas"
)

// The fixture is one event day, the same shape every day, seen by both
// layers. The layers differ so that every total says which layer served
// the day:
//
//	event  time      key  user  value  speed rows                batch
//	m      00:00:00  K1   -     1.0    1                         1
//	a      10:00:10  K1   u1    1.5    2 (a redelivery)          1
//	b      10:00:20  K1   u2    2.0    1                         1
//	d      10:00:40  K2   u1    NULL   1                         1
//	e      10:00:50  K1   u2    0.0    1 (late: ingested 10:35)  1
//	c      10:01:30  K1   u3    4.0    0 (the stream missed it)  1
//	z      23:59:59.999999 K1 - 0.5    2 (a redelivery)          1
//
// K1 is (page.view, shop, web, US); K2 is (page.view, shop, NULL, NULL).
// Per day the events view shows 6 events worth 5.0 from the speed layer
// (8 rows before deduplication) and 7 worth 9.0 from the batch layer.
//
// metrics_minute_speed holds several panes per window: w10:00 K1 has
// EARLY (1 event), ON_TIME (2) and a LATE pane (3, revised by e); w10:00
// K2 (NULL platform and country) has EARLY and ON_TIME panes of 1 event.
// Latest panes: 4 rows, 6 events, value 5.0; all panes: 7 rows, 10 events.
// metrics_minute_batch: 5 rows, 7 events, value 9.0.
//
// sessions_speed: u1 10:00:10 with panes of 1 then 2 events; u2 10:00:20
// with an ON_TIME pane of 1 and a LATE pane of 2. Latest: 2 sessions of 4
// events (all panes: 4 rows, 6 events). sessions_batch: u1 (2), u2 (2),
// u3 (1): 3 sessions, 5 events.
const (
	speedEventsPerDay   = 6
	speedEventRowsDay   = 8
	batchEventsPerDay   = 7
	speedValuePerDay    = 5.0
	batchValuePerDay    = 9.0
	speedMetricRowsDay  = 4
	batchMetricRowsDay  = 5
	speedSessionsPerDay = 2
	speedSessionEvents  = 4
	batchSessionsPerDay = 3
	batchSessionEvents  = 5
)

func str(s string) *string     { return &s }
func float(f float64) *float64 { return &f }
func hms(h, m, s int) time.Duration {
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
}

type key struct{ platform, country *string }

var (
	k1 = key{str("web"), str("US")}
	k2 = key{}
)

func eventRow(d time.Time, layer, id string, at time.Duration, k key, user *string, value *float64, ingest time.Duration, msg string) map[string]bigquery.Value {
	r := map[string]bigquery.Value{
		"event_id":    fmt.Sprintf("%s-%s", id, d.Format(schemas.DayLayout)),
		"event_type":  "page.view",
		"event_time":  d.Add(at),
		"source":      "shop",
		"ingest_time": d.Add(ingest),
		"layer":       layer,
		"message_id":  msg,
	}
	if k.platform != nil {
		r["platform"] = *k.platform
	}
	if k.country != nil {
		r["country"] = *k.country
	}
	if user != nil {
		r["user_id"] = *user
	}
	if value != nil {
		r["value"] = *value
	}
	if layer == schemas.LayerBatch {
		r["source_uri"] = fmt.Sprintf("gs://lake/raw/dt=%s/hr=00/a.jsonl.gz#L1", d.Format(schemas.DayLayout))
	}
	return r
}

func dayEvents(d time.Time, layer string) []map[string]bigquery.Value {
	second := 1 * time.Second
	rows := []map[string]bigquery.Value{
		eventRow(d, layer, "m", 0, k1, nil, float(1.0), second, "msg-m"),
		eventRow(d, layer, "a", hms(10, 0, 10), k1, str("u1"), float(1.5), hms(10, 0, 11), "msg-a"),
		eventRow(d, layer, "b", hms(10, 0, 20), k1, str("u2"), float(2.0), hms(10, 0, 21), "msg-b"),
		eventRow(d, layer, "d", hms(10, 0, 40), k2, str("u1"), nil, hms(10, 0, 41), "msg-d"),
		eventRow(d, layer, "e", hms(10, 0, 50), k1, str("u2"), float(0.0), hms(10, 35, 0), "msg-e"),
		eventRow(d, layer, "z", 24*time.Hour-time.Microsecond, k1, nil, float(0.5), 24*time.Hour, "msg-z"),
	}
	if layer == schemas.LayerBatch {
		return append(rows, eventRow(d, layer, "c", hms(10, 1, 30), k1, str("u3"), float(4.0), hms(10, 1, 31), "msg-c"))
	}
	// Redeliveries the stream's dedup horizon let through: same event, later
	// ingest, another message id.
	return append(rows,
		eventRow(d, layer, "a", hms(10, 0, 10), k1, str("u1"), float(1.5), hms(10, 5, 0), "msg-a2"),
		eventRow(d, layer, "z", 24*time.Hour-time.Microsecond, k1, nil, float(0.5), 24*time.Hour+time.Minute, "msg-z2"),
	)
}

func metricRow(d time.Time, at time.Duration, k key, events, users int64, value float64) map[string]bigquery.Value {
	r := map[string]bigquery.Value{
		"window_start": d.Add(at),
		"window_end":   d.Add(at + time.Minute),
		"event_type":   "page.view",
		"source":       "shop",
		"events":       events,
		"users":        users,
		"value_sum":    value,
	}
	if k.platform != nil {
		r["platform"] = *k.platform
	}
	if k.country != nil {
		r["country"] = *k.country
	}
	return r
}

func pane(r map[string]bigquery.Value, index int64, timing string, processed time.Time) map[string]bigquery.Value {
	r["pane_index"] = index
	r["pane_timing"] = timing
	r["processed_at"] = processed
	return r
}

func dayMetrics(d time.Time, layer string) []map[string]bigquery.Value {
	if layer == schemas.LayerBatch {
		return []map[string]bigquery.Value{
			metricRow(d, 0, k1, 1, 0, 1.0),
			metricRow(d, hms(10, 0, 0), k1, 3, 2, 3.5),
			metricRow(d, hms(10, 0, 0), k2, 1, 1, 0),
			metricRow(d, hms(10, 1, 0), k1, 1, 1, 4.0),
			metricRow(d, hms(23, 59, 0), k1, 1, 0, 0.5),
		}
	}
	return []map[string]bigquery.Value{
		pane(metricRow(d, 0, k1, 1, 0, 1.0), 0, "ON_TIME", d.Add(hms(0, 1, 5))),
		pane(metricRow(d, hms(10, 0, 0), k1, 1, 1, 1.5), 0, "EARLY", d.Add(hms(10, 0, 15))),
		pane(metricRow(d, hms(10, 0, 0), k1, 2, 2, 3.5), 1, "ON_TIME", d.Add(hms(10, 1, 5))),
		pane(metricRow(d, hms(10, 0, 0), k1, 3, 2, 3.5), 2, "LATE", d.Add(hms(10, 35, 5))),
		pane(metricRow(d, hms(10, 0, 0), k2, 1, 1, 0), 0, "EARLY", d.Add(hms(10, 0, 45))),
		pane(metricRow(d, hms(10, 0, 0), k2, 1, 1, 0), 1, "ON_TIME", d.Add(hms(10, 1, 5))),
		pane(metricRow(d, hms(23, 59, 0), k1, 1, 0, 0.5), 0, "ON_TIME", d.Add(24*time.Hour+5*time.Second)),
	}
}

func sessionRow(d time.Time, user string, start, end time.Duration, events int64) map[string]bigquery.Value {
	return map[string]bigquery.Value{
		"session_start":    d.Add(start),
		"session_end":      d.Add(end),
		"user_id":          user,
		"duration_seconds": (end - start).Seconds(),
		"events":           events,
		"sources":          []string{"shop"},
		"gap_seconds":      int64(1800),
	}
}

func daySessions(d time.Time, layer string) []map[string]bigquery.Value {
	if layer == schemas.LayerBatch {
		return []map[string]bigquery.Value{
			sessionRow(d, "u1", hms(10, 0, 10), hms(10, 0, 40), 2),
			sessionRow(d, "u2", hms(10, 0, 20), hms(10, 0, 50), 2),
			sessionRow(d, "u3", hms(10, 1, 30), hms(10, 1, 30), 1),
		}
	}
	return []map[string]bigquery.Value{
		pane(sessionRow(d, "u1", hms(10, 0, 10), hms(10, 0, 10), 1), 0, "EARLY", d.Add(hms(10, 0, 20))),
		pane(sessionRow(d, "u1", hms(10, 0, 10), hms(10, 0, 40), 2), 1, "ON_TIME", d.Add(hms(10, 31, 0))),
		pane(sessionRow(d, "u2", hms(10, 0, 20), hms(10, 0, 20), 1), 0, "ON_TIME", d.Add(hms(10, 30, 25))),
		pane(sessionRow(d, "u2", hms(10, 0, 20), hms(10, 0, 50), 2), 1, "LATE", d.Add(hms(10, 35, 5))),
	}
}

// seedSpeed writes the speed layer's rows of every day.
func (e *env) seedSpeed(days ...time.Time) {
	e.t.Helper()
	var events, metrics, sessions []map[string]bigquery.Value
	for _, d := range days {
		events = append(events, dayEvents(d, schemas.LayerSpeed)...)
		metrics = append(metrics, dayMetrics(d, schemas.LayerSpeed)...)
		sessions = append(sessions, daySessions(d, schemas.LayerSpeed)...)
	}
	e.insert(schemas.TableEventsSpeed, events...)
	e.insert(schemas.TableMetricsMinuteSpeed, metrics...)
	e.insert(schemas.TableSessionsSpeed, sessions...)
}

// writeBatchDay does what a batch run does to the tables for one day:
// replaces the day's partition of every batch table. Whether the run then
// records its coverage is up to the caller.
func (e *env) writeBatchDay(d time.Time) {
	e.t.Helper()
	for table, col := range map[string]string{
		schemas.TableEventsBatch:        "event_time",
		schemas.TableMetricsMinuteBatch: "window_start",
		schemas.TableSessionsBatch:      "session_start",
	} {
		e.exec(fmt.Sprintf("DELETE FROM {%s} WHERE %s >= @day AND %s < TIMESTAMP_ADD(@day, INTERVAL 1 DAY)", table, col, col),
			bigquery.QueryParameter{Name: "day", Value: d})
	}
	e.insert(schemas.TableEventsBatch, dayEvents(d, schemas.LayerBatch)...)
	e.insert(schemas.TableMetricsMinuteBatch, dayMetrics(d, schemas.LayerBatch)...)
	e.insert(schemas.TableSessionsBatch, daySessions(d, schemas.LayerBatch)...)
}

// seedDeadLetters writes dead letters of both layers: text, binary and
// control bytes, and one longer than the preview. They go in by DML with
// FROM_BASE64: the emulator stores a BYTES value sent through insertAll as
// its base64 text, and takes a BYTES query parameter for a STRING.
func (e *env) seedDeadLetters(at time.Time) {
	e.t.Helper()
	rows := []struct {
		failedAt                    time.Time
		layer, reason, err          string
		payload                     []byte
		sourceURI, messageID, attrs *string
		publishTime                 *time.Time
	}{
		{at, "speed", "invalid_json", "invalid_json: unexpected end of JSON input", []byte(`{"event_id": `),
			nil, str("dl-1"), str(`{"origin":"shop"}`), ptr(at.Add(-time.Second))},
		{at, "speed", "invalid_utf8", "invalid_utf8: record is not valid UTF-8", []byte{0xff, 0x00, 'a', '\t', 'b'},
			nil, str("dl-2"), nil, ptr(at.Add(-time.Second))},
		{at.Add(time.Hour), "batch", "missing_event_id", "missing_event_id: event_id is required", append([]byte(`{"x":1}`), 0x07),
			str("gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L7"), nil, nil, nil},
		{at.Add(time.Hour), "batch", "too_large", "too_large: record is 1500 bytes", bytes.Repeat([]byte("x"), 1500),
			str("gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L8"), nil, nil, nil},
	}
	for _, r := range rows {
		e.exec(`INSERT INTO {dead_letter}
  (failed_at, layer, stage, reason, error, payload, source_uri, message_id, publish_time, attributes)
VALUES (@failed_at, @layer, 'decode', @reason, @error, FROM_BASE64(@payload), @source_uri, @message_id, @publish_time, PARSE_JSON(@attributes))`,
			bigquery.QueryParameter{Name: "failed_at", Value: r.failedAt},
			bigquery.QueryParameter{Name: "layer", Value: r.layer},
			bigquery.QueryParameter{Name: "reason", Value: r.reason},
			bigquery.QueryParameter{Name: "error", Value: r.err},
			bigquery.QueryParameter{Name: "payload", Value: base64.StdEncoding.EncodeToString(r.payload)},
			bigquery.QueryParameter{Name: "source_uri", Value: nullString(r.sourceURI)},
			bigquery.QueryParameter{Name: "message_id", Value: nullString(r.messageID)},
			bigquery.QueryParameter{Name: "publish_time", Value: nullTime(r.publishTime)},
			bigquery.QueryParameter{Name: "attributes", Value: nullString(r.attrs)},
		)
	}
}

func ptr[T any](v T) *T { return &v }

func nullString(s *string) bigquery.NullString {
	if s == nil {
		return bigquery.NullString{}
	}
	return bigquery.NullString{StringVal: *s, Valid: true}
}

func nullTime(t *time.Time) bigquery.NullTimestamp {
	if t == nil {
		return bigquery.NullTimestamp{}
	}
	return bigquery.NullTimestamp{Timestamp: *t, Valid: true}
}
