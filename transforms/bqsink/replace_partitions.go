package bqsink

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func init() {
	// The rows reach keyByDayFn as beam.T: register every row type, so
	// that a worker decodes them as the named type rather than as an
	// anonymous struct of the same fields.
	for _, t := range schemas.Tables {
		beam.RegisterType(t.Row)
	}
	register.DoFn2x0[[]byte, func(string)](&listDaysFn{})
	register.DoFn1x2[string, string, bool](&keyDayFn{})
	register.DoFn5x1[context.Context, beam.T, func(string, []byte), func(string), func(schemas.DeadLetter), error](&keyByDayFn{})
	register.DoFn5x1[context.Context, string, func(*[]byte) bool, func(*bool) bool, func(schemas.DeadLetter), error](&replaceDayFn{})
	register.Emitter1[string]()
	register.Emitter2[string, []byte]()
	register.Emitter1[schemas.DeadLetter]()
	register.Iter1[[]byte]()
	register.Iter1[bool]()
}

// ReplacePartitions writes rows into table, replacing whole days: for
// every day of the table's partition column that has a row in rows, and
// for every day listed in days (YYYY-MM-DD; the days a --from/--to run
// covers, so that a day whose records all turned out bad is emptied), the
// day's partition afterwards holds exactly this run's rows of that day.
// Other days are left alone. Running it twice over the same input leaves
// the same rows. Against BigQuery each day is replaced atomically:
// readers see the old day or the new one, never a mix.
//
// rows is a PCollection of table.Row (for example schemas.Event for
// events_batch). The result is a PCollection<schemas.DeadLetter>: the
// rows BigQuery rejected (stage write_<table>, reason write_failed, the
// row as JSON in payload, its source_uri and message_id kept when the row
// type has them).
//
// It panics when cfg is invalid, when table is not partitioned, when
// rows is not a PCollection of table.Row, or when a day is malformed.
func ReplacePartitions(s beam.Scope, cfg Config, table schemas.Table, rows beam.PCollection, days []string) beam.PCollection {
	s = s.Scope("bqsink.ReplacePartitions")
	cfg = cfg.withServer()
	if err := validateReplace(cfg, table, rows, days); err != nil {
		panic(fmt.Sprintf("bqsink.ReplacePartitions(%s): %v", table.Name, err))
	}
	// Rows may arrive windowed (per-minute metrics, sessions); a day is
	// replaced once, from all of its rows, so group in the global window.
	rows = beam.WindowInto(s, window.NewGlobalWindows(), rows)
	keyed, touched, rejected := beam.ParDo3(s, &keyByDayFn{Table: table.Name}, rows)
	listed := beam.ParDo(s, &listDaysFn{Days: days}, beam.Impulse(s))
	dayKeys := beam.ParDo(s, &keyDayFn{}, beam.Flatten(s, listed, touched))
	grouped := beam.CoGroupByKey(s, keyed, dayKeys)
	failed := beam.ParDo(s, &replaceDayFn{Config: cfg, Table: table.Name}, grouped)
	return beam.Flatten(s, rejected, failed)
}

func validateReplace(cfg Config, table schemas.Table, rows beam.PCollection, days []string) error {
	var errs []error
	if err := cfg.validateWrite(); err != nil {
		errs = append(errs, err)
	}
	if _, err := schemas.LookupTable(table.Name); err != nil {
		errs = append(errs, err)
	}
	if table.PartitionField == "" {
		errs = append(errs, errors.New("the table is not partitioned"))
	}
	if got := rows.Type().Type(); got != table.Row {
		errs = append(errs, fmt.Errorf("rows are %v, the table's rows are %v", got, table.Row))
	}
	if _, err := EncoderFor(table.Row); err != nil {
		errs = append(errs, err)
	}
	for _, d := range days {
		if _, err := time.Parse(schemas.DayLayout, d); err != nil {
			errs = append(errs, fmt.Errorf("day %q is not YYYY-MM-DD", d))
		}
	}
	return errors.Join(errs...)
}

// listDaysFn emits the listed days once.
type listDaysFn struct {
	Days []string
}

func (f *listDaysFn) ProcessElement(_ []byte, emit func(string)) {
	for _, d := range f.Days {
		emit(d)
	}
}

// keyDayFn keys a day by itself, to be grouped with the rows.
type keyDayFn struct{}

func (*keyDayFn) ProcessElement(day string) (string, bool) { return day, true }

