package schemas

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestViewsLoadInDependencyOrder(t *testing.T) {
	var names []string
	for _, v := range Views {
		names = append(names, v.Name)
	}
	for _, want := range []string{"events", "metrics_minute", "metrics_hourly", "sessions", "dead_letters", "pipeline_health", "layer_spans"} {
		if !slices.Contains(names, want) {
			t.Errorf("no view %s among %v", want, names)
		}
	}
	for i, v := range Views {
		for _, r := range v.Reads {
			if j := slices.Index(names, r); j >= i {
				t.Errorf("view %s reads view %s, which comes after it in Views (%v)", v.Name, r, names)
			}
		}
	}
}

// TestCatalogueIsComplete is the static half of the catalogue check (the
// other half runs against the emulator in pipelines/serving): every table,
// view and column has a description.
func TestCatalogueIsComplete(t *testing.T) {
	for _, table := range Tables {
		if strings.TrimSpace(table.Description) == "" {
			t.Errorf("table %s has no description", table.Name)
		}
		for _, f := range table.Schema() {
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("table %s: column %s has no description", table.Name, f.Name)
			}
		}
	}
	for _, v := range Views {
		if strings.TrimSpace(v.Description) == "" {
			t.Errorf("view %s has no description", v.Name)
		}
		if _, err := LookupTable(v.Name); err == nil {
			t.Errorf("view %s has the name of a table", v.Name)
		}
		for _, c := range v.Columns {
			if strings.TrimSpace(c.Description) == "" {
				t.Errorf("view %s: column %s has no description", v.Name, c.Name)
			}
		}
		for _, f := range v.Schema() {
			if f.Type == "" || f.Description == "" {
				t.Errorf("view %s: schema column %s lacks a type or description", v.Name, f.Name)
			}
		}
	}
}

func TestViewQuery(t *testing.T) {
	v, err := LookupView("events")
	if err != nil {
		t.Fatal(err)
	}
	q, err := v.Query("my-project", "railyard")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(q, "{project}") || strings.Contains(q, "{dataset}") || !strings.Contains(q, "`my-project.railyard.events_batch`") {
		t.Errorf("placeholders not replaced:\n%s", q)
	}
	if strings.HasPrefix(q, "--") {
		t.Errorf("the query keeps the catalogue header:\n%s", q)
	}
	for _, tc := range []struct{ project, dataset, want string }{
		{"my-project", "rail-yard", "is not a BigQuery dataset name"},
		{"my-project", "x`; DROP TABLE y", "is not a BigQuery dataset name"},
		{"My Project", "railyard", "is not a Google Cloud project id"},
		{"", "railyard", "is not a Google Cloud project id"},
	} {
		if _, err := v.Query(tc.project, tc.dataset); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Query(%q, %q) = %v, want an error containing %q", tc.project, tc.dataset, err, tc.want)
		}
	}
	if err := CheckDataset("example.com:my-project", "railyard_1"); err != nil {
		t.Errorf("a domain-scoped project: %v", err)
	}
}

