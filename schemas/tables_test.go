package schemas

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenColumn is a column as reviewers read it in the golden files.
type goldenColumn struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Mode        string `json:"mode"`
	Description string `json:"description"`
}

type goldenTable struct {
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	PartitionDay string         `json:"partition_by_day,omitempty"`
	Clustering   []string       `json:"clustering,omitempty"`
	Columns      []goldenColumn `json:"columns"`
}

// TestTableSchemasMatchGolden fails when a table's schema changes without
// its golden file: a schema change must show in review.
func TestTableSchemasMatchGolden(t *testing.T) {
	for _, table := range Tables {
		t.Run(table.Name, func(t *testing.T) {
			md := table.Metadata()
			g := goldenTable{Name: md.Name, Description: md.Description}
			if md.TimePartitioning != nil {
				g.PartitionDay = md.TimePartitioning.Field
			}
			if md.Clustering != nil {
				g.Clustering = md.Clustering.Fields
			}
			for _, f := range md.Schema {
				mode := "REQUIRED"
				switch {
				case f.Repeated:
					mode = "REPEATED"
				case !f.Required:
					mode = "NULLABLE"
				}
				g.Columns = append(g.Columns, goldenColumn{f.Name, string(f.Type), mode, f.Description})
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("..", "testdata", "golden", "schemas", table.Name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./schemas -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("schema of %s differs from %s; if the change is meant, run go test ./schemas -update and review the diff.\ngot:\n%s", table.Name, path, got)
			}
		})
	}
}

func TestPartitionAndClusteringColumnsExist(t *testing.T) {
	for _, table := range Tables {
		cols := map[string]string{}
		for _, f := range table.Schema() {
			cols[f.Name] = string(f.Type)
		}
		if table.PartitionField != "" && cols[table.PartitionField] != "TIMESTAMP" {
			t.Errorf("%s: partition column %q is %q, want a TIMESTAMP column", table.Name, table.PartitionField, cols[table.PartitionField])
		}
		for _, c := range table.Clustering {
			if cols[c] == "" {
				t.Errorf("%s: clustering column %q does not exist", table.Name, c)
			}
		}
	}
}

func TestSchemaOfRejectsUntaggedFields(t *testing.T) {
	type noTag struct{ A string }
	type noDesc struct {
		A string `bq:"a"`
	}
	type wrongType struct {
		A string `bq:"a,TIMESTAMP" desc:"x"`
	}
	for _, tc := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[noTag](), "no bq tag"},
		{reflect.TypeFor[noDesc](), "no desc tag"},
		{reflect.TypeFor[wrongType](), "does not fit"},
		{reflect.TypeFor[int](), "not a struct"},
	} {
		if _, err := SchemaOf(tc.typ); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SchemaOf(%v) = %v, want an error containing %q", tc.typ, err, tc.want)
		}
	}
}

func TestSpeedTablesExtendBatchTablesWithThePane(t *testing.T) {
	for batch, speed := range map[string]string{TableMetricsMinuteBatch: TableMetricsMinuteSpeed, TableSessionsBatch: TableSessionsSpeed} {
		b, _ := LookupTable(batch)
		s, _ := LookupTable(speed)
		bs, ss := b.Schema(), s.Schema()
		if len(ss) != len(bs)+3 {
			t.Fatalf("%s has %d columns, want %s's %d plus the 3 pane columns", speed, len(ss), batch, len(bs))
		}
		for i, f := range bs {
			if ss[i].Name != f.Name || ss[i].Type != f.Type {
				t.Errorf("%s column %d = %s %s, want %s %s as in %s", speed, i, ss[i].Name, ss[i].Type, f.Name, f.Type, batch)
			}
		}
		for i, name := range []string{"pane_index", "pane_timing", "processed_at"} {
			if got := ss[len(bs)+i].Name; got != name {
				t.Errorf("%s pane column %d = %s, want %s", speed, i, got, name)
			}
		}
	}
}
