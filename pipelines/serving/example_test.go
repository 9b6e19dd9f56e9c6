package serving_test

import (
	"context"
	"log"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/pipelines/serving"
)

// A job creates its tables (bqsink.Ensure) and then the views at start;
// the batch job records the days it covered once its pipeline has
// succeeded, and never after a failure.
func Example() {
	ctx := context.Background()
	client, err := bigquery.NewClient(ctx, "my-project")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := serving.EnsureViews(ctx, client, "railyard"); err != nil {
		log.Fatal(err)
	}

	// … run the batch pipeline over --from=2026-11-01 --to=2026-11-02 …

	days := []string{"2026-11-01", "2026-11-02"}
	if err := serving.RecordBatchRun(ctx, client, "railyard", "batch-20261103t020000", days, time.Now()); err != nil {
		log.Fatal(err)
	}
}
