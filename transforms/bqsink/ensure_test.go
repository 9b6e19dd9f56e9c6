package bqsink

import (
	"context"
	"sync"
	"testing"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

func TestEnsure(t *testing.T) {
	client := startBigQuery(t)
	ctx := context.Background()
	cfg := Config{Project: testenv.Project, Dataset: "railyard", Location: "US"}

	t.Run("creates every table with its partitioning, clustering and descriptions", func(t *testing.T) {
		if err := Ensure(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		for _, want := range schemas.Tables {
			md, err := client.Dataset(cfg.Dataset).Table(want.Name).Metadata(ctx)
			if err != nil {
				t.Fatalf("%s: %v", want.Name, err)
			}
			if md.Description != want.Description {
				t.Errorf("%s: description %q", want.Name, md.Description)
			}
			switch {
			case want.PartitionField == "" && md.TimePartitioning != nil:
				t.Errorf("%s: partitioned on %+v, want unpartitioned", want.Name, md.TimePartitioning)
			case want.PartitionField != "" && (md.TimePartitioning == nil || md.TimePartitioning.Field != want.PartitionField || md.TimePartitioning.Type != bigquery.DayPartitioningType):
				t.Errorf("%s: partitioning %+v, want DAY on %s", want.Name, md.TimePartitioning, want.PartitionField)
			}
			var clustering []string
			if md.Clustering != nil {
				clustering = md.Clustering.Fields
			}
			if !equalStrings(clustering, want.Clustering) {
				t.Errorf("%s: clustering %v, want %v", want.Name, clustering, want.Clustering)
			}
			assertColumns(t, want.Name, md.Schema, want.Schema())
		}
	})

	t.Run("is idempotent", func(t *testing.T) {
		if err := Ensure(ctx, cfg); err != nil {
			t.Fatalf("second Ensure: %v", err)
		}
		n := 0
		it := client.Dataset(cfg.Dataset).Tables(ctx)
		for {
			if _, err := it.Next(); err != nil {
				break
			}
			n++
		}
		if n != len(schemas.Tables) {
			t.Errorf("%d tables after two Ensures, want %d", n, len(schemas.Tables))
		}
	})

	t.Run("is safe when two jobs start at once", func(t *testing.T) {
		race := Config{Project: testenv.Project, Dataset: "railyard_race"}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = Ensure(ctx, race)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Ensure %d: %v", i, err)
			}
		}
	})

	t.Run("adds the columns the Go schema has and the table lacks, as NULLABLE", func(t *testing.T) {
		grow := Config{Project: testenv.Project, Dataset: "railyard_grow"}
		if err := client.Dataset(grow.Dataset).Create(ctx, nil); err != nil {
			t.Fatal(err)
		}
		table, _ := schemas.LookupTable(schemas.TableEventsBatch)
		old := table.Metadata()
		old.Schema = old.Schema[:len(old.Schema)-2] // an older version without message_id, source_uri
		if err := client.Dataset(grow.Dataset).Table(table.Name).Create(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := Ensure(ctx, grow); err != nil {
			t.Fatal(err)
		}
		md, err := client.Dataset(grow.Dataset).Table(table.Name).Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertColumns(t, table.Name, md.Schema, table.Schema())
		if md.TimePartitioning == nil || md.TimePartitioning.Field != "event_time" {
			t.Errorf("partitioning changed: %+v", md.TimePartitioning)
		}
	})
}

// assertColumns checks that got has want's columns, in order, with their
// types and descriptions, and modes no stricter than want's.
func assertColumns(t *testing.T, table string, got, want bigquery.Schema) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d columns, want %d", table, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || !sameType(g.Type, w.Type) || g.Repeated != w.Repeated || (g.Required && !w.Required) || g.Description != w.Description {
			t.Errorf("%s: column %d is %s %s required=%v repeated=%v %q, want %s %s required=%v repeated=%v %q", table, i,
				g.Name, g.Type, g.Required, g.Repeated, g.Description, w.Name, w.Type, w.Required, w.Repeated, w.Description)
		}
	}
}

// sameType compares BigQuery type names, legacy (INTEGER) or GoogleSQL (INT64).
func sameType(a, b bigquery.FieldType) bool {
	norm := func(t bigquery.FieldType) bigquery.FieldType {
		switch t {
		case "INT64":
			return bigquery.IntegerFieldType
		case "FLOAT64":
			return bigquery.FloatFieldType
		case "BOOL":
			return bigquery.BooleanFieldType
		}
		return t
	}
	return norm(a) == norm(b)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
