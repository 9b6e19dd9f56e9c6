package main

import (
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

func TestSetup(t *testing.T) {
	const project = "railyard-setup"
	em := emulators.StartBigQueryForTest(t, project)
	for k, v := range em.Env() {
		t.Setenv(k, v)
	}
	ctx := t.Context()
	for i, name := range []string{"creates the dataset, its tables and views", "a second run changes nothing and succeeds"} {
		t.Run(name, func(t *testing.T) {
			if err := setup(ctx, project, "analytics", ""); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
		})
	}
	client, err := bqsink.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	want := map[string]bigquery.TableType{}
	for _, table := range schemas.Tables {
		want[table.Name] = bigquery.RegularTable
	}
	for _, v := range schemas.Views {
		want[v.Name] = bigquery.ViewTable
	}
	for name, typ := range want {
		md, err := client.Dataset("analytics").Table(name).Metadata(ctx)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if md.Type != typ {
			t.Errorf("%s is a %s, want a %s", name, md.Type, typ)
		}
	}
	// The views answer.
	it, err := client.Query("SELECT COUNT(*) FROM `" + project + ".analytics.events`").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil || row[0] != int64(0) {
		t.Errorf("SELECT COUNT(*) FROM events = %v, %v; want 0", row, err)
	}
}

func TestSetupRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct{ project, dataset, want string }{
		{"", "railyard", "--project is required"},
		{"railyard-setup", "rail-yard", "is not a BigQuery dataset name"},
		{"Not A Project", "railyard", "is not a Google Cloud project id"},
	} {
		err := setup(t.Context(), tc.project, tc.dataset, "")
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("setup(%q, %q) = %v, want a usage error containing %q", tc.project, tc.dataset, err, tc.want)
		}
	}
}
