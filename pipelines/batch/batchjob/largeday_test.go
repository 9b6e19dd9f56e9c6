package batchjob

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/transforms/bqsink"
)

// TestBatchJobWritesADayLargerThanOneRequest runs the batch job over one
// day whose rows are larger than the BigQuery emulator's 4 MiB request
// limit (1,500 events of 4 KiB properties: about 6.5 MB of rows): the day
// lands whole, in one replace, through as many appends and streams as it
// needs.
func TestBatchJobWritesADayLargerThanOneRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the BigQuery emulator")
	}
	bq := emulators.StartBigQueryForTest(t, testProject)
	for k, v := range bq.Env() {
		t.Setenv(k, v)
	}
	const n, propSize = 1500, 4 << 10
	file := filepath.Join(t.TempDir(), "day.jsonl.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	blob := strings.Repeat("p", propSize)
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := day.Add(time.Duration(i) * 50 * time.Second)
		fmt.Fprintf(zw, `{"event_id":"big-%d","event_type":"page.view","event_time":%q,"source":"web-shop","user_id":"u%d","value":1,"properties":{"blob":%q}}`+"\n",
			i, at.Format(time.RFC3339), i%40, blob)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	dest := config.Destination{Project: testProject, Dataset: "large_day"}
	res, err := Run(context.Background(), Config{Destination: dest, Inputs: []string{file}, SessionGap: DefaultSessionGap, RunID: "large-day"})
	if err != nil {
		t.Fatalf("batch job: %v", err)
	}
	c := map[string]int64{}
	for _, m := range res.Metrics().AllMetrics().Counters() {
		c[m.Key.Name] += m.Result()
	}
	if c["write_failed"] != 0 || c["rows_written_events_batch"] != n {
		t.Errorf("counters %v, want rows_written_events_batch %d and write_failed 0", c, n)
	}

	client, err := bqsink.NewClient(context.Background(), testProject)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	count := func(sql string) int64 {
		t.Helper()
		it, err := client.Query(fmt.Sprintf(sql, "`"+testProject+".large_day")).Read(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var row []bigquery.Value
		if err := it.Next(&row); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return row[0].(int64)
	}
	if got := count("SELECT COUNT(DISTINCT event_id) FROM %s.events_batch` WHERE LENGTH(TO_JSON_STRING(properties)) > 4096"); got != n {
		t.Errorf("events_batch holds %d events with their properties, want %d", got, n)
	}
	if got := count("SELECT SUM(events) FROM %s.metrics_minute_batch`"); got != n {
		t.Errorf("metrics_minute_batch counts %d events, want %d", got, n)
	}
}
