package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"cloud.google.com/go/bigquery"
)

// The serving views' SQL, one file per view. Each file starts with a
// comment header that is the view's catalogue entry, then the query:
//
//	-- view: NAME
//	-- The view's description, over as many comment lines as it needs.
//	--
//	-- columns from TABLE: a, b, c
//	-- column NAME TYPE: The column's description,
//	--   continued on lines indented by two spaces or more.
//
// "columns from" takes name, type and description from a table of Tables
// (the Go tags stay the one source); "column" declares a column of its own.
// Together they list the view's output columns in order. The query names
// tables and views as `{project}.{dataset}.name`: fully qualified, which
// both BigQuery and its emulator need.
//
//go:embed views/*.sql
var viewFiles embed.FS

// View is one serving view: its catalogue entry and its query.
type View struct {
	Name        string
	Description string
	// Columns are the view's output columns in order, each with a type
	// and a description.
	Columns []ViewColumn
	// Reads lists the tables and views the query reads.
	Reads []string
	// File is the SQL file the view comes from, under schemas/views.
	File string

	query string // with {project} and {dataset} placeholders
}

// ViewColumn is one output column of a view.
type ViewColumn struct {
	Name string
	// Type is a GoogleSQL type name: STRING, INT64, FLOAT64, BOOL,
	// TIMESTAMP, JSON, BYTES, or ARRAY<T> for a repeated column.
	Type        string
	Description string
}

// Views is every serving view, in creation order: a view comes after the
// views it reads.
var Views = mustLoadViews()

// LookupView returns the definition of the named view.
func LookupView(name string) (View, error) {
	for _, v := range Views {
		if v.Name == name {
			return v, nil
		}
	}
	return View{}, fmt.Errorf("schemas: no view %q", name)
}

// CheckDataset reports whether project and dataset are names that can go
// into SQL as `project.dataset.table` as they are.
func CheckDataset(project, dataset string) error {
	if !ValidProject(project) {
		return fmt.Errorf("%q is not a Google Cloud project id", project)
	}
	if !ValidDataset(dataset) {
		return fmt.Errorf("%q is not a BigQuery dataset name (letters, digits and underscores)", dataset)
	}
	return nil
}

// Query returns the view's SQL for the dataset project.dataset.
func (v View) Query(project, dataset string) (string, error) {
	if err := CheckDataset(project, dataset); err != nil {
		return "", fmt.Errorf("schemas: view %s: %w", v.Name, err)
	}
	return strings.NewReplacer("{project}", project, "{dataset}", dataset).Replace(v.query), nil
}

// Schema returns the view's columns as a BigQuery schema with their
// descriptions: what BigQuery shows for the view once its column
// descriptions are set. Modes are not part of a view's contract and are
// left unset.
func (v View) Schema() bigquery.Schema {
	s := make(bigquery.Schema, 0, len(v.Columns))
	for _, c := range v.Columns {
		f := &bigquery.FieldSchema{Name: c.Name, Description: c.Description}
		if elem, ok := strings.CutPrefix(c.Type, "ARRAY<"); ok {
			f.Repeated = true
			f.Type = bigquery.FieldType(strings.TrimSuffix(elem, ">"))
		} else {
			f.Type = bigquery.FieldType(c.Type)
		}
		s = append(s, f)
	}
	return s
}

// Column returns the named output column of the view.
func (v View) Column(name string) (ViewColumn, bool) {
	for _, c := range v.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return ViewColumn{}, false
}

func mustLoadViews() []View {
	views, err := loadViews(viewFiles)
	if err != nil {
		panic(fmt.Sprintf("schemas: %v", err)) // the files are embedded at compile time; a test loads them
	}
	return views
}

