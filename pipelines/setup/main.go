// Command setup prepares a BigQuery dataset for Railyard: it creates the
// dataset and every table (bqsink.Ensure: missing tables created, new
// columns added, nothing dropped), then creates or updates every serving
// view with its descriptions (serving.EnsureViews). It is idempotent: run
// it once per dataset, and again after an upgrade. Both jobs do the same at
// start; this is the operator's way to do it without running a job.
//
//	go run ./pipelines/setup --project=P --dataset=D [--location=US]
//
// With BIGQUERY_EMULATOR_HOST set it talks to the BigQuery emulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/railyard/railyard/pipelines/serving"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

var (
	project  = flag.String("project", "", "Google Cloud project that holds the dataset (required).")
	dataset  = flag.String("dataset", "railyard", "BigQuery dataset to set up.")
	location = flag.String("location", "", "Where to create the dataset if it does not exist (for example US or europe-west1); empty leaves it to BigQuery.")
)

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := setup(ctx, *project, *dataset, *location)
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "setup: %v\nRun with -help for the flags.\n", err)
		os.Exit(2)
	case err != nil:
		slog.Error("setup failed", "project", *project, "dataset", *dataset, "error", err)
		os.Exit(1)
	}
}

// usageError is a problem with the flags.
type usageError struct{ error }

// setup creates or updates the tables and views of project.dataset.
func setup(ctx context.Context, project, dataset, location string) error {
	if project == "" {
		return usageError{errors.New("--project is required: the Google Cloud project that holds the dataset")}
	}
	if err := schemas.CheckDataset(project, dataset); err != nil {
		return usageError{fmt.Errorf("--project/--dataset: %w", err)}
	}
	if err := bqsink.Ensure(ctx, bqsink.Config{Project: project, Dataset: dataset, Location: location}); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	client, err := bqsink.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := serving.EnsureViews(ctx, client, dataset); err != nil {
		return fmt.Errorf("create views: %w", err)
	}
	slog.InfoContext(ctx, "dataset ready", "project", project, "dataset", dataset,
		"tables", len(schemas.Tables), "views", len(schemas.Views))
	return nil
}
