package bqsink

import (
	"context"
	"errors"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/railyard/railyard/internal/emulators"
	"google.golang.org/api/iterator"
)

// The integration tests start a BigQuery emulator each (a child process,
// about half a second) and point the package's clients at it through the
// environment, so they do not run in parallel.
func TestMain(m *testing.M) {
	ptest.Main(m)
}

const testProject = "railyard-test"

// startBigQuery starts an emulator for the test, points BIGQUERY_EMULATOR_HOST
// and BIGQUERY_STORAGE_EMULATOR_HOST at it, and returns a client.
func startBigQuery(t *testing.T) *bigquery.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the BigQuery emulator")
	}
	em := emulators.StartBigQueryForTest(t, testProject)
	for k, v := range em.Env() {
		t.Setenv(k, v)
	}
	client, err := NewClient(t.Context(), testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// query runs a SELECT and returns its rows as maps.
func query(t *testing.T, client *bigquery.Client, sql string) []map[string]bigquery.Value {
	t.Helper()
	it, err := client.Query(sql).Read(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var rows []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return rows
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		rows = append(rows, row)
	}
}
