package serving

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// readme is the analysts' guide, whose SQL blocks this test runs.
var readme = filepath.Join("..", "..", "schemas", "README.md")

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// TestReadmeQueries runs every SQL block of schemas/README.md, as written
// but for the dataset name, against the emulator with the fixture's four
// days (1 and 3 November covered by the batch layer), so the guide's
// examples cannot rot.
func TestReadmeQueries(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(b), -1)
	examples := strings.Count(string(b[strings.Index(string(b), "## Example queries"):]), "```sql")
	if examples != 5 {
		t.Errorf("the guide has %d example queries, want 5", examples)
	}

	e := newEnv(t, "railyard")
	days := []time.Time{day(t, "2026-11-01"), day(t, "2026-11-02"), day(t, "2026-11-03"), day(t, "2026-11-04")}
	e.seedSpeed(days...)
	e.seedDeadLetters(days[0].Add(hms(12, 0, 0)))
	for _, d := range []time.Time{days[0], days[2]} {
		e.writeBatchDay(d)
	}
	if err := RecordBatchRun(e.ctx, e.client, e.dataset, "readme", []string{"2026-11-01", "2026-11-03"}, days[3]); err != nil {
		t.Fatal(err)
	}
	if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
		t.Fatal(err)
	}

	results := make([][]map[string]bigquery.Value, len(blocks))
	for i, m := range blocks {
		query := strings.ReplaceAll(m[1], "`my-project.railyard.", fmt.Sprintf("`%s.%s.", testProject, e.dataset))
		t.Run(fmt.Sprintf("block %d", i+1), func(t *testing.T) {
			if strings.Contains(query, "my-project") {
				t.Fatalf("a name is not `my-project.railyard.<view>`:\n%s", m[1])
			}
			rows, err := e.tryRows(query)
			if err != nil {
				t.Fatalf("%v\n%s", err, m[1])
			}
			if len(rows) == 0 {
				t.Errorf("no rows on the test data:\n%s", m[1])
			}
			results[i] = rows
		})
	}

	// The first example, to the number: batch days have 7 events of 3
	// users worth 9.0, speed days 6 of 2 worth 5.0.
	t.Run("example 1 counts each event once", func(t *testing.T) {
		i := -1
		for j, m := range blocks {
			if strings.Contains(m[1], "COUNT(DISTINCT user_id) AS users,\n  SUM(value) AS value\nFROM `my-project.railyard.events`") {
				i = j
			}
		}
		if i < 0 || results[i] == nil {
			t.Fatal("example 1 not found or failed")
		}
		var got []string
		for _, r := range results[i] {
			got = append(got, fmt.Sprintf("%v %v %v %v %v", r["day"], r["source"], r["events"], r["users"], r["value"]))
		}
		want := []string{
			"2026-11-01 shop 7 3 9", "2026-11-02 shop 6 2 5",
			"2026-11-03 shop 7 3 9", "2026-11-04 shop 6 2 5",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("example 1:\n got %q\nwant %q", got, want)
		}
	})
}
