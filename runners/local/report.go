package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// railyardCounters sums a job's counters of namespace railyard by name.
// Call it only for a job that succeeded: the result of a failed one may
// hold no metrics, and Metrics then panics.
func railyardCounters(res beam.PipelineResult) map[string]int64 {
	out := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == metricnames.Namespace {
			out[c.Key.Name] += c.Result()
		}
	}
	return out
}

// printCounters prints counters sorted by name, in two columns.
func printCounters(out io.Writer, title string, counters map[string]int64) {
	fmt.Fprintln(out, title)
	names := slices.Sorted(maps.Keys(counters))
	half := (len(names) + 1) / 2
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for i := range half {
		fmt.Fprintf(tw, "  %s\t%s", names[i], thousands(counters[names[i]]))
		if j := i + half; j < len(names) {
			fmt.Fprintf(tw, "\t  %s\t%s", names[j], thousands(counters[names[j]]))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// The layers, as the dead_letter table and the views name them.
const (
	speedLayer = "speed"
	batchLayer = "batch"
)

// reconciliation is a job's account of its input: every record read is
// an event written, a duplicate of one, or a dead letter.
type reconciliation struct {
	layer      string
	inName     string // the counter of records read
	in         int64
	written    int64
	duplicates int64
	dead       int64
}

// reconcile reads a job's reconciliation from its counters: the streaming
// job counts the messages it decoded (records_in), the batch job the lake
// lines it read (lake_lines_read, which also holds lines whose archive
// envelope is broken: those are dead letters of the read stage).
func reconcile(layer string, c map[string]int64) reconciliation {
	r := reconciliation{layer: layer, inName: metricnames.RecordsIn, duplicates: c[metricnames.Duplicates], dead: c[metricnames.RowsWritten(schemas.TableDeadLetter)]}
	if layer == batchLayer {
		r.inName = metricnames.LakeLinesRead
		r.written = c[metricnames.RowsWritten(schemas.TableEventsBatch)]
	} else {
		r.written = c[metricnames.RowsWritten(schemas.TableEventsSpeed)]
	}
	r.in = c[r.inName]
	return r
}

func (r reconciliation) ok() bool { return r.in == r.written+r.duplicates+r.dead }

func (r reconciliation) String() string {
	verdict := "reconciles"
	if !r.ok() {
		verdict = fmt.Sprintf("DOES NOT reconcile (%s unaccounted for)", thousands(r.in-r.written-r.duplicates-r.dead))
	}
	job := map[string]string{speedLayer: "Streaming job", batchLayer: "Batch job"}[r.layer]
	return fmt.Sprintf("%s: %s %s = events written %s + duplicates %s + dead letters %s: %s.",
		job, r.inName, thousands(r.in), thousands(r.written), thousands(r.duplicates), thousands(r.dead), verdict)
}

func printReconciliation(out io.Writer, r reconciliation) {
	fmt.Fprintf(out, "%s\n\n", r)
}

// landedCheck reconciles the same input against what the tables hold,
// independently of the job's counters: distinct events in the events
// table and the layer's rows in dead_letter, with the counted duplicates.
func landedCheck(r reconciliation, l landed) string {
	verdict := "reconciles"
	switch {
	case r.in != l.events+r.duplicates+l.dead:
		verdict = fmt.Sprintf("DOES NOT reconcile (%s unaccounted for)", thousands(r.in-l.events-r.duplicates-l.dead))
	case !r.ok():
		verdict = "reconciles: the rows are all there, the job's counters missed some it wrote"
	}
	return fmt.Sprintf("Read back from BigQuery: %s %s = distinct events in events_%s %s (%s rows) + duplicates %s + %s dead_letter rows %s: %s.",
		r.inName, thousands(r.in), r.layer, thousands(l.events), thousands(l.rows), thousands(r.duplicates), r.layer, thousands(l.dead), verdict)
}

// minuteRow is one streamed minute as each layer counted it.
type minuteRow struct {
	start              time.Time
	speed, batch       int64
	hasSpeed, hasBatch bool
	view               string // the layer(s) the metrics_minute view serves the minute from
}

func (r minuteRow) match() bool { return r.hasSpeed && r.hasBatch && r.speed == r.batch }

// compareMinutes lines up the minutes of both layers, in time order.
func compareMinutes(speed, batch map[time.Time]int64, view map[time.Time]string) []minuteRow {
	all := map[time.Time]bool{}
	for t := range speed {
		all[t] = true
	}
	for t := range batch {
		all[t] = true
	}
	var rows []minuteRow
	for _, t := range slices.SortedFunc(maps.Keys(all), time.Time.Compare) {
		r := minuteRow{start: t, view: view[t]}
		r.speed, r.hasSpeed = speed[t]
		r.batch, r.hasBatch = batch[t]
		rows = append(rows, r)
	}
	return rows
}

// printMinutes prints the side-by-side table and a total line.
func printMinutes(out io.Writer, rows []minuteRow) {
	count := func(has bool, n int64) string {
		if !has {
			return "-"
		}
		return thousands(n)
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  minute (UTC)\tspeed layer\tbatch layer\tmatch\tmetrics_minute view serves")
	var speed, batch int64
	matched := 0
	for _, r := range rows {
		verdict := "no"
		if r.match() {
			verdict = "yes"
			matched++
		}
		view := r.view
		if view == "" {
			view = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.start.UTC().Format("2006-01-02 15:04"), count(r.hasSpeed, r.speed), count(r.hasBatch, r.batch), verdict, view)
		speed += r.speed
		batch += r.batch
	}
	fmt.Fprintf(tw, "  total\t%s\t%s\t\t\n", thousands(speed), thousands(batch))
	tw.Flush()
	fmt.Fprintf(out, "  %d of %d minutes match.\n", matched, len(rows))
}

// printStreamedMinutes prints, for each minute the speed layer computed,
// its answer (read before the batch run) beside the batch layer's, and
// which layer the metrics_minute view now serves.
func printStreamedMinutes(ctx context.Context, out io.Writer, e *env, o options, speed *speedResult) error {
	fmt.Fprintln(out, "Streamed minutes: events per one-minute window, speed layer (latest pane, read before the batch run) vs batch layer")
	if len(speed.minutes) == 0 {
		fmt.Fprintf(out, "  The speed layer wrote no metrics.\n\n")
		return nil
	}
	times := slices.SortedFunc(maps.Keys(speed.minutes), time.Time.Compare)
	within := fmt.Sprintf("window_start BETWEEN TIMESTAMP_MICROS(%d) AND TIMESTAMP_MICROS(%d)", times[0].UnixMicro(), times[len(times)-1].UnixMicro())
	rows, err := queryRows(ctx, e.bqClient, fmt.Sprintf("SELECT window_start, SUM(events) AS events FROM %s WHERE %s GROUP BY window_start",
		tableRef(o.destination(), schemas.TableMetricsMinuteBatch), within))
	if err != nil {
		return fmt.Errorf("read the batch layer's minutes: %w", err)
	}
	batch := perMinute(rows)
	rows, err = queryRows(ctx, e.bqClient, fmt.Sprintf("SELECT window_start, MIN(layer) AS first, MAX(layer) AS last FROM %s WHERE %s GROUP BY window_start",
		tableRef(o.destination(), "metrics_minute"), within))
	if err != nil {
		return fmt.Errorf("read the metrics_minute view: %w", err)
	}
	view := map[time.Time]string{}
	for _, r := range rows {
		t, _ := r["window_start"].(time.Time)
		first, last := fmt.Sprint(r["first"]), fmt.Sprint(r["last"])
		view[t] = first
		if first != last {
			view[t] = first + "+" + last
		}
	}
	printMinutes(out, compareMinutes(speed.minutes, batch, view))
	if n := speed.counters[metricnames.TooLate(metricnames.AggregationMetrics)]; n > 0 {
		fmt.Fprintf(out, "  %s events arrived hours after their minute closed: the speed layer counted them (too_late_metrics) and left them to the batch layer, which counts them in their own, earlier minutes.\n", thousands(n))
	}
	if n := speed.counters[metricnames.WindowClosing(metricnames.AggregationMetrics)]; n > 0 {
		fmt.Fprintf(out, "  %s late events reached the metrics seconds before their minute closed: on Prism the speed layer left them out (window_closing_metrics) so that no early firing was pending at the close, and the batch layer counts them.\n", thousands(n))
	}
	if n := speed.counters[metricnames.FutureEvents]; n > 0 {
		fmt.Fprintf(out, "  %s events were dated more than --max_future after they were published: both layers wrote them and left them out of metrics and sessions (future_events).\n", thousands(n))
	}
	fmt.Fprintln(out)
	return nil
}

// perMinute reads rows of window_start and events.
func perMinute(rows []map[string]bigquery.Value) map[time.Time]int64 {
	out := map[time.Time]int64{}
	for _, r := range rows {
		if t, ok := r["window_start"].(time.Time); ok {
			out[t.UTC()] = asInt(r["events"])
		}
	}
	return out
}

// viewQueries are the serving views as the run prints them, a few rows
// each; %s is replaced by the dataset's qualified prefix.
var viewQueries = []struct{ title, sql string }{
	{"Rows per table", ""}, // built from schemas.Tables
	{"events view: events per day and layer",
		"SELECT DATE(event_time) AS day, layer, COUNT(*) AS events FROM %[1]s.events` GROUP BY day, layer ORDER BY day, layer LIMIT 10"},
	{"metrics_hourly view: the busiest hour rows, latest hours first",
		"SELECT hour_start, event_type, source, platform, country, events, users, value_sum, layer FROM %[1]s.metrics_hourly` ORDER BY hour_start DESC, events DESC, event_type, source LIMIT 8"},
	{"sessions view: the longest sessions",
		"SELECT user_id, session_start, duration_seconds, events, ARRAY_TO_STRING(sources, ',') AS sources, layer FROM %[1]s.sessions` ORDER BY duration_seconds DESC, user_id LIMIT 5"},
	{"dead_letters view: dead letters by reason and layer, the most frequent reasons",
		"SELECT reason, COUNTIF(layer = 'batch') AS batch, COUNTIF(layer = 'speed') AS speed FROM %[1]s.dead_letters` GROUP BY reason ORDER BY COUNT(*) DESC, reason LIMIT 10"},
	{"pipeline_health view: the latest hours that received records",
		"SELECT layer, hour_start, event_rows, dead_letters, dead_letter_rate, event_freshness_seconds, batch_complete_until, batch_lag_seconds, batch_gap_days FROM %[1]s.pipeline_health` WHERE event_rows > 0 OR dead_letters > 0 ORDER BY hour_start DESC, layer LIMIT 6"},
}

// printViews prints the row count of every table, then the serving views.
func printViews(ctx context.Context, out io.Writer, client *bigquery.Client, dest config.Destination, batch *batchResult) error {
	prefix := fmt.Sprintf("`%s.%s", dest.Project, dest.Dataset)
	for _, q := range viewQueries {
		sql := fmt.Sprintf(q.sql, prefix)
		if q.sql == "" {
			var counts []string
			for _, t := range schemas.Tables {
				counts = append(counts, fmt.Sprintf("SELECT %q AS table_name, COUNT(*) AS row_count FROM %s", t.Name, tableRef(dest, t.Name)))
			}
			sql = strings.Join(counts, " UNION ALL ") + " ORDER BY table_name"
		}
		if err := printQuery(ctx, out, client, q.title, sql); err != nil {
			return fmt.Errorf("%s: %w", q.title, err)
		}
	}
	if len(batch.ranges) > 1 {
		fmt.Fprintf(out, "The batch layer covers %s; the days between hold no lake files and are no run's, so the batch watermark (batch_complete_until) stays at the end of the first range and batch_gap_days counts them.\n\n", joinRanges(batch.ranges))
	}
	return nil
}

// tableRef is the quoted, fully qualified name of a table or view (the
// emulator needs the whole name quoted).
func tableRef(dest config.Destination, name string) string {
	return fmt.Sprintf("`%s.%s.%s`", dest.Project, dest.Dataset, name)
}

// queryRows runs a query and returns its rows by column name.
func queryRows(ctx context.Context, client *bigquery.Client, sql string) ([]map[string]bigquery.Value, error) {
	it, err := client.Query(sql).Read(ctx)
	if err != nil {
		return nil, err
	}
	var rows []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

// printQuery prints a query's result as a table under title.
func printQuery(ctx context.Context, out io.Writer, client *bigquery.Client, title, sql string) error {
	it, err := client.Query(sql).Read(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, title)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	header := false
	for {
		var row map[string]bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return err
		}
		if !header {
			for i, f := range it.Schema {
				fmt.Fprintf(tw, "%s%s", sep(i), f.Name)
			}
			fmt.Fprintln(tw)
			header = true
		}
		for i, f := range it.Schema {
			fmt.Fprintf(tw, "%s%s", sep(i), formatValue(row[f.Name]))
		}
		fmt.Fprintln(tw)
	}
	if !header {
		fmt.Fprintln(tw, "  (no rows)")
	}
	tw.Flush()
	fmt.Fprintln(out)
	return nil
}

func sep(i int) string {
	if i == 0 {
		return "  "
	}
	return "\t"
}

func formatValue(v bigquery.Value) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case civil.Date:
		return x.String()
	case float64:
		return fmt.Sprintf("%.2f", x)
	case int64:
		return thousands(x)
	}
	return fmt.Sprint(v)
}

// asInt reads an INT64 column; 0 for NULL.
func asInt(v bigquery.Value) int64 {
	n, _ := v.(int64)
	return n
}
