package serving

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/schemas"
)

// dayTotals is what every serving view says about one event day.
type dayTotals struct {
	Events      int64 // events view: rows
	EventIDs    int64 // events view: distinct event_id
	Value       float64
	EventLayers string // events view: the layers that served the day

	MetricRows, MetricEvents int64
	MetricValue              float64
	MetricLayers             string

	HourlyRows, HourlyEvents, HourlyUsers int64
	HourlyValue                           float64
	HourlyLayers                          string

	Sessions, SessionEvents int64
	SessionLayers           string
}

// wantDay is the fixture's day as served by the batch layer (covered) or
// by the speed layer.
func wantDay(covered bool) dayTotals {
	if covered {
		return dayTotals{
			Events: batchEventsPerDay, EventIDs: batchEventsPerDay, Value: batchValuePerDay, EventLayers: "batch",
			MetricRows: batchMetricRowsDay, MetricEvents: batchEventsPerDay, MetricValue: batchValuePerDay, MetricLayers: "batch",
			// Hours 00, 10 (K1 and K2) and 23; users u1, u2, u3 in hour 10 K1 and u1 in K2.
			HourlyRows: 4, HourlyEvents: batchEventsPerDay, HourlyUsers: 4, HourlyValue: batchValuePerDay, HourlyLayers: "batch",
			Sessions: batchSessionsPerDay, SessionEvents: batchSessionEvents, SessionLayers: "batch",
		}
	}
	return dayTotals{
		Events: speedEventsPerDay, EventIDs: speedEventsPerDay, Value: speedValuePerDay, EventLayers: "speed",
		MetricRows: speedMetricRowsDay, MetricEvents: speedEventsPerDay, MetricValue: speedValuePerDay, MetricLayers: "speed",
		// Users u1, u2 in hour 10 K1 and u1 in K2.
		HourlyRows: 4, HourlyEvents: speedEventsPerDay, HourlyUsers: 3, HourlyValue: speedValuePerDay, HourlyLayers: "speed",
		Sessions: speedSessionsPerDay, SessionEvents: speedSessionEvents, SessionLayers: "speed",
	}
}

// servedDays reads every view's per-day totals.
func (e *env) servedDays() map[string]*dayTotals {
	e.t.Helper()
	out := map[string]*dayTotals{}
	get := func(r map[string]bigquery.Value) *dayTotals {
		d := r["day"].(string)
		if out[d] == nil {
			out[d] = &dayTotals{}
		}
		return out[d]
	}
	for _, r := range e.rows(`SELECT FORMAT_TIMESTAMP('%F', TIMESTAMP_TRUNC(event_time, DAY)) AS day,
  COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids, SUM(value) AS value,
  STRING_AGG(DISTINCT layer ORDER BY layer) AS layers
FROM {events} GROUP BY day`) {
		t := get(r)
		t.Events, t.EventIDs, t.Value, t.EventLayers = toInt(r["n"]), toInt(r["ids"]), toFloat(r["value"]), r["layers"].(string)
	}
	for _, r := range e.rows(`SELECT FORMAT_TIMESTAMP('%F', TIMESTAMP_TRUNC(window_start, DAY)) AS day,
  COUNT(*) AS n, SUM(events) AS events, SUM(value_sum) AS value,
  STRING_AGG(DISTINCT layer ORDER BY layer) AS layers
FROM {metrics_minute} GROUP BY day`) {
		t := get(r)
		t.MetricRows, t.MetricEvents, t.MetricValue, t.MetricLayers = toInt(r["n"]), toInt(r["events"]), toFloat(r["value"]), r["layers"].(string)
	}
	for _, r := range e.rows(`SELECT FORMAT_TIMESTAMP('%F', TIMESTAMP_TRUNC(hour_start, DAY)) AS day,
  COUNT(*) AS n, SUM(events) AS events, SUM(users) AS users, SUM(value_sum) AS value,
  STRING_AGG(DISTINCT layer ORDER BY layer) AS layers
FROM {metrics_hourly} GROUP BY day`) {
		t := get(r)
		t.HourlyRows, t.HourlyEvents, t.HourlyUsers, t.HourlyValue, t.HourlyLayers = toInt(r["n"]), toInt(r["events"]), toInt(r["users"]), toFloat(r["value"]), r["layers"].(string)
	}
	for _, r := range e.rows(`SELECT FORMAT_TIMESTAMP('%F', TIMESTAMP_TRUNC(session_start, DAY)) AS day,
  COUNT(*) AS n, SUM(events) AS events, STRING_AGG(DISTINCT layer ORDER BY layer) AS layers
FROM {sessions} GROUP BY day`) {
		t := get(r)
		t.Sessions, t.SessionEvents, t.SessionLayers = toInt(r["n"]), toInt(r["events"]), r["layers"].(string)
	}
	return out
}

// watermarks reads batch_watermark.
func (e *env) watermarks() map[string]time.Time {
	e.t.Helper()
	out := map[string]time.Time{}
	for _, r := range e.rows(`SELECT table_name, complete_until FROM {batch_watermark}`) {
		out[r["table_name"].(string)] = r["complete_until"].(time.Time)
	}
	return out
}

