// Command local runs Railyard on this machine with nothing but Go: it
// starts the Cloud Storage and BigQuery emulators, loads the sample lake
// from testdata/, runs the batch job on Prism, prints what landed in
// BigQuery and the job's counters, and stops every emulator it started.
//
//	go run ./runners/local
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/runners/emulators"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

var (
	sampleDir = flag.String("sample", "", "Lake folder to load (default: testdata/sample/lake of this checkout).")
	project   = flag.String("emulator_project", "railyard-local", "Project id inside the emulators.")
	dataset   = flag.String("dataset", "railyard", "BigQuery dataset to write.")
	bucket    = flag.String("bucket", "railyard-lake", "Emulated Cloud Storage bucket for the lake.")
	from      = flag.String("from", "2026-11-01", "First event day of the sample to process.")
	to        = flag.String("to", "2026-11-02", "Last event day of the sample to process.")
)

func main() {
	flag.Parse()
	beam.Init()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "local: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	dir := *sampleDir
	if dir == "" {
		dir = defaultSampleDir()
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("sample lake: %w (give --sample=DIR)", err)
	}

	fmt.Fprintln(out, "Starting emulators (Cloud Storage in-process, BigQuery as a child process; the first run builds it, which takes minutes)…")
	gcs, err := emulators.StartStorage()
	if err != nil {
		return err
	}
	defer closeWith(&err, gcs.Close)
	bq, err := emulators.StartBigQuery(ctx, *project)
	if err != nil {
		return err
	}
	defer closeWith(&err, bq.Close)
	for _, env := range []map[string]string{gcs.Env(), bq.Env()} {
		for k, v := range env {
			os.Setenv(k, v)
		}
	}

	gcs.CreateBucket(*bucket)
	n, err := uploadLake(ctx, gcs, dir, *bucket)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Loaded %d lake files from %s into gs://%s/raw/\n\n", n, dir, *bucket)

	cfg := batchjob.Config{
		Destination: config.Destination{Project: *project, Dataset: *dataset},
		Lake:        "gs://" + *bucket, From: *from, To: *to,
		SessionGap: batchjob.DefaultSessionGap,
		RunID:      "local-" + time.Now().UTC().Format("20060102t150405"),
	}
	fmt.Fprintf(out, "Running the batch job on Prism over %s..%s…\n", *from, *to)
	start := time.Now()
	res, err := batchjob.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Batch job done in %s.\n\n", time.Since(start).Round(time.Millisecond))
	printCounters(out, res)
	return printLanded(ctx, out, cfg.Destination)
}

func closeWith(err *error, closeFn func() error) {
	*err = errors.Join(*err, closeFn())
}

// defaultSampleDir is testdata/sample/lake of the checkout this file is in.
func defaultSampleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "sample", "lake")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sample", "lake")
}

func uploadLake(ctx context.Context, gcs *emulators.Storage, dir, bucket string) (int, error) {
	client, err := gcs.Client(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w := client.Bucket(bucket).Object(filepath.ToSlash(rel)).NewWriter(ctx)
		if _, err := w.Write(data); err != nil {
			w.Close()
			return fmt.Errorf("upload %s: %w", rel, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("upload %s: %w", rel, err)
		}
		n++
		return nil
	})
	return n, err
}

func printCounters(out io.Writer, res beam.PipelineResult) {
	counters := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == "railyard" {
			counters[c.Key.Name] += c.Result()
		}
	}
	fmt.Fprintln(out, "Job counters")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(counters)) {
		fmt.Fprintf(tw, "  %s\t%d\n", name, counters[name])
	}
	tw.Flush()
	in, written := counters["lake_lines_read"], counters["rows_written_events_batch"]
	dups, dead := counters["duplicates"], counters["rows_written_dead_letter"]
	verdict := "reconciles"
	if in != written+dups+dead {
		verdict = "DOES NOT reconcile"
	}
	fmt.Fprintf(out, "\nRecords in %d = events written %d + duplicates %d + dead letters %d: %s.\n\n", in, written, dups, dead, verdict)
}

// printLanded queries what the job wrote, the way an analyst would.
func printLanded(ctx context.Context, out io.Writer, dest config.Destination) error {
	client, err := bqsink.NewClient(ctx, dest.Project)
	if err != nil {
		return err
	}
	defer client.Close()
	table := func(name string) string { return fmt.Sprintf("`%s.%s.%s`", dest.Project, dest.Dataset, name) }

	var counts []string
	for _, t := range schemas.Tables {
		counts = append(counts, fmt.Sprintf("SELECT %q AS table_name, COUNT(*) AS row_count FROM %s", t.Name, table(t.Name)))
	}
	sections := []struct{ title, sql string }{
		{"Rows per table", strings.Join(counts, " UNION ALL ") + " ORDER BY table_name"},
		{"Busiest minutes (metrics_minute_batch)", "SELECT window_start, event_type, source, platform, country, events, users, value_sum FROM " +
			table(schemas.TableMetricsMinuteBatch) + " ORDER BY events DESC, window_start, event_type, source LIMIT 8"},
		{"Longest sessions (sessions_batch)", "SELECT user_id, session_start, duration_seconds, events, ARRAY_TO_STRING(sources, ',') AS sources FROM " +
			table(schemas.TableSessionsBatch) + " ORDER BY duration_seconds DESC, user_id LIMIT 5"},
		{"Dead letters by reason", "SELECT layer, stage, reason, COUNT(*) AS records FROM " + table(schemas.TableDeadLetter) +
			" GROUP BY layer, stage, reason ORDER BY records DESC, reason"},
	}
	for _, sec := range sections {
		if err := printQuery(ctx, out, client, sec.title, sec.sql); err != nil {
			return fmt.Errorf("%s: %w", sec.title, err)
		}
	}
	return nil
}

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
	case float64:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprint(v)
}
