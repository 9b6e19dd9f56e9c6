package serving

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/schemas"
)

// stagingTTL bounds how long a staging table outlives a run that could not
// drop it.
const stagingTTL = 24 * time.Hour

// RecordBatchRun records that the batch run runID, which finished at
// finishedAt, has written the complete result of each event day in days
// (YYYY-MM-DD, UTC) to every batch table (schemas.BatchTables). Call it
// only after the run's pipeline has succeeded: a failed or partial run must
// not call it, and then nothing changes — the views keep serving those days
// from the speed layer.
//
// It changes two tables in one transaction, one MERGE each:
//
//   - batch_coverage gains a row per table and day (a re-run of a covered
//     day updates its run_id and finished_at). From then on the views read
//     those days from the batch tables.
//   - batch_watermark.complete_until advances, per table, to the end of the
//     contiguous run of covered days it lies in (the first time, the run
//     that starts at the first covered day). It never moves backwards:
//     re-running an old day or covering a day before the first leaves it
//     where it is, and covering a later day across an uncovered one does
//     not move it past the hole.
//
// The MERGEs read their sources from staging tables the call creates first
// and drops at the end (a MERGE's source could be a subquery on BigQuery,
// but the emulator takes only a table, and BigQuery allows no CREATE TABLE
// inside a transaction). Staging tables expire after a day should a drop
// fail. A run that covers no whole day (days is empty) records nothing.
//
// Calling it again with the same arguments changes nothing more, so a
// caller may retry after an error; when two runs record at the same moment
// BigQuery aborts one transaction with an error, and that run can retry.
func RecordBatchRun(ctx context.Context, client *bigquery.Client, dataset, runID string, days []string, finishedAt time.Time) error {
	days, err := checkRun(runID, days, finishedAt)
	if err != nil {
		return fmt.Errorf("serving: record batch run %q: %w", runID, err)
	}
	if len(days) == 0 {
		slog.InfoContext(ctx, "serving: batch run covers no whole event day; coverage and watermark unchanged", "run_id", runID)
		return nil
	}
	r, err := newRecorder(client, dataset, runID, finishedAt)
	if err != nil {
		return fmt.Errorf("serving: record batch run %q: %w", runID, err)
	}
	defer r.dropStaging(ctx)
	if err := r.record(ctx, days); err != nil {
		return fmt.Errorf("serving: record batch run %q over %s..%s: not recorded: %w", runID, days[0], days[len(days)-1], err)
	}
	slog.InfoContext(ctx, "serving: batch run recorded", "run_id", runID, "days", len(days), "first_day", days[0], "last_day", days[len(days)-1])
	return nil
}

