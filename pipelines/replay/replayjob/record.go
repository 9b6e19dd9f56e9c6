package replayjob

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

// recordChunk is how many dead_letter_replays rows one INSERT writes.
const recordChunk = 500

// recordFn writes the run's dead_letter_replays rows, after every lake
// object is written. Each INSERT leaves out the dead letters this run has
// recorded already, so a retried bundle adds nothing twice.
type recordFn struct {
	Project, Dataset, RunID string

	client *bigquery.Client
}

func (fn *recordFn) Setup(ctx context.Context) error {
	var err error
	fn.client, err = bqsink.NewClient(ctx, fn.Project)
	return err
}

func (fn *recordFn) Teardown() error {
	if fn.client != nil {
		return fn.client.Close()
	}
	return nil
}

func (fn *recordFn) ProcessElement(ctx context.Context, _ int, rows func(*schemas.DeadLetterReplay) bool) error {
	var chunk []schemas.DeadLetterReplay
	var row schemas.DeadLetterReplay
	for rows(&row) {
		chunk = append(chunk, row)
		if len(chunk) == recordChunk {
			if err := fn.insert(ctx, chunk); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if len(chunk) > 0 {
		return fn.insert(ctx, chunk)
	}
	return nil
}

// insertSQL inserts the rows given as parallel arrays (a NULL is an
// empty string: no column of them holds an empty string otherwise),
// leaving out the dead letters the run recorded already. The CASTs are
// for the emulator, which passes INT64 array elements as strings.
const insertSQL = `INSERT INTO %[1]s (dead_letter_id, run_id, replayed_at, outcome, reason, error, lake_object, failed_at, dead_letter_reason)
SELECT
  @ids[OFFSET(i)], @run_id, TIMESTAMP_MICROS(CAST(@replayed_at[OFFSET(i)] AS INT64)), @outcomes[OFFSET(i)],
  NULLIF(@reasons[OFFSET(i)], ''), NULLIF(@errors[OFFSET(i)], ''), NULLIF(@objects[OFFSET(i)], ''),
  TIMESTAMP_MICROS(CAST(@failed_at[OFFSET(i)] AS INT64)), @dead_letter_reasons[OFFSET(i)]
FROM UNNEST(GENERATE_ARRAY(0, ARRAY_LENGTH(@ids) - 1)) AS i
WHERE @ids[OFFSET(i)] NOT IN (SELECT dead_letter_id FROM %[1]s WHERE run_id = @run_id)`

func (fn *recordFn) insert(ctx context.Context, rows []schemas.DeadLetterReplay) error {
	n := len(rows)
	ids, outcomes, reasons, errs, objects, dlReasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	replayedAt, failedAt := make([]int64, n), make([]int64, n)
	for i, r := range rows {
		ids[i], outcomes[i], dlReasons[i] = r.DeadLetterID, r.Outcome, r.DeadLetterReason
		reasons[i], errs[i], objects[i] = deref(r.Reason), deref(r.Error), deref(r.LakeObject)
		replayedAt[i], failedAt[i] = r.ReplayedAt, r.FailedAt
	}
	q := fn.client.Query(fmt.Sprintf(insertSQL, fmt.Sprintf("`%s.%s.%s`", fn.Project, fn.Dataset, schemas.TableDeadLetterReplays)))
	q.Parameters = []bigquery.QueryParameter{
		{Name: "ids", Value: ids}, {Name: "run_id", Value: fn.RunID}, {Name: "replayed_at", Value: replayedAt},
		{Name: "outcomes", Value: outcomes}, {Name: "reasons", Value: reasons}, {Name: "errors", Value: errs},
		{Name: "objects", Value: objects}, {Name: "failed_at", Value: failedAt}, {Name: "dead_letter_reasons", Value: dlReasons},
	}
	job, err := q.Run(ctx)
	if err != nil {
		return fmt.Errorf("record %d replays in %s: %w", n, schemas.TableDeadLetterReplays, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	status, err := job.Wait(ctx)
	if err == nil {
		err = status.Err()
	}
	if err != nil {
		return fmt.Errorf("record %d replays in %s: %w", n, schemas.TableDeadLetterReplays, err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