// loadViews reads every views/*.sql file of fsys and orders the views so
// that each comes after the views it reads.
func loadViews(fsys fs.FS) ([]View, error) {
	files, err := fs.Glob(fsys, "views/*.sql")
	if err != nil {
		return nil, err
	}
	byName := map[string]View{}
	var names []string
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		v, err := parseView(file, string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if want := strings.TrimSuffix(path.Base(file), ".sql"); v.Name != want {
			return nil, fmt.Errorf("%s: declares view %q; name the file %s.sql", file, v.Name, v.Name)
		}
		byName[v.Name] = v
		names = append(names, v.Name)
	}
	for _, name := range names {
		for _, r := range byName[name].Reads {
			if _, isView := byName[r]; isView {
				continue
			}
			if _, err := LookupTable(r); err != nil {
				return nil, fmt.Errorf("view %s reads %q, which is neither a table nor a view", name, r)
			}
		}
	}
	// Order: dependencies first, otherwise by name.
	var ordered []View
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("views read each other in a cycle: %s", strings.Join(append(chain, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		for _, r := range byName[name].Reads {
			if _, isView := byName[r]; isView {
				if err := visit(r, append(chain, name)); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		ordered = append(ordered, byName[name])
		return nil
	}
	for _, name := range names {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return ordered, nil
}

var (
	viewLinePattern    = regexp.MustCompile(`^view: ([a-z][a-z0-9_]*)$`)
	columnLinePattern  = regexp.MustCompile(`^column ([a-z][a-z0-9_]*) (STRING|INT64|FLOAT64|BOOL|TIMESTAMP|JSON|BYTES|ARRAY<[A-Z0-9]+>): (.+)$`)
	columnsLinePattern = regexp.MustCompile(`^columns from ([a-z][a-z0-9_]*): (.+)$`)
	readsPattern       = regexp.MustCompile("`\\{project\\}\\.\\{dataset\\}\\.([A-Za-z0-9_]+)`")
)

// parseView splits a view file into its catalogue header and its query.
func parseView(file, text string) (View, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var header []string
	body := 0
	for body < len(lines) && strings.HasPrefix(lines[body], "--") {
		header = append(header, lines[body])
		body++
	}
	v := View{File: path.Base(file)}
	if len(header) == 0 {
		return v, fmt.Errorf("no header: the file must start with -- view: NAME")
	}
	m := viewLinePattern.FindStringSubmatch(strings.TrimSpace(strings.TrimPrefix(header[0], "--")))
	if m == nil {
		return v, fmt.Errorf("line 1: want -- view: NAME, got %q", header[0])
	}
	v.Name = m[1]

	// Gather entries: the description, then one entry per column line with
	// its continuation lines.
	type entry struct {
		line int
		text string
	}
	var desc []string
	var entries []entry
	for i, raw := range header[1:] {
		content := strings.TrimPrefix(raw, "--")
		text := strings.TrimSpace(content)
		switch {
		case text == "":
			continue
		case strings.HasPrefix(text, "column ") || strings.HasPrefix(text, "columns from "):
			entries = append(entries, entry{i + 2, text})
		case len(entries) > 0:
			if !strings.HasPrefix(content, "   ") {
				return v, fmt.Errorf("line %d: %q: indent a continuation by two spaces or more after --", i+2, raw)
			}
			entries[len(entries)-1].text += " " + text
		default:
			desc = append(desc, text)
		}
	}
	v.Description = strings.Join(desc, " ")
	if v.Description == "" {
		return v, fmt.Errorf("view %s has no description", v.Name)
	}
	for _, e := range entries {
		if m := columnLinePattern.FindStringSubmatch(e.text); m != nil {
			v.Columns = append(v.Columns, ViewColumn{Name: m[1], Type: m[2], Description: m[3]})
			continue
		}
		if m := columnsLinePattern.FindStringSubmatch(e.text); m != nil {
			table, err := LookupTable(m[1])
			if err != nil {
				return v, fmt.Errorf("line %d: %w", e.line, err)
			}
			schema := table.Schema()
			for _, name := range strings.Split(m[2], ",") {
				name = strings.TrimSpace(name)
				i := slices.IndexFunc(schema, func(f *bigquery.FieldSchema) bool { return f.Name == name })
				if i < 0 {
					return v, fmt.Errorf("line %d: table %s has no column %q", e.line, table.Name, name)
				}
				f := schema[i]
				typ := string(f.Type)
				if f.Repeated {
					typ = "ARRAY<" + typ + ">"
				}
				v.Columns = append(v.Columns, ViewColumn{Name: f.Name, Type: typ, Description: f.Description})
			}
			continue
		}
		return v, fmt.Errorf("line %d: %q is neither 'column NAME TYPE: description' nor 'columns from TABLE: a, b'", e.line, e.text)
	}
	if len(v.Columns) == 0 {
		return v, fmt.Errorf("view %s declares no columns", v.Name)
	}
	seen := map[string]bool{}
	for _, c := range v.Columns {
		if seen[c.Name] {
			return v, fmt.Errorf("view %s declares column %s twice", v.Name, c.Name)
		}
		seen[c.Name] = true
	}

	v.query = strings.TrimSpace(strings.Join(lines[body:], "\n"))
	if v.query == "" {
		return v, fmt.Errorf("view %s has no query after its header", v.Name)
	}
	for _, m := range readsPattern.FindAllStringSubmatch(v.query, -1) {
		if !slices.Contains(v.Reads, m[1]) {
			v.Reads = append(v.Reads, m[1])
		}
	}
	rest := readsPattern.ReplaceAllString(v.query, "")
	if strings.Contains(rest, "{project}") || strings.Contains(rest, "{dataset}") {
		return v, fmt.Errorf("view %s uses {project} or {dataset} outside a `{project}.{dataset}.name` reference", v.Name)
	}
	if strings.Contains(rest, "`") {
		return v, fmt.Errorf("view %s quotes a name that is not `{project}.{dataset}.name`: use fully qualified names", v.Name)
	}
	return v, nil
}