// keyByDayFn encodes each row for the Storage Write API and keys it by
// the UTC day of the table's partition column. A row holding a value
// BigQuery would reject becomes a dead letter, and its day is still
// replaced.
type keyByDayFn struct {
	Table string

	table schemas.Table
	enc   *Encoder
	dead  deadLetters
}

func (f *keyByDayFn) Setup() error {
	var err error
	f.table, f.enc, err = tableEncoder(f.Table)
	f.dead = newDeadLetters(f.table)
	return err
}

func (f *keyByDayFn) ProcessElement(ctx context.Context, row beam.T, emitRow func(string, []byte), emitDay func(string), emitDead func(schemas.DeadLetter)) error {
	us, err := f.enc.Timestamp(row, f.table.PartitionField)
	if err != nil {
		return fmt.Errorf("key %s row by day: %w", f.Table, err)
	}
	day := time.UnixMicro(us).UTC().Format(schemas.DayLayout)
	data, err := f.enc.Encode(row)
	var rerr *RowError
	if errors.As(err, &rerr) {
		emitDead(f.dead.ofRow(ctx, f.enc, row, rerr.Error()))
		emitDay(day)
		return nil
	}
	if err != nil {
		return fmt.Errorf("encode %s row: %w", f.Table, err)
	}
	emitRow(day, data)
	return nil
}

// replaceDayFn replaces one day of a table with the day's rows, through a
// staging table and one statement (see the package documentation).
type replaceDayFn struct {
	Config Config
	Table  string

	table   schemas.Table
	enc     *Encoder
	w       *stager
	dead    deadLetters
	written beam.Counter
}

func (f *replaceDayFn) Setup() error {
	var err error
	if f.table, f.enc, err = tableEncoder(f.Table); err != nil {
		return err
	}
	if f.w, err = newStager(f.Config); err != nil {
		return err
	}
	f.dead = newDeadLetters(f.table)
	f.written = beam.NewCounter(metricnames.Namespace, metricnames.RowsWritten(f.Table))
	return nil
}

func (f *replaceDayFn) Teardown() error {
	if f.w == nil {
		return nil
	}
	return f.w.close()
}

func (f *replaceDayFn) ProcessElement(ctx context.Context, day string, rows func(*[]byte) bool, _ func(*bool) bool, emit func(schemas.DeadLetter)) error {
	start, err := time.Parse(schemas.DayLayout, day)
	if err != nil {
		return fmt.Errorf("replace %s: day %q: %w", f.Table, day, err)
	}
	defer exclusive(f.Config.Server)()
	staging, err := f.w.createStaging(ctx, stagingName(f.Table, start.Format("20060102"), f.Config.RunID), f.table.Schema(), f.Config.stagingExpiration())
	if err != nil {
		return fmt.Errorf("replace %s %s: %w", f.Table, day, err)
	}
	defer f.w.dropStaging(ctx, staging)

	written, rejected, err := f.w.write(ctx, staging, f.enc.Descriptor(), iterate(rows))
	if err != nil {
		return fmt.Errorf("replace %s %s: stage rows: %w", f.Table, day, err)
	}
	dest := tableRef(f.Config.Project, f.Config.Dataset, f.Table)
	stagingRef := tableRef(staging.ProjectID, staging.DatasetID, staging.TableID)
	replace := replaceDaySQL
	if f.Config.Server.MergePairsRows {
		replace = replaceDayScript
	}
	if err := f.w.runDML(ctx, replace(dest, stagingRef, f.table.PartitionField, start, f.enc.Columns())); err != nil {
		return fmt.Errorf("replace %s %s: %w", f.Table, day, err)
	}
	f.written.Inc(ctx, int64(written))
	for _, r := range rejected {
		emit(f.dead.ofData(ctx, f.enc, r.data, r.msg))
	}
	slog.InfoContext(ctx, "replaced partition", "table", f.Table, "day", day, "rows", written, "rejected", len(rejected))
	return nil
}

// tableEncoder looks up a table by name and the encoder of its rows.
func tableEncoder(name string) (schemas.Table, *Encoder, error) {
	t, err := schemas.LookupTable(name)
	if err != nil {
		return t, nil, err
	}
	enc, err := EncoderFor(t.Row)
	return t, enc, err
}

// iterate turns a Beam iterator into a Go sequence.
func iterate[T any](next func(*T) bool) iter.Seq[T] {
	return func(yield func(T) bool) {
		var v T
		for next(&v) {
			if !yield(v) {
				return
			}
		}
	}
}
