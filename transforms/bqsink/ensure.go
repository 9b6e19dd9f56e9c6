package bqsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/railyard/railyard/schemas"
)

const datasetDescription = "Railyard: events, per-minute metrics and sessions of the batch and speed layers, dead letters, and the serving views over them."

// Ensure creates cfg's dataset and every table of schemas.Tables that does
// not exist yet, with its partitioning, clustering and descriptions, and
// adds to each existing table, as NULLABLE, the columns its Go row type
// has and the table lacks. It never drops or changes a table or column.
//
// Ensure is idempotent and safe to run from two jobs at once: a create
// that loses the race finds the winner's table, and a schema update that
// loses it (a stale etag) reads the table again and retries.
func Ensure(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client, err := NewClient(ctx, cfg.Project)
	if err != nil {
		return err
	}
	defer client.Close()
	return ensure(ctx, client, cfg, schemas.Tables)
}

func ensure(ctx context.Context, client *bigquery.Client, cfg Config, tables []schemas.Table) error {
	ds := client.DatasetInProject(cfg.Project, cfg.Dataset)
	if err := ensureDataset(ctx, ds, cfg.Location); err != nil {
		return err
	}
	for _, t := range tables {
		if err := ensureTable(ctx, ds.Table(t.Name), t); err != nil {
			return fmt.Errorf("ensure table %s.%s: %w", cfg.Dataset, t.Name, err)
		}
	}
	return nil
}

func ensureDataset(ctx context.Context, ds *bigquery.Dataset, location string) error {
	_, err := ds.Metadata(ctx)
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("ensure dataset %s: %w", ds.DatasetID, err)
	}
	cerr := ds.Create(ctx, &bigquery.DatasetMetadata{Location: location, Description: datasetDescription})
	if cerr == nil {
		slog.InfoContext(ctx, "created dataset", "project", ds.ProjectID, "dataset", ds.DatasetID, "location", location)
		return nil
	}
	// Another job may have created it meanwhile. BigQuery answers 409;
	// the emulator answers 500 "dataset … is already created": whether it
	// exists now is the test that holds for both.
	if _, err := ds.Metadata(ctx); err == nil {
		return nil
	}
	return fmt.Errorf("create dataset %s: %w", ds.DatasetID, cerr)
}

func ensureTable(ctx context.Context, tbl *bigquery.Table, t schemas.Table) error {
	md, err := tbl.Metadata(ctx)
	if isNotFound(err) {
		cerr := tbl.Create(ctx, t.Metadata())
		if cerr == nil {
			slog.InfoContext(ctx, "created table", "table", tbl.FullyQualifiedName())
			return nil
		}
		if md, err = tbl.Metadata(ctx); err != nil {
			return fmt.Errorf("create: %w", cerr)
		}
	} else if err != nil {
		return err
	}
	warnLayout(ctx, tbl, md, t)
	return addColumns(ctx, tbl, md, t)
}

// addColumns appends the columns of t's row type that md lacks, as
// NULLABLE (REPEATED stays REPEATED): BigQuery adds no REQUIRED column to
// a table that has rows.
func addColumns(ctx context.Context, tbl *bigquery.Table, md *bigquery.TableMetadata, t schemas.Table) error {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		missing := missingColumns(md.Schema, t.Schema())
		if len(missing) == 0 {
			return nil
		}
		grown := append(append(bigquery.Schema{}, md.Schema...), missing...)
		_, err := tbl.Update(ctx, bigquery.TableMetadataToUpdate{Schema: grown}, md.ETag)
		if err == nil {
			names := make([]string, len(missing))
			for i, c := range missing {
				names[i] = c.Name
			}
			slog.InfoContext(ctx, "added columns", "table", tbl.FullyQualifiedName(), "columns", names)
			return nil
		}
		if !isStaleEtag(err) || attempt == attempts {
			return fmt.Errorf("add columns: %w", err)
		}
		// Another job changed the table since we read it: read it again.
		if md, err = tbl.Metadata(ctx); err != nil {
			return err
		}
	}
}

// missingColumns returns the columns of want that have lacks, by name,
// made nullable.
func missingColumns(have, want bigquery.Schema) bigquery.Schema {
	present := make(map[string]bool, len(have))
	for _, c := range have {
		present[c.Name] = true
	}
	var missing bigquery.Schema
	for _, c := range want {
		if present[c.Name] {
			continue
		}
		col := *c
		col.Required = false
		missing = append(missing, &col)
	}
	return missing
}

// warnLayout logs when an existing table is partitioned or clustered
// other than its definition says: BigQuery cannot change that in place,
// and ReplacePartitions relies on the partition column.
func warnLayout(ctx context.Context, tbl *bigquery.Table, md *bigquery.TableMetadata, t schemas.Table) {
	var field string
	if md.TimePartitioning != nil {
		field = md.TimePartitioning.Field
	}
	if field != t.PartitionField {
		slog.WarnContext(ctx, "table is partitioned on another column than its definition",
			"table", tbl.FullyQualifiedName(), "partition_field", field, "want", t.PartitionField)
	}
}

func isNotFound(err error) bool { return httpCode(err) == http.StatusNotFound }

func isStaleEtag(err error) bool { return httpCode(err) == http.StatusPreconditionFailed }

func httpCode(err error) int {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return 0
}
