package bqsink

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func init() {
	register.DoFn1x1[schemas.DeadLetter, string](&summarizeDeadLetterFn{})
}

// summarizeDeadLetterFn reduces a dead letter to what a test can compare:
// stage, reason, source_uri, message_id and the event_id in its payload.
type summarizeDeadLetterFn struct{}

func (*summarizeDeadLetterFn) ProcessElement(dl schemas.DeadLetter) string {
	var payload struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(dl.Payload, &payload); err != nil {
		payload.EventID = "(payload is not JSON: " + err.Error() + ")"
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s", dl.Layer, dl.Stage, dl.Reason, ptrString(dl.SourceURI), ptrString(dl.MessageID), payload.EventID)
}

// replace runs ReplacePartitions on Prism and checks the dead letters it
// returns (as summarizeDeadLetterFn writes them). It returns the pipeline's
// counters by name.
func replace(t *testing.T, cfg Config, tableName string, rows any, days []string, wantDead ...string) map[string]int64 {
	t.Helper()
	table, err := schemas.LookupTable(tableName)
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	dead := ReplacePartitions(s, cfg, table, beam.CreateList(s, rows), days)
	summaries := beam.ParDo(s, &summarizeDeadLetterFn{}, dead)
	if len(wantDead) == 0 {
		passert.Empty(s, summaries)
	} else {
		want := make([]any, len(wantDead))
		for i, w := range wantDead {
			want[i] = w
		}
		passert.Equals(s, summaries, want...)
	}
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	counters := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == metricnames.Namespace {
			counters[c.Key.Name] += c.Result()
		}
	}
	return counters
}

func event(id, at string) schemas.Event {
	return schemas.Event{
		EventID:    id,
		EventType:  "page.view",
		EventTime:  micros(at),
		Source:     "web-shop",
		IngestTime: micros(at) + 1_500_000,
		Layer:      schemas.LayerBatch,
		SourceURI:  ptr("gs://lake/raw/dt=" + at[:10] + "/hr=00/a.jsonl.gz#L" + id),
	}
}

// fullEvent has every column set, nested JSON and a microsecond time.
func fullEvent(id, at string) schemas.Event {
	e := event(id, at)
	e.Platform, e.UserID, e.SessionID, e.Country = ptr("ios"), ptr("u-"+id), ptr("s-"+id), ptr("FR")
	e.Value = ptr(-12.125)
	e.Properties = ptr(`{"cart":{"items":[{"sku":"a","qty":2}],"total":9.5},"ok":true}`)
	e.Extra = ptr(`{"campaign":"spring","n":null}`)
	e.MessageID = ptr("msg-" + id)
	return e
}

