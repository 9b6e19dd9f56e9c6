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

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/config"
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
	te := testenv.Start(t, testenv.Emulators{BigQuery: true})
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

	dest := config.Destination{Project: testenv.Project, Dataset: "large_day"}
	res, err := Run(context.Background(), Config{Destination: dest, Inputs: []string{file}, SessionGap: DefaultSessionGap, RunID: "large-day"})
	if err != nil {
		t.Fatalf("batch job: %v", err)
	}
	c := testenv.Counters(res)
	if c["write_failed"] != 0 || c["rows_written_events_batch"] != n {
		t.Errorf("counters %v, want rows_written_events_batch %d and write_failed 0", c, n)
	}

	db := te.Dataset("large_day")
	if got := db.One(t, "SELECT COUNT(DISTINCT event_id) FROM {ds}.events_batch WHERE LENGTH(TO_JSON_STRING(properties)) > 4096"); got != fmt.Sprint(n) {
		t.Errorf("events_batch holds %s events with their properties, want %d", got, n)
	}
	if got := db.One(t, "SELECT SUM(events) FROM {ds}.metrics_minute_batch"); got != fmt.Sprint(n) {
		t.Errorf("metrics_minute_batch counts %s events, want %d", got, n)
	}
}
