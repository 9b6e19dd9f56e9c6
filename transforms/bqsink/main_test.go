package bqsink

import (
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/testenv"
)

// The integration tests start a BigQuery emulator each (a child process,
// about half a second) and point the package's clients at it through the
// environment, so they do not run in parallel.
func TestMain(m *testing.M) {
	ptest.Main(m)
}

// startBigQuery starts an emulator for the test, points BIGQUERY_EMULATOR_HOST
// and BIGQUERY_STORAGE_EMULATOR_HOST at it, and returns a client.
func startBigQuery(t *testing.T) *bigquery.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the BigQuery emulator")
	}
	return testenv.Start(t, testenv.Emulators{BigQuery: true}).BQ
}
