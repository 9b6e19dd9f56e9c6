package bqsink

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

func deadLetter(layer, sourceURI, stage, reason string) schemas.DeadLetter {
	dl := schemas.DeadLetter{
		FailedAt: micros("2024-02-01T12:00:00Z"),
		Layer:    layer,
		Stage:    stage,
		Reason:   reason,
		Error:    reason + " at " + sourceURI,
		Payload:  []byte(`{"raw":"` + sourceURI + `"}`),
	}
	if sourceURI != "" {
		dl.SourceURI = ptr(sourceURI)
	}
	return dl
}

// replaceDeadLetters runs ReplaceDeadLetters on Prism.
func replaceDeadLetters(t *testing.T, cfg Config, dls []schemas.DeadLetter, files []string) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	ReplaceDeadLetters(s, cfg, beam.CreateList(s, dls), beam.CreateList(s, files))
	if err := ptest.Run(p); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
}

// insertDeadLetters writes rows the way another run would have left
// them, with DML. (Not insertAll: the emulator stores a BYTES value sent
// through insertAll as its base64 text.)
func insertDeadLetters(t *testing.T, client *bigquery.Client, cfg Config, dls ...schemas.DeadLetter) {
	t.Helper()
	for _, dl := range dls {
		q := client.Query("INSERT INTO " + tableRef(cfg.Project, cfg.Dataset, schemas.TableDeadLetter) +
			" (failed_at, layer, stage, reason, error, payload, source_uri) VALUES (@failed_at, @layer, @stage, @reason, @error, FROM_BASE64(@payload), @source_uri)")
		var src bigquery.NullString
		if dl.SourceURI != nil {
			src = bigquery.NullString{StringVal: *dl.SourceURI, Valid: true}
		}
		q.Parameters = []bigquery.QueryParameter{
			{Name: "failed_at", Value: time.UnixMicro(dl.FailedAt)},
			{Name: "layer", Value: dl.Layer},
			{Name: "stage", Value: dl.Stage},
			{Name: "reason", Value: dl.Reason},
			{Name: "error", Value: dl.Error},
			{Name: "payload", Value: base64.StdEncoding.EncodeToString(dl.Payload)},
			{Name: "source_uri", Value: src},
		}
		job, err := q.Run(context.Background())
		if err == nil {
			var st *bigquery.JobStatus
			if st, err = job.Wait(context.Background()); err == nil {
				err = st.Err()
			}
		}
		if err != nil {
			t.Fatalf("insert dead letter: %v", err)
		}
	}
}

// readDeadLetters returns dead_letter as sorted one-line summaries.
func readDeadLetters(t *testing.T, client *bigquery.Client, cfg Config) []string {
	t.Helper()
	rows := testenv.Rows(t, client, "SELECT * FROM "+tableRef(cfg.Project, cfg.Dataset, schemas.TableDeadLetter))
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%s %s %s %s | %s | %s | %s", r["layer"], ptrString(strp(r["source_uri"])), r["stage"], r["reason"],
			r["error"], r["payload"], ptrString(strp(r["attributes"])))
	}
	sort.Strings(out)
	return out
}

func TestReplaceDeadLetters(t *testing.T) {
	client := startBigQuery(t)
	cfg := Config{Project: testenv.Project, Dataset: "railyard", RunID: "test-run"}
	if err := Ensure(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	const f1, f2, f3, f4, f9 = "gs://lake/raw/f1.jsonl.gz", "gs://lake/raw/f2.jsonl.gz", "gs://lake/raw/f3.jsonl.gz", "gs://lake/raw/f4.jsonl.gz", "gs://lake/raw/f9.jsonl.gz"
	insertDeadLetters(t, client, cfg,
		deadLetter(schemas.LayerSpeed, "", "decode", "invalid_json"),
		deadLetter(schemas.LayerSpeed, f1+"#L99", "decode", "too_large"), // a speed row naming a batch file: never touched
		deadLetter(schemas.LayerBatch, f1+"#L1", "decode", "old_reason"),
		deadLetter(schemas.LayerBatch, f3+"#L3", "decode", "invalid_json"), // f3 is read again and is clean now
		deadLetter(schemas.LayerBatch, f9+"#L9", "decode", "invalid_json"), // f9 is not part of the run
	)
	odd := deadLetter("", f4+"#L4", "decode", "invalid_utf8")
	odd.Error = "bad byte \xff in record"
	odd.Payload = []byte{0xff, 0xfe, 0x00}
	odd.Attributes = ptr(`{"k":`)
	run := []schemas.DeadLetter{
		deadLetter(schemas.LayerBatch, f1+"#L1", "decode", "invalid_json"),
		deadLetter(schemas.LayerBatch, f1+"#L5", "decode", "missing_event_id"),
		deadLetter(schemas.LayerBatch, f2+"#L2", "write_events_batch", "write_failed"),
		odd, // f4 is not in files: its file is replaced all the same
	}
	files := []string{f1, f2, f3}

	want := []string{
		"batch " + f1 + "#L1 decode invalid_json | invalid_json at " + f1 + "#L1 | {\"raw\":\"" + f1 + "#L1\"} | (no source)",
		"batch " + f1 + "#L5 decode missing_event_id | missing_event_id at " + f1 + "#L5 | {\"raw\":\"" + f1 + "#L5\"} | (no source)",
		"batch " + f2 + "#L2 write_events_batch write_failed | write_failed at " + f2 + "#L2 | {\"raw\":\"" + f2 + "#L2\"} | (no source)",
		"batch " + f4 + "#L4 decode invalid_utf8 | bad byte \uFFFD in record | \xff\xfe\x00 | \"{\\\"k\\\":\"",
		"batch " + f9 + "#L9 decode invalid_json | invalid_json at " + f9 + "#L9 | {\"raw\":\"" + f9 + "#L9\"} | (no source)",
		"speed " + f1 + "#L99 decode too_large | too_large at " + f1 + "#L99 | {\"raw\":\"" + f1 + "#L99\"} | (no source)",
		"speed (no source) decode invalid_json | invalid_json at  | {\"raw\":\"\"} | (no source)",
	}
	sort.Strings(want)

	t.Run("replaces the batch dead letters of the files read, and only those", func(t *testing.T) {
		replaceDeadLetters(t, cfg, run, files)
		if diff := cmp.Diff(want, readDeadLetters(t, client, cfg)); diff != "" {
			t.Errorf("dead_letter (-want +got):\n%s", diff)
		}
	})

	t.Run("a rerun leaves the same dead letters", func(t *testing.T) {
		replaceDeadLetters(t, cfg, run, files)
		if diff := cmp.Diff(want, readDeadLetters(t, client, cfg)); diff != "" {
			t.Errorf("dead_letter (-want +got):\n%s", diff)
		}
	})

	t.Run("a file read again without dead letters loses its old ones", func(t *testing.T) {
		replaceDeadLetters(t, cfg, run[1:2], []string{f1})
		var kept []string
		for _, w := range want {
			if !strings.HasPrefix(w, "batch "+f1+"#L1 ") {
				kept = append(kept, w)
			}
		}
		if diff := cmp.Diff(kept, readDeadLetters(t, client, cfg)); diff != "" {
			t.Errorf("dead_letter (-want +got):\n%s", diff)
		}
	})
}
