package schemas

import (
	"fmt"
	"reflect"
	"strings"

	"cloud.google.com/go/bigquery"
)

// Table names of the dataset. Users, views and dashboards rely on them.
const (
	TableEventsBatch        = "events_batch"
	TableEventsSpeed        = "events_speed"
	TableMetricsMinuteBatch = "metrics_minute_batch"
	TableMetricsMinuteSpeed = "metrics_minute_speed"
	TableSessionsBatch      = "sessions_batch"
	TableSessionsSpeed      = "sessions_speed"
	TableDeadLetter         = "dead_letter"
	TableBatchWatermark     = "batch_watermark"
)

// Table is the definition of one BigQuery table: its row type, from which
// the schema is derived, and its layout.
type Table struct {
	Name        string
	Description string
	// Row is the Go type of one row; its fields' bq and desc tags give the
	// columns.
	Row reflect.Type
	// PartitionField is the TIMESTAMP column the table is partitioned on
	// by day; "" for an unpartitioned table.
	PartitionField string
	// Clustering lists the clustering columns, most selective last.
	Clustering []string
}

// Tables is every table Railyard writes, in creation order.
var Tables = []Table{
	{Name: TableEventsBatch, Row: reflect.TypeFor[Event](), PartitionField: "event_time", Clustering: []string{"event_type", "source"},
		Description: "Batch layer: every valid event of the lake, deduplicated by event_id, in canonical form. Rebuilt per event day by the batch job."},
	{Name: TableEventsSpeed, Row: reflect.TypeFor[Event](), PartitionField: "event_time", Clustering: []string{"event_type", "source"},
		Description: "Speed layer: events as the streaming job deduplicated them, within its dedup horizon. A redelivery after the horizon can appear twice; the events view removes it."},
	{Name: TableMetricsMinuteBatch, Row: reflect.TypeFor[MetricMinute](), PartitionField: "window_start", Clustering: []string{"event_type", "source"},
		Description: "Batch layer: per one-minute event-time window and event_type, source, platform, country: events, distinct users and value sum."},
	{Name: TableMetricsMinuteSpeed, Row: reflect.TypeFor[MetricMinuteSpeed](), PartitionField: "window_start", Clustering: []string{"event_type", "source"},
		Description: "Speed layer: like metrics_minute_batch, one row per pane (revision) of each window; the latest pane is the answer."},
	{Name: TableSessionsBatch, Row: reflect.TypeFor[Session](), PartitionField: "session_start", Clustering: []string{"user_id"},
		Description: "Batch layer: sessions per user_id (events with no gap longer than gap_seconds)."},
	{Name: TableSessionsSpeed, Row: reflect.TypeFor[SessionSpeed](), PartitionField: "session_start", Clustering: []string{"user_id"},
		Description: "Speed layer: sessions per user_id, one row per pane; the latest pane of a session is the answer."},
	{Name: TableDeadLetter, Row: reflect.TypeFor[DeadLetter](), PartitionField: "failed_at", Clustering: []string{"layer", "reason"},
		Description: "Records that are not valid events under the event contract, and rows that could not be written, with their raw bytes and the reason."},
	{Name: TableDeadLetterReplays, Row: reflect.TypeFor[DeadLetterReplay](), PartitionField: "replayed_at", Clustering: []string{"dead_letter_id"},
		Description: "One row per dead letter a replay run re-decoded (pipelines/replay): its outcome, the new error if it still fails, the lake object if it passes now. Never deleted; the dead_letters view shows each dead letter's replay_status from it."},
	{Name: TableBatchWatermark, Row: reflect.TypeFor[BatchWatermark](),
		Description: "Per batch table, the instant up to which the batch layer is complete without a gap (see batch_coverage for each covered day). It only moves forward; pipeline_health reports its lag."},
	{Name: TableBatchCoverage, Row: reflect.TypeFor[BatchCoverage](),
		Description: "Per batch table and event day, the batch run that last recomputed the day completely. Written only after a run has written all its partitions; the serving views read batch rows for covered days and speed rows for every other day."},
}

