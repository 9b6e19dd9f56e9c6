package batchjob

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"testing"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/config"
)

// A stray or broken object in a lake day costs a dead letter each, not
// the run: the run writes the good lines and records the day as covered.
func TestBatchJobCoversADayWithBrokenFiles(t *testing.T) {
	ctx := context.Background()
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	te.Storage.CreateBucket("lake")
	client, err := te.Storage.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dest: config.Destination{Project: testenv.Project, Dataset: "batch_broken"}, db: te.Dataset("batch_broken"), lake: "gs://lake"}

	event := func(i int) string {
		return fmt.Sprintf(`{"event_id":"e%03d","event_type":"page.view","event_time":"2026-11-01T10:%02d:00Z","source":"web"}`+"\n", i, i%60)
	}
	var good, long bytes.Buffer
	for i := range 5 {
		good.WriteString(event(i))
	}
	for i := 100; i < 400; i++ {
		long.WriteString(event(i))
	}
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	truncated := gz(long.Bytes())
	truncated = truncated[:len(truncated)-20] // the end of the deflate stream and the trailer
	random := make([]byte, 2048)
	for i := range random {
		random[i] = byte(i*7919 + i/3)
	}
	const hour = "raw/dt=2026-11-01/hr=10/"
	objects := map[string][]byte{
		hour + "good.jsonl.gz":      gz(good.Bytes()),
		hour + "empty.jsonl.gz":     nil,
		hour + "plain.jsonl.gz":     good.Bytes(),
		hour + "truncated.jsonl.gz": truncated,
		hour + "random.jsonl.gz":    random,
	}
	for name, data := range objects {
		w := client.Bucket("lake").Object(name).NewWriter(ctx)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(truncated))
	if err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	if _, err := before.ReadFrom(zr); err == nil {
		t.Fatal("the truncated file reads to its end")
	}
	kept := bytes.Count(before.Bytes(), []byte("\n"))
	if kept == 0 {
		t.Fatal("no line of the truncated file decodes before its break; the test needs some")
	}

	res, err := Run(ctx, Config{Destination: e.dest, Lake: e.lake, From: "2026-11-01", To: "2026-11-01", SessionGap: DefaultSessionGap, RunID: "run-broken"})
	if err != nil {
		t.Fatalf("Run = %v, want the broken files as dead letters and the day covered", err)
	}
	c := testenv.Counters(res)

	t.Run("writes the good lines and the lines before the break", func(t *testing.T) {
		if got := e.db.Query(t, "SELECT COUNT(*) FROM {ds}.events_batch"); got[0] != fmt.Sprint(5+kept) {
			t.Errorf("events_batch holds %s events, want %d (5 good, %d before the break)", got[0], 5+kept, kept)
		}
	})
	t.Run("writes one dead letter per broken file, with its bytes", func(t *testing.T) {
		got := e.db.Query(t, "SELECT reason, REGEXP_EXTRACT(source_uri, r'[^/]+$'), LENGTH(payload) FROM {ds}.dead_letter WHERE layer = 'batch'")
		want := []string{
			fmt.Sprintf("corrupt_gzip|truncated.jsonl.gz#L%d|%d", kept+1, len(truncated)),
			"empty_file|empty.jsonl.gz#L1|0",
			fmt.Sprintf("not_gzip|plain.jsonl.gz#L1|%d", good.Len()),
			fmt.Sprintf("not_gzip|random.jsonl.gz#L1|%d", len(random)),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("batch dead letters:\n got %v\nwant %v", got, want)
		}
	})
	t.Run("records the day as covered", func(t *testing.T) {
		got := e.db.Query(t, "SELECT DISTINCT FORMAT_TIMESTAMP('%F', day_start), run_id FROM {ds}.batch_coverage")
		if fmt.Sprint(got) != "[2026-11-01|run-broken]" {
			t.Errorf("batch_coverage holds %v, want 2026-11-01 covered by run-broken", got)
		}
	})
	t.Run("reconciles: lines read = events + duplicates + dead letters", func(t *testing.T) {
		if want := int64(5 + kept + 4); c["lake_lines_read"] != want || c["rows_written_dead_letter"] != 4 {
			t.Errorf("lake_lines_read = %d, rows_written_dead_letter = %d; want %d and 4", c["lake_lines_read"], c["rows_written_dead_letter"], want)
		}
	})
}
