package replayjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/schemas"
)

// Input is one selected dead letter, as the pipeline takes it.
type Input struct {
	// ID is schemas.DeadLetterID of DeadLetter.
	ID         string
	DeadLetter schemas.DeadLetter
	// Recorded are the reasons of the still_failing outcomes earlier runs
	// recorded for ID: the same outcome is not recorded again.
	Recorded []string
}

// Selection is what a run takes from dead_letter.
type Selection struct {
	Inputs []Input
	// Matched counts the dead_letter rows that match the flags;
	// AlreadyReplayed the dead letters among them already replayed (left
	// out); Repeats the rows that are another row of a dead letter already
	// in Inputs (same id).
	Matched, AlreadyReplayed, Repeats int
}

// selectionQuery selects the dead_letter rows of the flags; the failed_at
// range is compared as it is, so BigQuery prunes the partitions.
const selectionQuery = `SELECT failed_at, layer, stage, reason, error, payload, source_uri, message_id, publish_time,
  IF(attributes IS NULL, NULL, TO_JSON_STRING(attributes)) AS attributes
FROM %s
WHERE failed_at >= @from AND failed_at < @until%s
ORDER BY failed_at, layer, stage, reason`

func (c Config) filters() (sql string, params []bigquery.QueryParameter) {
	from, until := c.failedAtRange()
	params = []bigquery.QueryParameter{{Name: "from", Value: from}, {Name: "until", Value: until}}
	if len(c.Reasons) > 0 {
		sql += "\n  AND reason IN UNNEST(@reasons)"
		params = append(params, bigquery.QueryParameter{Name: "reasons", Value: c.Reasons})
	}
	if c.Layer != "" {
		sql += "\n  AND layer = @layer"
		params = append(params, bigquery.QueryParameter{Name: "layer", Value: c.Layer})
	}
	if c.Stage != "" {
		sql += "\n  AND stage = @stage"
		params = append(params, bigquery.QueryParameter{Name: "stage", Value: c.Stage})
	}
	if c.SourceURIPrefix != "" {
		sql += "\n  AND STARTS_WITH(source_uri, @source_uri)"
		params = append(params, bigquery.QueryParameter{Name: "source_uri", Value: c.SourceURIPrefix})
	}
	return sql, params
}

func (c Config) ref(client *bigquery.Client, table string) string {
	return fmt.Sprintf("`%s.%s.%s`", client.Project(), c.Dataset, table)
}

// SelectDeadLetters reads the dead letters of the flags and what earlier
// replays recorded for them. It counts first, and refuses a selection
// over --max_dead_letters before reading any payload.
func SelectDeadLetters(ctx context.Context, client *bigquery.Client, cfg Config) (Selection, error) {
	var sel Selection
	where, params := cfg.filters()
	count := client.Query(fmt.Sprintf("SELECT COUNT(*) AS n FROM %s\nWHERE failed_at >= @from AND failed_at < @until%s",
		cfg.ref(client, schemas.TableDeadLetter), where))
	count.Parameters = params
	var n struct {
		N int64 `bigquery:"n"`
	}
	if err := readOne(ctx, count, &n); err != nil {
		return sel, fmt.Errorf("count the dead letters selected: %w", err)
	}
	sel.Matched = int(n.N)
	if sel.Matched > cfg.maxDeadLetters() {
		return sel, fmt.Errorf("the selection holds %d dead letters, more than --max_dead_letters=%d: narrow it with --from/--to, --reason, --layer, --stage or --source_uri, or raise --max_dead_letters (at most %d)",
			sel.Matched, cfg.maxDeadLetters(), MaxMaxDeadLetters)
	}
	if sel.Matched == 0 {
		return sel, nil
	}
	q := client.Query(fmt.Sprintf(selectionQuery, cfg.ref(client, schemas.TableDeadLetter), where))
	q.Parameters = params
	it, err := q.Read(ctx)
	if err != nil {
		return sel, fmt.Errorf("read the dead letters selected: %w", err)
	}
	seen := map[string]bool{}
	for {
		var row deadLetterRow
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return sel, fmt.Errorf("read the dead letters selected: %w", err)
		}
		dl := row.deadLetter()
		id := schemas.DeadLetterID(dl)
		if seen[id] {
			sel.Repeats++
			continue
		}
		seen[id] = true
		sel.Inputs = append(sel.Inputs, Input{ID: id, DeadLetter: dl})
	}
	return sel, recorded(ctx, client, cfg, &sel)
}