// checkServing asserts every view's totals for the days, given which days
// the batch layer covers, and the watermark of every batch table (zero:
// none yet).
func (e *env) checkServing(t *testing.T, days []time.Time, covered map[time.Time]bool, watermark time.Time) {
	t.Helper()
	got := e.servedDays()
	var total, wantTotal int64
	for _, d := range days {
		name := d.Format(schemas.DayLayout)
		want := wantDay(covered[d])
		g := got[name]
		delete(got, name)
		if g == nil {
			t.Errorf("day %s vanished from the views; want it served by the %s layer", name, want.EventLayers)
			continue
		}
		if *g != want {
			t.Errorf("day %s (covered: %v):\n got %+v\nwant %+v", name, covered[d], *g, want)
		}
		total += g.Events
		wantTotal += want.Events
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		t.Errorf("day %s is in the views but not in the fixture: %+v", name, *got[name])
	}

	// The whole, across the cut-overs: no gap, no double count.
	all := e.row(`SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM {events}`)
	if toInt(all["n"]) != wantTotal || toInt(all["ids"]) != wantTotal || total != wantTotal {
		t.Errorf("events: %v rows, %v distinct ids, per-day sum %d; want %d of each", all["n"], all["ids"], total, wantTotal)
	}

	e.checkSpans(t, covered)

	// dead_letters does not cut over: both layers' dead letters, always.
	if n := toInt(e.row(`SELECT COUNT(*) AS n FROM {dead_letters}`)["n"]); n != 4 {
		t.Errorf("dead_letters has %d rows, want 4", n)
	}

	// pipeline_health reports the watermark and the holes in the coverage.
	var gaps int64
	if len(covered) > 0 {
		first, last := slices.MinFunc(slices.Collect(maps.Keys(covered)), time.Time.Compare), slices.MaxFunc(slices.Collect(maps.Keys(covered)), time.Time.Compare)
		gaps = int64(last.Sub(first)/(24*time.Hour)) + 1 - int64(len(covered))
	}
	health := e.row(`SELECT DISTINCT batch_complete_until, batch_gap_days FROM {pipeline_health} WHERE layer = 'batch'`)
	if got, _ := health["batch_complete_until"].(time.Time); !got.Equal(watermark) {
		t.Errorf("pipeline_health batch_complete_until = %v, want %v", health["batch_complete_until"], watermark)
	}
	if toInt(health["batch_gap_days"]) != gaps {
		t.Errorf("pipeline_health batch_gap_days = %v, want %d", health["batch_gap_days"], gaps)
	}

	wm := e.watermarks()
	if watermark.IsZero() {
		if len(wm) != 0 {
			t.Errorf("batch_watermark = %v, want no rows", wm)
		}
		return
	}
	for _, table := range schemas.BatchTables {
		if got := wm[table]; !got.Equal(watermark) {
			t.Errorf("batch_watermark[%s] = %v, want %v", table, got, watermark)
		}
	}
	if len(wm) != len(schemas.BatchTables) {
		t.Errorf("batch_watermark has %d rows, want %d: %v", len(wm), len(schemas.BatchTables), wm)
	}
}

