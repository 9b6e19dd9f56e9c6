package serving

import (
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

func TestCheckRun(t *testing.T) {
	finished := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	days, err := checkRun("run-1", []string{"2026-11-02", "2026-11-01", "2026-11-02"}, finished)
	if err != nil || !slices.Equal(days, []string{"2026-11-01", "2026-11-02"}) {
		t.Errorf("checkRun = %v, %v; want the days sorted, once each", days, err)
	}
	for _, tc := range []struct {
		run      string
		days     []string
		finished time.Time
		want     string
	}{
		{"", []string{"2026-11-01"}, finished, "run id is empty"},
		{"run-1", []string{"2026-11-01"}, time.Time{}, "finishedAt is zero"},
		{"run-1", []string{"2026-11-31"}, finished, `day "2026-11-31" is not a date`},
		{"run-1", []string{"2026-11-1"}, finished, `day "2026-11-1" is not a date`},
		{"run-1", []string{"2026-11-01T00:00:00Z"}, finished, "is not a date"},
	} {
		if _, err := checkRun(tc.run, tc.days, tc.finished); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkRun(%q, %v, %v) = %v, want an error containing %q", tc.run, tc.days, tc.finished, err, tc.want)
		}
	}
}

func TestCompareColumns(t *testing.T) {
	col := func(name string, typ bigquery.FieldType, repeated bool) *bigquery.FieldSchema {
		return &bigquery.FieldSchema{Name: name, Type: typ, Repeated: repeated}
	}
	declared := bigquery.Schema{col("a", "INT64", false), col("b", "FLOAT64", false), col("c", "STRING", true)}
	// BigQuery reports legacy type names for views.
	if err := CompareColumns(bigquery.Schema{col("a", "INTEGER", false), col("b", "FLOAT", false), col("c", "STRING", true)}, declared); err != nil {
		t.Errorf("legacy names of the same types: %v", err)
	}
	for _, tc := range []struct {
		got  bigquery.Schema
		want string
	}{
		{bigquery.Schema{col("a", "INT64", false), col("b", "FLOAT64", false)}, "column 3 c is declared but not returned"},
		{append(slices.Clone(declared), col("d", "BOOL", false)), "column 4 d is returned but not declared"},
		{bigquery.Schema{col("b", "FLOAT64", false), col("a", "INT64", false), col("c", "STRING", true)}, "column 1 is b, declared a"},
		{bigquery.Schema{col("a", "STRING", false), col("b", "FLOAT64", false), col("c", "STRING", true)}, "column a is STRING, declared INT64"},
		{bigquery.Schema{col("a", "INT64", false), col("b", "FLOAT64", false), col("c", "STRING", false)}, "column c is STRING, declared ARRAY<STRING>"},
	} {
		if err := CompareColumns(tc.got, declared); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompareColumns = %v, want an error containing %q", err, tc.want)
		}
	}
}
