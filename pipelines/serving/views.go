// Package serving is Railyard's serving layer: the BigQuery views that merge
// the batch and speed layers into one answer, and the batch layer's coverage
// and watermark that tell the views where to cut over.
//
// Both jobs call EnsureViews at start, and the operator's setup command
// (go run ./pipelines/setup) does too; the batch job calls RecordBatchRun
// once its pipeline has written every partition. The views' SQL and their
// catalogue (descriptions of every view and column) live in package schemas
// (schemas/views/*.sql); schemas/README.md is the analysts' guide.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

// EnsureViews creates every serving view of dataset, or brings an existing
// one up to date (query, description and column descriptions), in
// dependency order. It never drops anything, so it is safe to run from both
// jobs at once and on every start. The tables the views read must exist.
//
// Views are created and updated through the tables API rather than with
// CREATE OR REPLACE VIEW: that works on BigQuery and on its emulator, which
// cannot replace an existing view with DDL.
//
// After a view is created or updated, its columns as BigQuery derives them
// must be the columns its catalogue entry declares, in order and of the
// declared types; otherwise EnsureViews fails naming the difference, so a
// view and its documentation cannot drift apart.
func EnsureViews(ctx context.Context, client *bigquery.Client, dataset string) error {
	for _, v := range schemas.Views {
		if err := ensureView(ctx, client, dataset, v); err != nil {
			return fmt.Errorf("serving: view %s.%s: %w", dataset, v.Name, err)
		}
	}
	return nil
}

// ensureViewAttempts bounds the retries of a view another job is changing
// at the same moment (both jobs run EnsureViews at start).
const ensureViewAttempts = 3

func ensureView(ctx context.Context, client *bigquery.Client, dataset string, v schemas.View) error {
	for attempt := 1; ; attempt++ {
		err := ensureViewOnce(ctx, client, dataset, v)
		raced := isStatus(err, http.StatusPreconditionFailed) || isStatus(err, http.StatusConflict)
		if err == nil || !raced || attempt == ensureViewAttempts {
			return err
		}
		slog.InfoContext(ctx, "serving: view changed meanwhile; reading it again", "dataset", dataset, "view", v.Name, "error", err)
	}
}

func ensureViewOnce(ctx context.Context, client *bigquery.Client, dataset string, v schemas.View) error {
	query, err := v.Query(client.Project(), dataset)
	if err != nil {
		return err
	}
	t := client.Dataset(dataset).Table(v.Name)
	md, err := t.Metadata(ctx)
	switch {
	case isStatus(err, http.StatusNotFound):
		err = t.Create(ctx, &bigquery.TableMetadata{ViewQuery: query, Description: v.Description})
		if err == nil {
			slog.InfoContext(ctx, "serving: view created", "dataset", dataset, "view", v.Name)
			md, err = t.Metadata(ctx)
			break
		}
		// Another job may have created it meanwhile (BigQuery answers 409,
		// the emulator 400): whether it exists now holds for both. If so,
		// bring it up to date below.
		var rerr error
		if md, rerr = t.Metadata(ctx); rerr != nil {
			return fmt.Errorf("create: %w", err)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	if md.Type != bigquery.ViewTable {
		return fmt.Errorf("a %s of that name exists; Railyard does not replace it (drop or rename it yourself)", md.Type)
	}
	if md.ViewQuery != query || md.Description != v.Description || md.UseLegacySQL {
		md, err = t.Update(ctx, bigquery.TableMetadataToUpdate{
			ViewQuery:    query,
			UseLegacySQL: false,
			Description:  v.Description,
		}, md.ETag)
		if err != nil {
			return fmt.Errorf("update query: %w", err)
		}
		slog.InfoContext(ctx, "serving: view query updated", "dataset", dataset, "view", v.Name)
		// BigQuery derives the schema from the new query; read it back.
		if md, err = t.Metadata(ctx); err != nil {
			return fmt.Errorf("read metadata: %w", err)
		}
	}
	described, err := describe(md.Schema, v)
	if err != nil {
		return err
	}
	if !sameDescriptions(md.Schema, described) {
		if _, err := t.Update(ctx, bigquery.TableMetadataToUpdate{Schema: described}, md.ETag); err != nil {
			return fmt.Errorf("set column descriptions: %w", err)
		}
		slog.InfoContext(ctx, "serving: view column descriptions set", "dataset", dataset, "view", v.Name)
	}
	return nil
}

// describe returns the view's schema as BigQuery derived it, with each
// column's description from the catalogue. It fails when the derived
// columns are not the declared ones.
func describe(got bigquery.Schema, v schemas.View) (bigquery.Schema, error) {
	want := v.Schema()
	if err := CompareColumns(got, want); err != nil {
		return nil, fmt.Errorf("%w (the catalogue is the header of schemas/views/%s)", err, v.File)
	}
	out := make(bigquery.Schema, len(got))
	for i, f := range got {
		c := *f
		c.Description = want[i].Description
		out[i] = &c
	}
	return out, nil
}

// CompareColumns reports how the columns a view returns (got, as BigQuery
// derives them) differ from its declared columns (want): names in order,
// types (legacy and GoogleSQL names alike) and repetition.
func CompareColumns(got, want bigquery.Schema) error {
	var diffs []string
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			diffs = append(diffs, fmt.Sprintf("column %d %s is declared but not returned", i+1, want[i].Name))
		case i >= len(want):
			diffs = append(diffs, fmt.Sprintf("column %d %s is returned but not declared", i+1, got[i].Name))
		case got[i].Name != want[i].Name:
			diffs = append(diffs, fmt.Sprintf("column %d is %s, declared %s", i+1, got[i].Name, want[i].Name))
		case typeName(got[i]) != typeName(want[i]):
			diffs = append(diffs, fmt.Sprintf("column %s is %s, declared %s", got[i].Name, typeName(got[i]), typeName(want[i])))
		}
	}
	if len(diffs) > 0 {
		return errors.New("columns differ from the catalogue: " + strings.Join(diffs, "; "))
	}
	return nil
}

// typeName is a column's GoogleSQL type, ARRAY<T> when repeated.
func typeName(f *bigquery.FieldSchema) string {
	t := string(f.Type)
	switch t {
	case "INTEGER":
		t = "INT64"
	case "FLOAT":
		t = "FLOAT64"
	case "BOOLEAN":
		t = "BOOL"
	case "RECORD":
		t = "STRUCT"
	}
	if f.Repeated {
		return "ARRAY<" + t + ">"
	}
	return t
}

func sameDescriptions(a, b bigquery.Schema) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Description != b[i].Description {
			return false
		}
	}
	return true
}

// isStatus reports whether err is a BigQuery API error with the HTTP status code.
func isStatus(err error, code int) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == code
}

// Prepare makes the dataset, its tables and the serving views ready for a
// job (idempotently: creates what is missing, adds new columns) and
// returns a BigQuery client for the job's own calls; the caller closes it.
func Prepare(ctx context.Context, sink bqsink.Config) (*bigquery.Client, error) {
	if err := bqsink.Ensure(ctx, sink); err != nil {
		return nil, fmt.Errorf("prepare BigQuery dataset %s.%s: %w", sink.Project, sink.Dataset, err)
	}
	client, err := bqsink.NewClient(ctx, sink.Project)
	if err != nil {
		return nil, err
	}
	if err := EnsureViews(ctx, client, sink.Dataset); err != nil {
		client.Close()
		return nil, fmt.Errorf("prepare the serving views of %s.%s: %w", sink.Project, sink.Dataset, err)
	}
	return client, nil
}
