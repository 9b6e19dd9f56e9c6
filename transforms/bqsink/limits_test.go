package bqsink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

// emulatorRequestLimit is the largest message the emulator's gRPC server
// takes: 4 MiB, gRPC's default. BigQuery takes 10 MB per AppendRows.
const emulatorRequestLimit = 4 << 20

// bigEvents returns n events of day whose properties hold size bytes each.
func bigEvents(prefix, day string, n, size int) []schemas.Event {
	events := make([]schemas.Event, n)
	blob := strings.Repeat("x", size)
	for i := range events {
		e := speedEvent(fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("%sT%02d:%02d:00Z", day, i/60%24, i%60), ptr(fmt.Sprintf("m-%s%d", prefix, i)))
		e.Properties = ptr(`{"blob":"` + blob + `"}`)
		events[i] = e
	}
	return events
}

// bigDeadLetters returns n dead letters with payloads of size bytes.
func bigDeadLetters(layer string, n, size int) []schemas.DeadLetter {
	dls := make([]schemas.DeadLetter, n)
	for i := range dls {
		dls[i] = schemas.DeadLetter{
			FailedAt: micros("2024-06-01T00:00:00Z") + int64(i), Layer: layer, Stage: schemas.StageDecode, Reason: "too_large",
			Error: "record larger than 1 MiB", Payload: []byte(strings.Repeat(string(rune('a'+i%26)), size)),
			MessageID: ptr(fmt.Sprintf("m-dl%d", i)),
		}
		if layer == schemas.LayerBatch {
			dls[i].SourceURI = ptr(fmt.Sprintf("gs://lake/raw/dt=2024-06-01/hr=00/big.jsonl.gz#L%d", i+1))
		}
	}
	return dls
}

// TestWritesCrossTheServerRequestLimit writes more than one request's worth
// of rows in one bundle, one day and one batch of dead letters: each sink
// splits its appends below the server's limit (the emulator's 4 MiB here),
// and on the emulator, whose pending streams take one append each, writes
// a day through as many streams as it needs.
func TestWritesCrossTheServerRequestLimit(t *testing.T) {
	client := startBigQuery(t)
	cfg := Config{Project: testenv.Project, Dataset: "limits", RunID: "limits"}
	if err := Ensure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	const eventSize = 100 << 10 // 100 KiB: 60 events make 6 MiB
	count := func(table, where string) int64 {
		t.Helper()
		rows := testenv.Rows(t, client, "SELECT COUNT(*) AS n FROM "+tableRef(cfg.Project, cfg.Dataset, table)+" WHERE "+where)
		return rows[0]["n"].(int64)
	}

	t.Run("the streaming sink lands a bundle of 6 MiB of events", func(t *testing.T) {
		events := bigEvents("s", "2024-06-01", 60, eventSize)
		p, s, written, dead := streamPipeline(t, cfg, schemas.TableEventsSpeed, events)
		passert.Count(s, written, "written", len(events))
		passert.Empty(s, dead)
		counters := runCounters(t, p)
		if got := count(schemas.TableEventsSpeed, "TRUE"); got != int64(len(events)) {
			t.Errorf("events_speed holds %d rows, want %d", got, len(events))
		}
		if counters["write_failed"] != 0 {
			t.Errorf("counters %v, want write_failed 0", counters)
		}
	})

	t.Run("the streaming sink lands dead letters of 1 MiB payloads, six at once", func(t *testing.T) {
		dls := bigDeadLetters(schemas.LayerSpeed, 6, 1<<20)
		table, _ := schemas.LookupTable(schemas.TableDeadLetter)
		p, s := beam.NewPipelineWithRoot()
		written, dead := Stream(s, cfg, table, beam.CreateList(s, dls))
		passert.Count(s, written, "written", len(dls))
		passert.Empty(s, dead)
		if err := ptest.Run(p); err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		if got := count(schemas.TableDeadLetter, "layer = 'speed' AND LENGTH(payload) = 1048576"); got != int64(len(dls)) {
			t.Errorf("dead_letter holds %d speed rows of 1 MiB payloads, want %d", got, len(dls))
		}
	})

	t.Run("a batch day of 6 MiB replaces the day at once", func(t *testing.T) {
		events := bigEvents("b", "2024-06-02", 60, eventSize)
		for i := range events {
			events[i].Layer, events[i].MessageID = schemas.LayerBatch, nil
			events[i].SourceURI = ptr(fmt.Sprintf("gs://lake/raw/dt=2024-06-02/hr=00/a.jsonl.gz#L%d", i+1))
		}
		counters := replace(t, cfg, schemas.TableEventsBatch, events, nil)
		if got := count(schemas.TableEventsBatch, "TRUE"); got != int64(len(events)) {
			t.Errorf("events_batch holds %d rows, want %d", got, len(events))
		}
		if counters["write_failed"] != 0 || counters["rows_written_events_batch"] != int64(len(events)) {
			t.Errorf("counters %v, want rows_written_events_batch %d, write_failed 0", counters, len(events))
		}
	})

	t.Run("the batch layer's dead letters of 1 MiB payloads, six at once", func(t *testing.T) {
		dls := bigDeadLetters(schemas.LayerBatch, 6, 1<<20)
		replaceDeadLetters(t, cfg, dls, []string{"gs://lake/raw/dt=2024-06-01/hr=00/big.jsonl.gz"})
		if got := count(schemas.TableDeadLetter, "layer = 'batch' AND LENGTH(payload) = 1048576"); got != int64(len(dls)) {
			t.Errorf("dead_letter holds %d batch rows of 1 MiB payloads, want %d", got, len(dls))
		}
	})
}