// TestCutOver walks the batch layer through a sequence of runs over four
// event days and checks, after each, the exact totals of every view per
// day, the grand total, and the watermark. The speed layer holds every day
// all along, with redeliveries, several panes per window and late panes.
func TestCutOver(t *testing.T) {
	e := newEnv(t, "railyard")
	days := []time.Time{day(t, "2026-11-01"), day(t, "2026-11-02"), day(t, "2026-11-03"), day(t, "2026-11-04")}
	d1, d2, d3, d4 := days[0], days[1], days[2], days[3]
	e.seedSpeed(days...)
	e.seedDeadLetters(d1.Add(hms(12, 0, 0)))
	if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
		t.Fatal(err)
	}
	covered := map[time.Time]bool{}
	finished := d4.Add(48 * time.Hour)
	record := func(t *testing.T, runID string, days ...time.Time) {
		t.Helper()
		var names []string
		for _, d := range days {
			names = append(names, d.Format(schemas.DayLayout))
			covered[d] = true
		}
		finished = finished.Add(time.Hour)
		if err := RecordBatchRun(e.ctx, e.client, e.dataset, runID, names, finished); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name      string
		run       func(t *testing.T)
		watermark time.Time
	}{
		{"no batch run yet: every day from the speed layer", func(t *testing.T) {}, time.Time{}},
		{"a failed run that wrote a partition changes nothing", func(t *testing.T) {
			e.writeBatchDay(d4) // the run died before recording
			err := RecordBatchRun(e.ctx, e.client, e.dataset, "bad-days", []string{"2026-11-04", "2026-11-31"}, finished)
			if err == nil || !strings.Contains(err.Error(), `day "2026-11-31" is not a date`) {
				t.Errorf("RecordBatchRun with a bad day: %v", err)
			}
		}, time.Time{}},
		{"a run that covers no whole day records nothing", func(t *testing.T) {
			if err := RecordBatchRun(e.ctx, e.client, e.dataset, "input-run", nil, finished); err != nil {
				t.Fatal(err)
			}
		}, time.Time{}},
		{"a run covers the first day", func(t *testing.T) {
			e.writeBatchDay(d1)
			record(t, "run-1", d1)
		}, d2},
		{"recording the same run again changes nothing", func(t *testing.T) {
			if err := RecordBatchRun(e.ctx, e.client, e.dataset, "run-1", []string{"2026-11-01"}, finished); err != nil {
				t.Fatal(err)
			}
		}, d2},
		{"a later day covered first: the uncovered day between stays served by the speed layer", func(t *testing.T) {
			e.writeBatchDay(d3)
			record(t, "run-3", d3)
		}, d2},
		{"covering the hole advances the watermark to the end of the contiguous run", func(t *testing.T) {
			e.writeBatchDay(d2)
			record(t, "run-2", d2)
		}, d4},
		{"re-running an old day never moves the watermark backwards", func(t *testing.T) {
			e.writeBatchDay(d1)
			record(t, "rerun-1", d1)
		}, d4},
		{"covering a day before the first never moves the watermark backwards", func(t *testing.T) {
			record(t, "backfill", day(t, "2026-10-30"))
		}, d4},
		{"a run over several days", func(t *testing.T) {
			e.writeBatchDay(d3)
			e.writeBatchDay(d4)
			record(t, "run-34", d4, d3, d4)
		}, d4.Add(24 * time.Hour)},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) {
			step.run(t)
			e.checkServing(t, days, covered, step.watermark)
		}) {
			t.FailNow() // later steps build on this one
		}
	}

	t.Run("coverage names the run that last recomputed each day", func(t *testing.T) {
		got := map[string]string{}
		for _, r := range e.rows(`SELECT table_name, FORMAT_TIMESTAMP('%F', day_start) AS day, run_id FROM {batch_coverage}`) {
			got[fmt.Sprintf("%s %s", r["table_name"], r["day"])] = r["run_id"].(string)
		}
		want := map[string]string{}
		for _, table := range schemas.BatchTables {
			for d, run := range map[string]string{"2026-10-30": "backfill", "2026-11-01": "rerun-1", "2026-11-02": "run-2", "2026-11-03": "run-34", "2026-11-04": "run-34"} {
				want[table+" "+d] = run
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("batch_coverage:\n got %v\nwant %v", got, want)
		}
		wm := e.row(`SELECT run_id, updated_at FROM {batch_watermark} WHERE table_name = 'events_batch'`)
		if wm["run_id"] != "run-34" || !wm["updated_at"].(time.Time).Equal(finished) {
			t.Errorf("batch_watermark of events_batch set by %v at %v, want run-34 at %v", wm["run_id"], wm["updated_at"], finished)
		}
	})

	t.Run("staging tables are dropped", func(t *testing.T) {
		it := e.client.Dataset(e.dataset).Tables(e.ctx)
		for {
			tb, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tb.TableID, "_serving_") {
				t.Errorf("staging table %s left behind", tb.TableID)
			}
		}
	})
}

// checkSpans asserts layer_spans for every batch table: runs of covered
// days are batch spans, everything between, before and after is speed.
func (e *env) checkSpans(t *testing.T, covered map[time.Time]bool) {
	t.Helper()
	days := slices.SortedFunc(maps.Keys(covered), func(a, b time.Time) int { return a.Compare(b) })
	span := func(layer string, start, end time.Time) string {
		f := func(t time.Time) string {
			if t.IsZero() {
				return "open"
			}
			return t.Format(schemas.DayLayout)
		}
		return fmt.Sprintf("%s %s..%s", layer, f(start), f(end))
	}
	var want []string
	var prevEnd time.Time
	for i := 0; i < len(days); {
		j := i
		for j+1 < len(days) && days[j+1].Equal(days[j].AddDate(0, 0, 1)) {
			j++
		}
		want = append(want, span("speed", prevEnd, days[i]), span("batch", days[i], days[j].AddDate(0, 0, 1)))
		prevEnd = days[j].AddDate(0, 0, 1)
		i = j + 1
	}
	want = append(want, span("speed", prevEnd, time.Time{}))
	slices.Sort(want)
	got := map[string][]string{}
	for _, r := range e.rows(`SELECT table_name, layer, span_start, span_end FROM {layer_spans}`) {
		var start, end time.Time
		if v, ok := r["span_start"].(time.Time); ok {
			start = v
		}
		if v, ok := r["span_end"].(time.Time); ok {
			end = v
		}
		table := r["table_name"].(string)
		got[table] = append(got[table], span(r["layer"].(string), start, end))
	}
	for _, table := range schemas.BatchTables {
		slices.Sort(got[table])
		if !slices.Equal(got[table], want) {
			t.Errorf("layer_spans of %s:\n got %v\nwant %v", table, got[table], want)
		}
		delete(got, table)
	}
	if len(got) > 0 {
		t.Errorf("layer_spans has spans of other tables: %v", got)
	}
}
