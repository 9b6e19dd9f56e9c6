package serving

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/schemas"
)

const testProject = "railyard-serving"

// env is a BigQuery emulator with one dataset holding every table of
// schemas.Tables, and a client for it.
type env struct {
	t       *testing.T
	ctx     context.Context
	client  *bigquery.Client
	dataset string
}

// newEnv starts an emulator for the test and creates the dataset and its
// tables from schemas.Tables, the way the jobs create them.
func newEnv(t *testing.T, dataset string) *env {
	t.Helper()
	ctx := t.Context()
	em := emulators.StartBigQueryForTest(t, testProject)
	client, err := bigquery.NewClient(ctx, testProject,
		option.WithEndpoint("http://"+em.Host+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	e := &env{t: t, ctx: ctx, client: client, dataset: dataset}
	if err := client.Dataset(dataset).Create(ctx, nil); err != nil {
		t.Fatalf("create dataset %s: %v", dataset, err)
	}
	for _, table := range schemas.Tables {
		if err := client.Dataset(dataset).Table(table.Name).Create(ctx, table.Metadata()); err != nil {
			t.Fatalf("create table %s: %v", table.Name, err)
		}
	}
	return e
}

// ref is the fully qualified name of a table or view: the emulator needs it.
func (e *env) ref(name string) string {
	return fmt.Sprintf("`%s.%s.%s`", testProject, e.dataset, name)
}

// sql replaces {name} references with fully qualified names.
func (e *env) sql(query string) string {
	for _, t := range schemas.Tables {
		query = strings.ReplaceAll(query, "{"+t.Name+"}", e.ref(t.Name))
	}
	for _, v := range schemas.Views {
		query = strings.ReplaceAll(query, "{"+v.Name+"}", e.ref(v.Name))
	}
	return query
}

// exec runs a statement.
func (e *env) exec(query string, params ...bigquery.QueryParameter) {
	e.t.Helper()
	q := e.client.Query(e.sql(query))
	q.Parameters = params
	job, err := q.Run(e.ctx)
	if err == nil {
		var status *bigquery.JobStatus
		status, err = job.Wait(e.ctx)
		if err == nil {
			err = status.Err()
		}
	}
	if err != nil {
		e.t.Fatalf("%s\n%v", query, err)
	}
}

// rows runs a query and returns its rows as maps from column to value.
func (e *env) rows(query string, params ...bigquery.QueryParameter) []map[string]bigquery.Value {
	e.t.Helper()
	got, err := e.tryRows(query, params...)
	if err != nil {
		e.t.Fatalf("%s\n%v", query, err)
	}
	return got
}

func (e *env) tryRows(query string, params ...bigquery.QueryParameter) ([]map[string]bigquery.Value, error) {
	q := e.client.Query(e.sql(query))
	q.Parameters = params
	it, err := q.Read(e.ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
}

// row runs a query that returns exactly one row.
func (e *env) row(query string, params ...bigquery.QueryParameter) map[string]bigquery.Value {
	e.t.Helper()
	got := e.rows(query, params...)
	if len(got) != 1 {
		e.t.Fatalf("%s\nreturned %d rows, want 1: %v", query, len(got), got)
	}
	return got[0]
}

// insert writes rows through insertAll; a row maps column names to values
// (time.Time for TIMESTAMP), absent columns are NULL.
func (e *env) insert(table string, rows ...map[string]bigquery.Value) {
	e.t.Helper()
	if len(rows) == 0 {
		return
	}
	def, err := schemas.LookupTable(table)
	if err != nil {
		e.t.Fatal(err)
	}
	schema := def.Schema()
	savers := make([]*bigquery.ValuesSaver, 0, len(rows))
	for _, r := range rows {
		vals := make([]bigquery.Value, len(schema))
		for i, f := range schema {
			vals[i] = r[f.Name]
		}
		for k := range maps.Keys(r) {
			if !slices.ContainsFunc(schema, func(f *bigquery.FieldSchema) bool { return f.Name == k }) {
				e.t.Fatalf("table %s has no column %s", table, k)
			}
		}
		savers = append(savers, &bigquery.ValuesSaver{Schema: schema, Row: vals})
	}
	if err := e.client.Dataset(e.dataset).Table(table).Inserter().Put(e.ctx, savers); err != nil {
		e.t.Fatalf("insert into %s: %v", table, err)
	}
}

// day parses a YYYY-MM-DD day as its first instant, UTC.
func day(t testing.TB, d string) time.Time {
	t.Helper()
	ts, err := time.Parse(schemas.DayLayout, d)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func toInt(v bigquery.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case nil:
		return 0
	}
	panic(fmt.Sprintf("not an INT64: %T %v", v, v))
}

func toFloat(v bigquery.Value) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case nil:
		return 0
	}
	panic(fmt.Sprintf("not a FLOAT64: %T %v", v, v))
}