// recorded leaves out the inputs already replayed, and gives the others
// the still_failing reasons earlier runs recorded.
func recorded(ctx context.Context, client *bigquery.Client, cfg Config, sel *Selection) error {
	ids := make([]string, len(sel.Inputs))
	for i, in := range sel.Inputs {
		ids[i] = in.ID
	}
	q := client.Query(fmt.Sprintf("SELECT DISTINCT dead_letter_id, outcome, IFNULL(reason, '') AS reason FROM %s WHERE dead_letter_id IN UNNEST(@ids)",
		cfg.ref(client, schemas.TableDeadLetterReplays)))
	q.Parameters = []bigquery.QueryParameter{{Name: "ids", Value: ids}}
	it, err := q.Read(ctx)
	if isNotFound(err) && cfg.DryRun {
		return nil // a dataset no job has prepared since dead_letter_replays was added: nothing replayed yet
	}
	if err != nil {
		return fmt.Errorf("read earlier replays of the dead letters selected: %w", err)
	}
	replayed := map[string]bool{}
	failing := map[string][]string{}
	for {
		var row struct {
			DeadLetterID string `bigquery:"dead_letter_id"`
			Outcome      string `bigquery:"outcome"`
			Reason       string `bigquery:"reason"`
		}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("read earlier replays of the dead letters selected: %w", err)
		}
		if row.Outcome == schemas.OutcomeReplayed {
			replayed[row.DeadLetterID] = true
		} else {
			failing[row.DeadLetterID] = append(failing[row.DeadLetterID], row.Reason)
		}
	}
	kept := sel.Inputs[:0]
	for _, in := range sel.Inputs {
		if replayed[in.ID] {
			sel.AlreadyReplayed++
			continue
		}
		in.Recorded = failing[in.ID]
		slices.Sort(in.Recorded)
		kept = append(kept, in)
	}
	sel.Inputs = kept
	return nil
}

// deadLetterRow is a dead_letter row as the client reads it.
type deadLetterRow struct {
	FailedAt    time.Time              `bigquery:"failed_at"`
	Layer       string                 `bigquery:"layer"`
	Stage       string                 `bigquery:"stage"`
	Reason      string                 `bigquery:"reason"`
	Error       string                 `bigquery:"error"`
	Payload     []byte                 `bigquery:"payload"`
	SourceURI   bigquery.NullString    `bigquery:"source_uri"`
	MessageID   bigquery.NullString    `bigquery:"message_id"`
	PublishTime bigquery.NullTimestamp `bigquery:"publish_time"`
	Attributes  bigquery.NullString    `bigquery:"attributes"`
}

func (r deadLetterRow) deadLetter() schemas.DeadLetter {
	dl := schemas.DeadLetter{
		FailedAt: r.FailedAt.UnixMicro(),
		Layer:    r.Layer,
		Stage:    r.Stage,
		Reason:   r.Reason,
		Error:    r.Error,
		Payload:  r.Payload,
	}
	if dl.Payload == nil {
		dl.Payload = []byte{}
	}
	if r.SourceURI.Valid {
		dl.SourceURI = &r.SourceURI.StringVal
	}
	if r.MessageID.Valid {
		dl.MessageID = &r.MessageID.StringVal
	}
	if r.PublishTime.Valid {
		pt := r.PublishTime.Timestamp.UnixMicro()
		dl.PublishTime = &pt
	}
	if r.Attributes.Valid {
		dl.Attributes = &r.Attributes.StringVal
	}
	return dl
}

func readOne(ctx context.Context, q *bigquery.Query, dst any) error {
	it, err := q.Read(ctx)
	if err != nil {
		return err
	}
	return it.Next(dst)
}
