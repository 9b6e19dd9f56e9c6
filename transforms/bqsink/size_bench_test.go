package bqsink

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/schemas"
)

// sizeRecords is how many records of the bench's synthetic mix
// (sample.Synthetic, seed 1, as runners/bench writes them) the size
// benchmark measures.
const sizeRecords = 100_000

// appendedBytes is what a serialized row adds to an AppendRows request:
// the row and its framing in ProtoRows.serialized_rows (field 1, bytes).
func appendedBytes(row []byte) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(row))
}

// sizeOf encodes rows of one table with the sink's encoder and returns
// their bytes in an AppendRows request.
func sizeOf[T any](tb testing.TB, rows []T) int {
	tb.Helper()
	enc, err := EncoderFor(reflect.TypeFor[T]())
	if err != nil {
		tb.Fatalf("encoder for %T: %v", *new(T), err)
	}
	total := 0
	for _, r := range rows {
		b, err := enc.Encode(r)
		if err != nil {
			tb.Fatalf("encoding a %T row: %v", r, err)
		}
		total += appendedBytes(b)
	}
	return total
}

// BenchmarkSizeRows reports the Storage Write API bytes of the rows the
// jobs append, per row and per event: events_speed rows (the streaming
// job's events), the batch job's staged event rows (with their lake line
// as source_uri), and metrics and sessions rows of the sample day
// (sample.Generate), whose counts per event depend on the traffic and the
// triggers. Run it once: -benchtime=1x.
func BenchmarkSizeRows(b *testing.B) {
	var speed, batch []schemas.Event
	records := 0
	for m := range sample.Synthetic(sizeRecords, 1) {
		records++
		ev, err := schemas.ParseEvent(m.Data)
		if err != nil {
			continue
		}
		rec := m.Record()
		id := rec.MessageID
		ev.IngestTime, ev.MessageID = rec.IngestTime, &id
		ev.Layer = schemas.LayerSpeed
		speed = append(speed, ev)
		// An archive file's name, as lake.Archive writes it, and the line.
		t := time.UnixMicro(rec.IngestTime).UTC()
		uri := fmt.Sprintf("gs://my-project-railyard-lake/raw/dt=%s/hr=%02d/stream-%s-001-of-004-p0-0123456789abcdef.jsonl.gz#L%d",
			t.Format(time.DateOnly), t.Hour(), t.Truncate(time.Minute).Format("20060102T150405Z"), records%60_000)
		ev.Layer, ev.SourceURI = schemas.LayerBatch, &uri
		batch = append(batch, ev)
	}
	s, err := sample.Generate(sample.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	winners := s.Winners()
	var metrics []schemas.MetricMinuteSpeed
	for _, m := range sample.MetricsMinute(winners) {
		metrics = append(metrics, schemas.MetricMinuteSpeed{MetricMinute: m, Pane: schemas.Pane{PaneIndex: 3, PaneTiming: "EARLY", ProcessedAt: m.WindowEnd}})
	}
	var sessions []schemas.SessionSpeed
	for _, x := range sample.Sessions(winners, 30*time.Minute) {
		sessions = append(sessions, schemas.SessionSpeed{Session: x, Pane: schemas.Pane{PaneIndex: 3, PaneTiming: "EARLY", ProcessedAt: x.SessionEnd}})
	}
	for b.Loop() {
		start := time.Now()
		sp := sizeOf(b, speed)
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(len(speed)), "events-speed-encode-ns/row")
		bt := sizeOf(b, batch)
		mt, ss := sizeOf(b, metrics), sizeOf(b, sessions)
		b.ReportMetric(float64(sp)/float64(len(speed)), "events-speed-bytes/row")
		b.ReportMetric(float64(sp)/float64(records), "events-speed-bytes/record")
		b.ReportMetric(float64(bt)/float64(len(batch)), "events-batch-bytes/row")
		b.ReportMetric(float64(mt)/float64(len(metrics)), "metrics-bytes/row")
		b.ReportMetric(float64(ss)/float64(len(sessions)), "sessions-bytes/row")
		b.ReportMetric(float64(len(winners))/float64(len(sessions)), "sample-events/session")
	}
}