func TestReplacePartitions(t *testing.T) {
	client := startBigQuery(t)
	cfg := Config{Project: testenv.Project, Dataset: "railyard", RunID: "test-run"}
	if err := Ensure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	day1 := []schemas.Event{
		fullEvent("e1", "2024-01-01T10:20:30.123456Z"),
		event("e2", "2024-01-01T00:00:00Z"),
		event("e3", "2024-01-01T23:59:59.999999Z"),
	}
	day2 := []schemas.Event{
		event("e4", "2024-01-02T00:00:00Z"),
		fullEvent("e5", "2024-01-02T08:00:00.000001Z"),
	}
	all := append(append([]schemas.Event{}, day1...), day2...)

	t.Run("writes every row with its values", func(t *testing.T) {
		counters := replace(t, cfg, schemas.TableEventsBatch, all, nil)
		assertEvents(t, client, cfg, all)
		if got := counters["rows_written_events_batch"]; got != 5 {
			t.Errorf("rows_written_events_batch = %d, want 5", got)
		}
	})

	t.Run("a second identical run leaves the same rows", func(t *testing.T) {
		replace(t, cfg, schemas.TableEventsBatch, all, []string{"2024-01-01", "2024-01-02"})
		assertEvents(t, client, cfg, all)
	})

	t.Run("changed rows for one day replace that day only", func(t *testing.T) {
		changed := event("e4", "2024-01-02T00:00:00Z")
		changed.Value = ptr(42.0)
		newDay2 := []schemas.Event{changed, event("e6", "2024-01-02T12:00:00Z")}
		replace(t, cfg, schemas.TableEventsBatch, newDay2, nil)
		assertEvents(t, client, cfg, append(append([]schemas.Event{}, day1...), newDay2...))
		day2 = newDay2
	})

	t.Run("a listed day without rows is emptied", func(t *testing.T) {
		replace(t, cfg, schemas.TableEventsBatch, []schemas.Event{}, []string{"2024-01-01"})
		assertEvents(t, client, cfg, day2)
	})

	t.Run("a row BigQuery would reject becomes a dead letter and its day is still replaced", func(t *testing.T) {
		replace(t, cfg, schemas.TableEventsBatch, []schemas.Event{event("e7", "2024-01-03T01:00:00Z")}, nil)
		badAlone := fullEvent("e8", "2024-01-03T02:00:00Z")
		badAlone.Properties = ptr(`{"unterminated":`)
		badWithGood := event("e9", "2024-01-04T02:00:00Z")
		badWithGood.Extra = ptr(`not json`)
		good := event("e10", "2024-01-04T03:00:00Z")
		counters := replace(t, cfg, schemas.TableEventsBatch, []schemas.Event{badAlone, badWithGood, good}, nil,
			"batch|write_events_batch|write_failed|gs://lake/raw/dt=2024-01-03/hr=00/a.jsonl.gz#Le8|msg-e8|e8",
			"batch|write_events_batch|write_failed|gs://lake/raw/dt=2024-01-04/hr=00/a.jsonl.gz#Le9|(no source)|e9",
		)
		assertEvents(t, client, cfg, append(append([]schemas.Event{}, day2...), good))
		if counters["write_failed"] != 2 || counters["rows_written_events_batch"] != 1 {
			t.Errorf("counters %v, want write_failed 2, rows_written_events_batch 1", counters)
		}
		day2 = append(day2, good)
	})

	t.Run("a retried call, after an attempt that crashed before its MERGE, leaves the same rows", func(t *testing.T) {
		fn := &replaceDayFn{Config: cfg.withServer(), Table: schemas.TableEventsBatch}
		if err := fn.Setup(); err != nil {
			t.Fatal(err)
		}
		defer fn.Teardown()
		day6 := []schemas.Event{event("e11", "2024-01-06T01:00:00Z"), fullEvent("e12", "2024-01-06T02:00:00Z")}
		var encoded [][]byte
		for _, e := range day6 {
			data, err := fn.enc.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			encoded = append(encoded, data)
		}
		// The crashed attempt: staged and committed, never merged.
		litter, err := fn.w.createStaging(t.Context(), stagingName(fn.Table, "20240106", cfg.RunID), fn.table.Schema(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fn.w.write(t.Context(), litter, fn.enc.Descriptor(), slices.Values(encoded)); err != nil {
			t.Fatal(err)
		}
		md, err := litter.Metadata(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if until := time.Until(md.ExpirationTime); until <= 0 || until > time.Hour {
			t.Errorf("the staging table expires in %v, want within the hour", until)
		}
		for attempt := 0; attempt < 2; attempt++ {
			err := fn.ProcessElement(t.Context(), "2024-01-06", sliceIter(encoded), sliceIter([]bool{}),
				func(dl schemas.DeadLetter) { t.Errorf("dead letter %+v", dl) })
			if err != nil {
				t.Fatalf("attempt %d: %v", attempt, err)
			}
		}
		day2 = append(day2, day6...)
		assertEvents(t, client, cfg, day2)
		if err := litter.Delete(t.Context()); err != nil {
			t.Error(err)
		}
	})

	t.Run("writes repeated and float columns", func(t *testing.T) {
		sessions := []schemas.Session{
			{SessionStart: micros("2024-01-05T10:00:00Z"), SessionEnd: micros("2024-01-05T10:30:00.5Z"), UserID: "u1", DurationSeconds: 1800.5, Events: 3, Sources: []string{"app", "web"}, GapSeconds: 1800},
			{SessionStart: micros("2024-01-05T11:00:00Z"), SessionEnd: micros("2024-01-05T11:00:00Z"), UserID: "u2", Events: 1, Sources: []string{}, GapSeconds: 1800},
		}
		replace(t, cfg, schemas.TableSessionsBatch, sessions, nil)
		rows := testenv.Rows(t, client, "SELECT * FROM "+tableRef(cfg.Project, cfg.Dataset, schemas.TableSessionsBatch)+" ORDER BY user_id")
		var got []schemas.Session
		for _, r := range rows {
			got = append(got, schemas.Session{
				SessionStart: r["session_start"].(time.Time).UnixMicro(), SessionEnd: r["session_end"].(time.Time).UnixMicro(),
				UserID: r["user_id"].(string), DurationSeconds: r["duration_seconds"].(float64), Events: r["events"].(int64),
				Sources: strs(r["sources"]), GapSeconds: r["gap_seconds"].(int64),
			})
		}
		if diff := cmp.Diff(sessions, got); diff != "" {
			t.Errorf("sessions_batch (-want +got):\n%s", diff)
		}
	})

	t.Run("writes many days at once", func(t *testing.T) {
		var rows []schemas.Event
		for d := 1; d <= 8; d++ {
			for i := 0; i < 25; i++ {
				rows = append(rows, fullEvent(fmt.Sprintf("m%02d-%02d", d, i), fmt.Sprintf("2024-02-%02dT%02d:00:00Z", d, i%24)))
			}
		}
		for run := 0; run < 2; run++ {
			replace(t, cfg, schemas.TableEventsBatch, rows, nil)
		}
		got := testenv.Rows(t, client, "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM "+
			tableRef(cfg.Project, cfg.Dataset, schemas.TableEventsBatch)+" WHERE event_time >= TIMESTAMP '2024-02-01 00:00:00+00'")
		if got[0]["n"] != int64(200) || got[0]["ids"] != int64(200) {
			t.Errorf("February holds %v rows, %v distinct, want 200 of each", got[0]["n"], got[0]["ids"])
		}
	})

	t.Run("leaves no staging table behind", func(t *testing.T) {
		it := client.Dataset(cfg.Dataset).Tables(t.Context())
		for {
			tbl, err := it.Next()
			if err != nil {
				break
			}
			if strings.HasPrefix(tbl.TableID, "_railyard_stage_") {
				t.Errorf("staging table %s remains", tbl.TableID)
			}
		}
	})
}

// assertEvents reads events_batch back and compares it with want, value
// for value: timestamps to the microsecond, JSON by meaning (BigQuery
// normalizes JSON text), NULLs as nil.
func assertEvents(t *testing.T, client *bigquery.Client, cfg Config, want []schemas.Event) {
	t.Helper()
	assertTableEvents(t, client, cfg, schemas.TableEventsBatch, want)
}

// assertTableEvents is assertEvents for any table of events.
func assertTableEvents(t *testing.T, client *bigquery.Client, cfg Config, table string, want []schemas.Event) {
	t.Helper()
	rows := testenv.Rows(t, client, "SELECT * FROM "+tableRef(cfg.Project, cfg.Dataset, table))
	got := make([]schemas.Event, len(rows))
	for i, r := range rows {
		got[i] = schemas.Event{
			EventID: r["event_id"].(string), EventType: r["event_type"].(string), EventTime: r["event_time"].(time.Time).UnixMicro(),
			Source: r["source"].(string), Platform: strp(r["platform"]), UserID: strp(r["user_id"]), SessionID: strp(r["session_id"]),
			Country: strp(r["country"]), Properties: jsonp(r["properties"]), Extra: jsonp(r["extra"]),
			IngestTime: r["ingest_time"].(time.Time).UnixMicro(), Layer: r["layer"].(string),
			MessageID: strp(r["message_id"]), SourceURI: strp(r["source_uri"]),
		}
		if v, ok := r["value"].(float64); ok {
			got[i].Value = &v
		}
	}
	normalized := make([]schemas.Event, len(want))
	for i, e := range want {
		e.Properties, e.Extra = jsonp(e.Properties), jsonp(e.Extra)
		normalized[i] = e
	}
	byID := func(es []schemas.Event) { sort.Slice(es, func(i, j int) bool { return es[i].EventID < es[j].EventID }) }
	byID(got)
	byID(normalized)
	if diff := cmp.Diff(normalized, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", table, diff)
	}
}

func strp(v any) *string {
	switch s := v.(type) {
	case string:
		return &s
	case *string:
		return s
	}
	return nil
}

// jsonp returns a JSON document re-encoded with sorted keys, so that two
// texts of the same document compare equal.
func jsonp(v any) *string {
	s := strp(v)
	if s == nil {
		return nil
	}
	var doc any
	if err := json.Unmarshal([]byte(*s), &doc); err != nil {
		return s
	}
	out, _ := json.Marshal(doc)
	norm := string(out)
	return &norm
}

func strs(v any) []string {
	out := []string{}
	for _, x := range v.([]bigquery.Value) {
		out = append(out, x.(string))
	}
	return out
}

// sliceIter is a Beam iterator over values.
func sliceIter[T any](values []T) func(*T) bool {
	return func(v *T) bool {
		if len(values) == 0 {
			return false
		}
		*v, values = values[0], values[1:]
		return true
	}
}