func TestServerLimits(t *testing.T) {
	for name, srv := range map[string]Server{"BigQuery": BigQueryServer, "the emulator": EmulatorServer} {
		// A request carries the rows, a few bytes of framing per row and
		// the schema descriptor (a few KiB).
		limit := 10_000_000
		if srv == EmulatorServer {
			limit = emulatorRequestLimit
		}
		if headroom := limit - srv.AppendBytes - 2*maxAppendRows; headroom < 64<<10 {
			t.Errorf("against %s, appends of %d bytes leave %d bytes of the %d-byte request limit", name, srv.AppendBytes, headroom, limit)
		}
	}
}

// TestStreamWaitsOutAnOutage cuts the emulator off (a proxy between the
// clients and both its servers refuses connections and has closed every
// open one) while a bundle is being written, and brings it back: the rows
// land, none as a dead letter, and the outage is counted.
func TestStreamWaitsOutAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the BigQuery emulator")
	}
	em := emulators.StartBigQueryForTest(t, testenv.Project)
	rest := emulators.StartProxyForTest(t, em.Host)
	grpc := emulators.StartProxyForTest(t, em.GRPCHost)
	t.Setenv(EnvEmulatorHost, rest.Addr)
	t.Setenv(EnvStorageEmulatorHost, grpc.Addr)
	client, err := NewClient(t.Context(), testenv.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cfg := Config{Project: testenv.Project, Dataset: "outage"}
	if err := Ensure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}

	// A streamFn with its real default stream, driven bundle by bundle.
	f := &streamFn{Config: cfg.withServer(), Table: schemas.TableEventsSpeed}
	if err := f.Setup(); err != nil {
		t.Fatal(err)
	}
	f.policy.outage.Max = time.Second // keep the test's wait after the outage short
	defer f.Teardown()
	bundle := func(events []schemas.Event) bundleResult {
		var res bundleResult
		emitWritten := func(_ beam.EventTime, id string) { res.written = append(res.written, id) }
		emitDead := func(_ beam.EventTime, dl schemas.DeadLetter) { res.dead = append(res.dead, dl) }
		ctx := t.Context()
		f.StartBundle(ctx, emitWritten, emitDead)
		for i, e := range events {
			if err := f.ProcessElement(ctx, beam.EventTime(i), e, emitWritten, emitDead); err != nil {
				res.err = err
				return res
			}
		}
		res.err = f.FinishBundle(ctx, emitWritten, emitDead)
		return res
	}
	events := manyEvents(400)
	if res := bundle(events[:200]); res.err != nil || len(res.written) != 200 || len(res.dead) != 0 {
		t.Fatalf("first bundle, before the outage: %v, %d written, %d dead letters", res.err, len(res.written), len(res.dead))
	}
	logs := captureLogs(t)

	const outage = 5 * time.Second
	rest.Down()
	grpc.Down()
	up := time.AfterFunc(outage, func() {
		if err := rest.Up(); err != nil {
			t.Error(err)
		}
		if err := grpc.Up(); err != nil {
			t.Error(err)
		}
	})
	defer up.Stop()
	start := time.Now()
	res := bundle(events[200:])
	if res.err != nil || len(res.written) != 200 || len(res.dead) != 0 {
		t.Fatalf("second bundle, across the outage: %v, %d written, %d dead letters", res.err, len(res.written), len(res.dead))
	}
	if took := time.Since(start); took < outage {
		t.Errorf("the bundle ended after %v, within the %v outage", took, outage)
	}
	if n := logs.count("BigQuery unavailable: the bundle waits and retries; nothing it holds is acknowledged"); n == 0 {
		t.Error("the outage was not logged")
	}
	rows := testenv.Rows(t, client, "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM "+tableRef(cfg.Project, cfg.Dataset, schemas.TableEventsSpeed))
	if rows[0]["n"] != int64(len(events)) || rows[0]["ids"] != int64(len(events)) {
		t.Errorf("events_speed holds %v rows of %v events, want each of the %d once", rows[0]["n"], rows[0]["ids"], len(events))
	}
}

// logLines collects the messages of slog records.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

func (l *logLines) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// captureLogs sends the default logger's records to a logLines for the
// rest of the test.
func captureLogs(t *testing.T) *logLines {
	l := &logLines{}
	old := slog.Default()
	slog.SetDefault(slog.New(l))
	t.Cleanup(func() { slog.SetDefault(old) })
	return l
}
