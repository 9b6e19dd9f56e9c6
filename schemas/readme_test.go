package schemas

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The catalogue section of README.md is generated from Tables and Views;
// go test ./schemas -update rewrites it.
const (
	readmePath     = "README.md"
	catalogueBegin = "<!-- BEGIN GENERATED CATALOGUE: go test ./schemas -update -->"
	catalogueEnd   = "<!-- END GENERATED CATALOGUE -->"
)

func TestReadmeCatalogueIsCurrent(t *testing.T) {
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	before, rest, ok1 := strings.Cut(text, catalogueBegin)
	_, after, ok2 := strings.Cut(rest, catalogueEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", readmePath, catalogueBegin, catalogueEnd)
	}
	want := before + catalogueBegin + "\n" + catalogueMarkdown() + catalogueEnd + after
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if text != want {
		t.Errorf("the catalogue in %s is stale: run go test ./schemas -update and review the diff", readmePath)
	}
}

// catalogueMarkdown renders every view and table with its columns.
func catalogueMarkdown() string {
	var b strings.Builder
	cell := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace
	b.WriteString("\n### Views\n")
	for _, v := range Views {
		fmt.Fprintf(&b, "\n#### `%s`\n\n%s\n\nReads: %s. SQL: [views/%s](views/%s).\n\n", v.Name, v.Description, backticked(v.Reads), v.File, v.File)
		b.WriteString("| column | type | description |\n| --- | --- | --- |\n")
		for _, c := range v.Columns {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Name, cell(c.Type), cell(c.Description))
		}
	}
	b.WriteString("\n### Tables\n")
	for _, table := range Tables {
		fmt.Fprintf(&b, "\n#### `%s`\n\n%s\n\n", table.Name, table.Description)
		if table.PartitionField != "" {
			fmt.Fprintf(&b, "Partitioned by day of `%s`; clustered by %s.\n\n", table.PartitionField, backticked(table.Clustering))
		} else {
			b.WriteString("Not partitioned (small).\n\n")
		}
		b.WriteString("| column | type | mode | description |\n| --- | --- | --- | --- |\n")
		for _, f := range table.Schema() {
			mode := "REQUIRED"
			switch {
			case f.Repeated:
				mode = "REPEATED"
			case !f.Required:
				mode = "NULLABLE"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, mode, cell(f.Description))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func backticked(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "`" + n + "`"
	}
	return strings.Join(out, ", ")
}