// checkRun validates a run's arguments and returns its days sorted and
// without repeats.
func checkRun(runID string, days []string, finishedAt time.Time) ([]string, error) {
	if strings.TrimSpace(runID) == "" {
		return nil, errors.New("run id is empty")
	}
	if finishedAt.IsZero() {
		return nil, errors.New("finishedAt is zero")
	}
	out := make([]string, 0, len(days))
	for _, d := range days {
		t, err := time.Parse(schemas.DayLayout, d)
		if err != nil || t.Format(schemas.DayLayout) != d {
			return nil, fmt.Errorf("day %q is not a date YYYY-MM-DD", d)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// recorder runs one RecordBatchRun's statements.
type recorder struct {
	client     *bigquery.Client
	dataset    string
	runID      string
	finishedAt time.Time
	suffix     string   // makes this call's staging table names unique
	staged     []string // staging tables created, to drop
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_]+`)

func newRecorder(client *bigquery.Client, dataset, runID string, finishedAt time.Time) (*recorder, error) {
	if err := schemas.CheckDataset(client.Project(), dataset); err != nil {
		return nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	run := unsafeName.ReplaceAllString(runID, "_")
	if len(run) > 64 {
		run = run[:64]
	}
	return &recorder{client: client, dataset: dataset, runID: runID, finishedAt: finishedAt.UTC(),
		suffix: run + "_" + hex.EncodeToString(b[:])}, nil
}

// ref is the fully qualified, quoted name of a table of the dataset.
func (r *recorder) ref(table string) string {
	return fmt.Sprintf("`%s.%s.%s`", r.client.Project(), r.dataset, table)
}

func (r *recorder) params(extra ...bigquery.QueryParameter) []bigquery.QueryParameter {
	return append([]bigquery.QueryParameter{
		{Name: "run_id", Value: r.runID},
		{Name: "finished_at", Value: r.finishedAt},
		{Name: "tables", Value: schemas.BatchTables},
	}, extra...)
}

func (r *recorder) stage(ctx context.Context, name, query string, params []bigquery.QueryParameter) (string, error) {
	table := "_serving_" + name + "_" + r.suffix
	sql := fmt.Sprintf("CREATE TABLE %s\nOPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL %d HOUR))\nAS\n%s",
		r.ref(table), int(stagingTTL/time.Hour), query)
	if err := r.exec(ctx, sql, params); err != nil {
		return "", fmt.Errorf("stage %s: %w", table, err)
	}
	r.staged = append(r.staged, table)
	return table, nil
}

// record stages the run's coverage rows and the watermark they support,
// then merges both in one transaction.
func (r *recorder) record(ctx context.Context, days []string) error {
	coverage, err := r.stage(ctx, "coverage", `SELECT
  table_name,
  TIMESTAMP(day) AS day_start,
  @run_id AS run_id,
  @finished_at AS finished_at
FROM UNNEST(@tables) AS table_name
CROSS JOIN UNNEST(@days) AS day`, r.params(bigquery.QueryParameter{Name: "days", Value: days}))
	if err != nil {
		return err
	}
	watermark, err := r.stage(ctx, "watermark", fmt.Sprintf(watermarkQuery,
		r.ref(schemas.TableBatchCoverage), r.ref(coverage), r.ref(schemas.TableBatchWatermark)), r.params())
	if err != nil {
		return err
	}
	return r.exec(ctx, fmt.Sprintf(`BEGIN TRANSACTION;

MERGE %[1]s AS t
USING %[2]s AS s
ON t.table_name = s.table_name AND t.day_start = s.day_start
WHEN MATCHED AND s.finished_at >= t.finished_at THEN
  UPDATE SET run_id = s.run_id, finished_at = s.finished_at
WHEN NOT MATCHED THEN
  INSERT (table_name, day_start, run_id, finished_at)
  VALUES (s.table_name, s.day_start, s.run_id, s.finished_at);

MERGE %[3]s AS t
USING %[4]s AS s
ON t.table_name = s.table_name
WHEN MATCHED AND s.complete_until > t.complete_until THEN
  UPDATE SET complete_until = s.complete_until, updated_at = s.updated_at, run_id = s.run_id
WHEN NOT MATCHED THEN
  INSERT (table_name, complete_until, updated_at, run_id)
  VALUES (s.table_name, s.complete_until, s.updated_at, s.run_id);

COMMIT TRANSACTION;`,
		r.ref(schemas.TableBatchCoverage), r.ref(coverage), r.ref(schemas.TableBatchWatermark), r.ref(watermark)), nil)
}

// watermarkQuery computes, per batch table, the watermark that coverage
// supports once this run's days (%[2]s) join those already covered (%[1]s):
// covered days are grouped into islands of consecutive days (day number
// minus its dense rank is constant along one); the new watermark is the
// end of the island the current watermark (%[3]s) lies in, or of the first
// island when there is no watermark yet. A table whose watermark lies in no
// island gets no row and keeps its watermark. Computing from a snapshot is
// safe under concurrent runs: coverage only grows and the MERGE only
// advances.
const watermarkQuery = `WITH
  days AS (
    SELECT table_name, day_start FROM %[1]s WHERE table_name IN UNNEST(@tables)
    UNION DISTINCT
    SELECT table_name, day_start FROM %[2]s
  ),
  ranked AS (
    SELECT
      table_name,
      day_start,
      DIV(UNIX_SECONDS(day_start), 86400)
        - DENSE_RANK() OVER (PARTITION BY table_name ORDER BY day_start) AS island
    FROM days
  ),
  islands AS (
    SELECT
      table_name,
      MIN(day_start) AS first_day,
      TIMESTAMP_ADD(MAX(day_start), INTERVAL 1 DAY) AS end_at
    FROM ranked
    GROUP BY table_name, island
  ),
  firsts AS (
    SELECT table_name, MIN(first_day) AS first_day
    FROM islands
    GROUP BY table_name
  )
SELECT
  i.table_name,
  i.end_at AS complete_until,
  @finished_at AS updated_at,
  @run_id AS run_id
FROM islands AS i
JOIN firsts AS f ON f.table_name = i.table_name
LEFT JOIN %[3]s AS w ON w.table_name = i.table_name
WHERE (w.table_name IS NULL AND i.first_day = f.first_day)
   OR (w.complete_until >= i.first_day AND w.complete_until <= i.end_at)`

// dropStaging drops the staging tables, also when ctx is done; a table
// that cannot be dropped expires by itself.
func (r *recorder) dropStaging(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, table := range r.staged {
		if err := r.client.Dataset(r.dataset).Table(table).Delete(ctx); err != nil {
			slog.WarnContext(ctx, "serving: staging table not dropped; it expires by itself", "table", table, "ttl", stagingTTL, "error", err)
		}
	}
}

// exec runs one statement and waits for it.
func (r *recorder) exec(ctx context.Context, sql string, params []bigquery.QueryParameter) error {
	q := r.client.Query(sql)
	q.Parameters = params
	job, err := q.Run(ctx)
	if err != nil {
		return err
	}
	status, err := job.Wait(ctx)
	if err != nil {
		return fmt.Errorf("job %s: %w", job.ID(), err)
	}
	if err := status.Err(); err != nil {
		return fmt.Errorf("job %s: %w", job.ID(), err)
	}
	return nil
}
