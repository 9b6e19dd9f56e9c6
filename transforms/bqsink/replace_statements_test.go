package bqsink

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/testenv"
)

// TestReplaceDayStatementsAgree runs the MERGE BigQuery gets and the
// DELETE and INSERT the emulator gets on the same tables: both leave the
// other days alone and the replaced day with exactly the staged rows.
func TestReplaceDayStatementsAgree(t *testing.T) {
	client := startBigQuery(t)
	ctx := t.Context()
	if err := client.Dataset("d").Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ref := func(table string) string { return tableRef(testenv.Project, "d", table) }
	run := func(sql string) {
		t.Helper()
		job, err := client.Query(sql).Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		st, err := job.Wait(ctx)
		if err == nil {
			err = st.Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, table := range []string{"merged", "scripted"} {
		run(fmt.Sprintf("CREATE TABLE %s (id STRING, ts TIMESTAMP) PARTITION BY DATE(ts)", ref(table)))
		run(fmt.Sprintf(`INSERT INTO %s (id, ts) VALUES
			('before', TIMESTAMP '2024-02-28 23:59:59.999999+00'),
			('old-1', TIMESTAMP '2024-02-29 00:00:00+00'),
			('old-2', TIMESTAMP '2024-02-29 23:59:59.999999+00'),
			('after', TIMESTAMP '2024-03-01 00:00:00+00')`, ref(table)))
	}
	run(fmt.Sprintf("CREATE TABLE %s (id STRING, ts TIMESTAMP)", ref("staged")))
	run(fmt.Sprintf(`INSERT INTO %s (id, ts) VALUES
		('new-1', TIMESTAMP '2024-02-29 00:00:00+00'),
		('new-2', TIMESTAMP '2024-02-29 12:00:00+00')`, ref("staged")))

	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	cols := []string{"id", "ts"}
	run(replaceDaySQL(ref("merged"), ref("staged"), "ts", day, cols))
	run(replaceDayScript(ref("scripted"), ref("staged"), "ts", day, cols))

	want := []string{"after", "before", "new-1", "new-2"}
	for _, table := range []string{"merged", "scripted"} {
		var got []string
		for _, row := range testenv.Rows(t, client, "SELECT id FROM "+ref(table)) {
			got = append(got, row["id"].(string))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", table, got, want)
		}
	}
}
