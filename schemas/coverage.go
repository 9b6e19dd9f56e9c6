package schemas

// TableBatchCoverage names the table of the batch layer's per-day coverage.
const TableBatchCoverage = "batch_coverage"

// BatchTables are the tables the batch layer recomputes per event day, in
// the order a batch run writes them. A run that succeeds covers each of
// them for each of its days.
var BatchTables = []string{TableEventsBatch, TableMetricsMinuteBatch, TableSessionsBatch}

// BatchCoverage records that one batch table holds the complete result of
// one event day: a row of batch_coverage. The serving views read batch
// rows for covered days and speed rows for every other day, so a day the
// batch layer has not (yet) covered never vanishes from them.
type BatchCoverage struct {
	TableName  string `bq:"table_name" desc:"The batch table covered, for example events_batch."`
	DayStart   int64  `bq:"day_start,TIMESTAMP" desc:"The event day covered, as its first instant (00:00:00 UTC): the batch table holds the complete result of [day_start, day_start + 1 day)."`
	RunID      string `bq:"run_id" desc:"The batch run that last recomputed the day."`
	FinishedAt int64  `bq:"finished_at,TIMESTAMP" desc:"When that run had written all its partitions successfully."`
}
