package batchjob

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/railyard/railyard/schemas"
)

// dayTotals is what the serving views show of one event day: the
// totals an analyst reads from events, metrics_minute, metrics_hourly
// and sessions, with the layer each row comes from.
func (e *env) dayTotals(t *testing.T, day string) []string {
	t.Helper()
	d, err := time.Parse(schemas.DayLayout, day)
	if err != nil {
		t.Fatal(err)
	}
	in := func(col string) string {
		return fmt.Sprintf("%s >= TIMESTAMP('%s') AND %s < TIMESTAMP('%s')", col, d.Format(time.RFC3339), col, d.AddDate(0, 0, 1).Format(time.RFC3339))
	}
	var rows []string
	for _, q := range []string{
		"SELECT 'events', layer, COUNT(*), COUNT(DISTINCT event_id), COUNT(DISTINCT user_id) FROM {ds}.events WHERE " + in("event_time") + " GROUP BY layer",
		"SELECT 'metrics_minute', layer, COUNT(*), SUM(events), ROUND(SUM(value_sum), 3) FROM {ds}.metrics_minute WHERE " + in("window_start") + " GROUP BY layer",
		"SELECT 'metrics_hourly', layer, COUNT(*), SUM(events), SUM(users), ROUND(SUM(value_sum), 3) FROM {ds}.metrics_hourly WHERE " + in("hour_start") + " GROUP BY layer",
		"SELECT 'sessions', layer, COUNT(*), SUM(events) FROM {ds}.sessions WHERE " + in("session_start") + " GROUP BY layer",
	} {
		rows = append(rows, e.db.Query(t, q)...)
	}
	return rows
}

// coverage is batch_coverage: which run last covered which table's day.
func (e *env) coverage(t *testing.T) []string {
	t.Helper()
	return e.db.Query(t, "SELECT table_name, FORMAT_TIMESTAMP('%F', day_start), run_id FROM {ds}.batch_coverage")
}

// TestBatchInputReadsWholeLakeDays covers two days of the sample lake
// with --lake/--from/--to, then runs --input over part of one day (it
// must stop before anything starts and leave every view as it was) and
// over the whole of it (it must run and replace the day).
func TestBatchInputReadsWholeLakeDays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the BigQuery emulator")
	}
	ctx := context.Background()
	e := startEnv(t, "whole_days")
	const other, day = "2026-11-01", "2026-11-02"
	e.run(t, "cover", other, day)
	covered := e.coverage(t)
	otherTotals, dayTotals := e.dayTotals(t, other), e.dayTotals(t, day)
	if len(dayTotals) != 4 || !strings.HasPrefix(dayTotals[0], "events|batch|") {
		t.Fatalf("the views show day %s as %v; want one batch row from each view", day, dayTotals)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if got := e.dayTotals(t, day); !slices.Equal(got, dayTotals) {
			t.Errorf("the views' totals for %s changed:\n got %v\nwant %v", day, got, dayTotals)
		}
		if got := e.dayTotals(t, other); !slices.Equal(got, otherTotals) {
			t.Errorf("the views' totals for %s changed:\n got %v\nwant %v", other, got, otherTotals)
		}
		if got := e.coverage(t); !slices.Equal(got, covered) {
			t.Errorf("batch_coverage changed:\n got %v\nwant %v", got, covered)
		}
	}

	for _, tc := range []struct {
		name, input, want string
	}{
		{"an input of one hour of a covered day stops and changes nothing",
			"gs://lake/raw/dt=" + day + "/hr=05/*",
			"day 2026-11-02 of lake gs://lake: 3 of its 42 files\nRead whole days instead:\n  --lake=gs://lake --from=2026-11-02 --to=2026-11-02"},
		{"an input of one file of a local lake stops and changes nothing",
			filepath.Join("..", "..", "..", "testdata", "sample", "lake", "raw", "dt="+day, "hr=05", "stream-20261102T05.jsonl.gz"),
			"day 2026-11-02 of lake ../../../testdata/sample/lake: 1 of its 42 files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(ctx, Config{Destination: e.dest, Inputs: []string{tc.input}, SessionGap: DefaultSessionGap, RunID: "part-of-a-day"})
			var partial *PartialDaysError
			if !errors.As(err, &partial) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run(--input=%s) = %v; want a *PartialDaysError saying %q", tc.input, err, tc.want)
			}
			unchanged(t)
		})
	}

	t.Run("an input of every file of the day runs and replaces the day", func(t *testing.T) {
		// A file added to the day since it was covered: the whole-day
		// run must bring its event in.
		client, err := storage.NewClient(ctx, option.WithoutAuthentication())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		w := client.Bucket("lake").Object("raw/dt=" + day + "/hr=23/added-later.jsonl").NewWriter(ctx)
		fmt.Fprintf(w, `{"event_id":"added-later","event_type":"page.view","event_time":"%sT23:30:00Z","source":"web-shop","user_id":"u-added","value":2}`+"\n", day)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(ctx, Config{Destination: e.dest, Inputs: []string{"gs://lake/raw/dt=" + day + "/**"}, SessionGap: DefaultSessionGap, RunID: "whole-day"}); err != nil {
			t.Fatalf("Run over every file of %s: %v", day, err)
		}
		got := e.db.Query(t, "SELECT layer, event_type, user_id FROM {ds}.events WHERE event_id = 'added-later'")
		if fmt.Sprint(got) != "[batch|page.view|u-added]" {
			t.Errorf("the event added to %s: %v, want it in the events view from the batch layer", day, got)
		}
		events := func(totals []string) string { return totals[0] }
		var n, distinct, users int
		fmt.Sscanf(strings.ReplaceAll(events(dayTotals), "|", " "), "events batch %d %d %d", &n, &distinct, &users)
		if want := fmt.Sprintf("events|batch|%d|%d|%d", n+1, distinct+1, users+1); events(e.dayTotals(t, day)) != want {
			t.Errorf("events view for %s: %s, want %s (the day as covered, plus the added event)", day, events(e.dayTotals(t, day)), want)
		}
		if got := e.dayTotals(t, other); !slices.Equal(got, otherTotals) {
			t.Errorf("the views' totals for %s changed:\n got %v\nwant %v", other, got, otherTotals)
		}
	})
}