// LookupTable returns the definition of the named table.
func LookupTable(name string) (Table, error) {
	for _, t := range Tables {
		if t.Name == name {
			return t, nil
		}
	}
	return Table{}, fmt.Errorf("schemas: no table %q", name)
}

// MustLookupTable is LookupTable for names fixed in code (the Table*
// constants): it panics, while a pipeline is built, on a name that is not
// a table.
func MustLookupTable(name string) Table {
	t, err := LookupTable(name)
	if err != nil {
		panic(err)
	}
	return t
}

// Schema returns the BigQuery schema of the table, derived from its row
// type. Type names are GoogleSQL's (INT64, FLOAT64, BOOL), which both
// BigQuery and its emulator accept for every statement.
func (t Table) Schema() bigquery.Schema {
	s, err := SchemaOf(t.Row)
	if err != nil {
		panic(fmt.Sprintf("schemas: table %s: %v", t.Name, err)) // the row types are fixed at compile time; a test covers each
	}
	return s
}

// Metadata returns what creating the table needs: schema, description,
// day partitioning and clustering.
func (t Table) Metadata() *bigquery.TableMetadata {
	md := &bigquery.TableMetadata{
		Name:        t.Name,
		Description: t.Description,
		Schema:      t.Schema(),
	}
	if t.PartitionField != "" {
		md.TimePartitioning = &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: t.PartitionField}
	}
	if len(t.Clustering) > 0 {
		md.Clustering = &bigquery.Clustering{Fields: t.Clustering}
	}
	return md
}

// SchemaOf derives a BigQuery schema from a struct type. Each exported
// field needs a tag bq:"name[,TYPE]" and a desc tag; embedded structs add
// their columns in place. Pointers are NULLABLE, slices REPEATED, others
// REQUIRED. int64 fields tagged TIMESTAMP hold microseconds since the
// epoch; string fields tagged JSON hold a JSON document.
func SchemaOf(t reflect.Type) (bigquery.Schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%v is not a struct", t)
	}
	var schema bigquery.Schema
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			inner, err := SchemaOf(f.Type)
			if err != nil {
				return nil, err
			}
			schema = append(schema, inner...)
			continue
		}
		col, err := columnOf(f)
		if err != nil {
			return nil, fmt.Errorf("%v.%s: %w", t, f.Name, err)
		}
		schema = append(schema, col)
	}
	return schema, nil
}

func columnOf(f reflect.StructField) (*bigquery.FieldSchema, error) {
	tag, ok := f.Tag.Lookup("bq")
	if !ok {
		return nil, fmt.Errorf("no bq tag")
	}
	desc := f.Tag.Get("desc")
	if desc == "" {
		return nil, fmt.Errorf("no desc tag")
	}
	name, typ, _ := strings.Cut(tag, ",")
	col := &bigquery.FieldSchema{Name: name, Description: desc, Required: true}
	gt := f.Type
	switch gt.Kind() {
	case reflect.Pointer:
		col.Required = false
		gt = gt.Elem()
	case reflect.Slice:
		if gt.Elem().Kind() != reflect.Uint8 {
			col.Required = false
			col.Repeated = true
			gt = gt.Elem()
		} else {
			// BYTES: a nil slice is NULL, so the column is nullable.
			col.Required = false
		}
	}
	if typ == "" {
		switch gt.Kind() {
		case reflect.String:
			typ = "STRING"
		case reflect.Int64:
			typ = "INT64"
		case reflect.Float64:
			typ = "FLOAT64"
		case reflect.Bool:
			typ = "BOOL"
		case reflect.Slice:
			typ = "BYTES"
		default:
			return nil, fmt.Errorf("no BigQuery type for %v", f.Type)
		}
	}
	switch {
	case typ == "TIMESTAMP" && gt.Kind() == reflect.Int64,
		typ == "JSON" && gt.Kind() == reflect.String,
		typ == "STRING" || typ == "INT64" || typ == "FLOAT64" || typ == "BOOL" || typ == "BYTES":
	default:
		return nil, fmt.Errorf("type %s does not fit Go type %v", typ, f.Type)
	}
	col.Type = bigquery.FieldType(typ)
	return col, nil
}