func TestParseViewRejectsBadFiles(t *testing.T) {
	const body = "SELECT 1 AS x FROM `{project}.{dataset}.dead_letter`\n"
	for _, tc := range []struct {
		name, file, text, want string
	}{
		{"no header", "views/x.sql", body, "no header"},
		{"no view line", "views/x.sql", "-- x\n" + body, "want -- view: NAME"},
		{"no description", "views/x.sql", "-- view: x\n-- column x INT64: X.\n" + body, "has no description"},
		{"no columns", "views/x.sql", "-- view: x\n-- About x.\n" + body, "declares no columns"},
		{"bad column line", "views/x.sql", "-- view: x\n-- About x.\n-- column x: no type.\n" + body, "is neither"},
		{"unknown type", "views/x.sql", "-- view: x\n-- About x.\n-- column x NUMBER: X.\n" + body, "is neither"},
		{"unknown table", "views/x.sql", "-- view: x\n-- About x.\n-- columns from nope: a\n" + body, `no table "nope"`},
		{"unknown column", "views/x.sql", "-- view: x\n-- About x.\n-- columns from dead_letter: nope\n" + body, `has no column "nope"`},
		{"column twice", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\n-- column x INT64: X.\n" + body, "declares column x twice"},
		{"unindented continuation", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X\n-- more.\n" + body, "indent a continuation"},
		{"no query", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\n", "has no query"},
		{"unqualified name", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\nSELECT 1 AS x FROM `dead_letter`\n", "use fully qualified names"},
		{"stray placeholder", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\nSELECT '{dataset}' AS x\n", "outside a `{project}.{dataset}.name` reference"},
		{"file named otherwise", "views/y.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\n" + body, "name the file x.sql"},
		{"reads nothing known", "views/x.sql", "-- view: x\n-- About x.\n-- column x INT64: X.\nSELECT x FROM `{project}.{dataset}.nope`\n", `reads "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadViews(fstest.MapFS{tc.file: {Data: []byte(tc.text)}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadViews = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("views reading each other in a cycle", func(t *testing.T) {
		_, err := loadViews(fstest.MapFS{
			"views/a.sql": {Data: []byte("-- view: a\n-- A.\n-- column x INT64: X.\nSELECT x FROM `{project}.{dataset}.b`\n")},
			"views/b.sql": {Data: []byte("-- view: b\n-- B.\n-- column x INT64: X.\nSELECT x FROM `{project}.{dataset}.a`\n")},
		})
		if err == nil || !strings.Contains(err.Error(), "cycle: a -> b -> a") {
			t.Errorf("loadViews = %v, want a cycle error", err)
		}
	})
}

// TestPartitionFiltersReachTheTables is a static guard (not a SQL parser)
// for what the emulator cannot show: that a filter on a view's time column
// prunes the base tables' partitions on BigQuery. BigQuery prunes when the
// partition column is compared as it is, and pushes a filter through a
// window function only when the column is in its PARTITION BY. So in every
// view over partitioned tables:
//   - each PARTITION BY names the partition column of the table it numbers;
//   - no predicate (WHERE, AND, OR, ON) applies a function to a partition
//     column.
func TestPartitionFiltersReachTheTables(t *testing.T) {
	partitionCols := map[string]bool{}
	for _, table := range Tables {
		if table.PartitionField != "" {
			partitionCols[table.PartitionField] = true
		}
	}
	var cols []string
	for c := range partitionCols {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	colAlt := strings.Join(cols, "|")
	wrapped := regexp.MustCompile(`(?i)\b(WHERE|AND|OR|ON)\s+(NOT\s+)?[A-Z_]+\s*\(\s*(\w+\.)?(` + colAlt + `)\b`)
	partitionBy := regexp.MustCompile(`(?is)PARTITION\s+BY\s+(.*?)\s+ORDER\s+BY`)
	comment := regexp.MustCompile(`--[^\n]*`) // the views hold no "--" inside strings
	for _, v := range Views {
		q, err := v.Query("my-project", "railyard")
		if err != nil {
			t.Fatal(err)
		}
		q = comment.ReplaceAllString(q, "")
		if m := wrapped.FindString(q); m != "" {
			t.Errorf("view %s wraps a partition column in a predicate (%q): BigQuery cannot prune on it", v.Name, m)
		}
		readsPartitioned := slices.ContainsFunc(v.Reads, func(name string) bool {
			table, err := LookupTable(name)
			return err == nil && table.PartitionField != ""
		})
		if !readsPartitioned {
			continue // numbers rows of small tables or of other views only
		}
		for _, m := range partitionBy.FindAllStringSubmatch(q, -1) {
			ok := false
			for _, item := range strings.Split(m[1], ",") {
				item = strings.TrimSpace(item)
				if i := strings.LastIndexByte(item, '.'); i >= 0 {
					item = item[i+1:]
				}
				ok = ok || partitionCols[item]
			}
			if !ok {
				t.Errorf("view %s: PARTITION BY %s lacks the table's partition column: a filter on it cannot pass the window function", v.Name, strings.Join(strings.Fields(m[1]), " "))
			}
		}
	}
	// The guard itself catches what it is for.
	for _, bad := range []string{
		"SELECT 1 FROM t AS b WHERE TIMESTAMP_TRUNC(b.event_time, DAY) = x",
		"SELECT 1 FROM t AS b WHERE x AND DATE(event_time) = y",
	} {
		if !wrapped.MatchString(bad) {
			t.Errorf("the guard misses %q", bad)
		}
	}
}

// TestLayerSpansCoverEveryBatchTable: layer_spans lists the batch tables
// in its SQL, so that a table no run has covered yet still gets its one
// speed span; the list must be schemas.BatchTables.
func TestLayerSpansCoverEveryBatchTable(t *testing.T) {
	v, err := LookupView("layer_spans")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`UNNEST\(\[([^\]]*)\]\) AS table_name`).FindStringSubmatch(v.query)
	if m == nil {
		t.Fatal("layer_spans lists no batch tables")
	}
	var listed []string
	for _, s := range strings.Split(m[1], ",") {
		listed = append(listed, strings.Trim(strings.TrimSpace(s), "'"))
	}
	if !slices.Equal(listed, BatchTables) {
		t.Errorf("layer_spans lists %v, schemas.BatchTables is %v", listed, BatchTables)
	}
}
