package looker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/schemas"
)

// The parser is pinned in tools/package.json and tools/package-lock.json;
// the test installs it with npm ci into a cache folder named after the
// lock file's hash, once, and runs offline from then on.
const (
	toolsDir      = "tools"
	envCache      = "RAILYARD_CACHE"
	installBudget = 5 * time.Minute
)

// TestLookML parses every LookML file with lookml-parser and checks that
// each ${TABLE}.column names a column of the BigQuery view it reads (the
// catalogue in schemas/views, which pipelines/serving checks against the
// emulator's view schemas), that field references resolve, and that the
// dashboards use fields their explores have.
func TestLookML(t *testing.T) {
	project := parseLookML(t, ".")
	if problems := checkProject(project); len(problems) > 0 {
		t.Errorf("%d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	var got []string
	for _, f := range project.Files {
		got = append(got, f.Path)
	}
	want := []string{"manifest.lkml", "railyard.model.lkml",
		"dashboards/pipeline_health.dashboard.lookml", "dashboards/traffic.dashboard.lookml"}
	for _, v := range schemas.Views {
		want = append(want, "views/"+v.Name+".view.lkml")
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("LookML files:\n got %v\nwant %v (a view file per serving view, the model, the manifest, two dashboards)", got, want)
	}
}

// TestLookMLCheckCatchesMistakes runs the same check over a small broken
// project, to show it catches what it is for.
func TestLookMLCheckCatchesMistakes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("views/events.view.lkml", `view: events {
  sql_table_name: `+"`@{project}.@{dataset}.events`"+` ;;
  dimension: source { type: string sql: ${TABLE}.sorce ;; }
  dimension_group: event { type: time timeframes: [date] sql: ${TABLE}.source ;; }
  measure: total_value { type: sum sql: ${TABLE}.layer ;; }
  measure: users { type: count_distinct sql: ${user} ;; }
}`)
	write("m.model.lkml", "connection: \"c\"\ninclude: \"/views/*.view.lkml\"\nexplore: events {}\nexplore: nope {}\n")
	write("dashboards/d.dashboard.lookml", `- dashboard: d
  title: D
  elements:
  - name: e
    model: m
    explore: events
    fields: [events.event_week, events.source]
    listen:
      nofilter: events.source
`)
	problems := strings.Join(checkProject(parseLookML(t, dir)), "\n")
	for _, want := range []string{
		"events.source: ${TABLE}.sorce: view events has no column sorce",
		"events.event: dimension_group of type time on ${TABLE}.source, a STRING column",
		"events.total_value: sum of ${TABLE}.layer, a STRING column",
		"events.users: ${user} is not a field of view events",
		"explore nope: no view of that name",
		"d/e: field events.event_week is not in explore events",
		`d/e: listens to filter "nofilter", which the dashboard does not define`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("the check did not report %q; it reported:\n%s", want, problems)
		}
	}
}

// project is what parse.js prints: lookml-parser's parseFiles output.
type project struct {
	Errors []json.RawMessage `json:"errors"`
	Files  []lookmlFile      `json:"files"`
}

type lookmlFile struct {
	Path      string                    `json:"$file_path"`
	Type      string                    `json:"$file_type"`
	View      map[string]lookmlObject   `json:"view"`
	Explore   map[string]lookmlObject   `json:"explore"`
	Dashboard map[string][]lookmlObject `json:"dashboard"`
	Error     json.RawMessage           `json:"error"`
}

type lookmlObject = map[string]any

// parseLookML runs the pinned lookml-parser over the project in dir.
func parseLookML(t *testing.T, dir string) project {
	t.Helper()
	modules := installParser(t)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(toolsDir, "parse.js"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "node", script, abs)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %s: %v\n%s", script, abs, err, stderr.String())
	}
	var p project
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		t.Fatalf("parse.js printed no project: %v\n%.2000s", err, stdout.String())
	}
	for _, e := range p.Errors {
		t.Errorf("LookML parse error: %s", e)
	}
	return p
}

// installParser returns the node_modules folder holding the pinned parser,
// installing it with npm ci into the cache folder when it is not there yet.
func installParser(t *testing.T) string {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(toolsDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(filepath.Join(toolsDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(append([]byte{}, pkg...), lock...))
	cache := os.Getenv(envCache)
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache folder for the LookML parser (set $%s): %v", envCache, err)
		}
		cache = filepath.Join(base, "railyard")
	}
	dir := filepath.Join(cache, "lookml-parser-"+hex.EncodeToString(sum[:6]))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "lookml-parser", "package.json")); err == nil {
		return modules
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the LookML check needs %s on PATH (Node.js 18 or later): %v", tool, err)
		}
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// Install beside the final folder and rename it into place, so that a
	// half-finished install is never taken for a finished one.
	tmp, err := os.MkdirTemp(cache, "lookml-parser-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), installBudget)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s (the first run needs the npm registry; later runs are offline): %v\n%s", tmp, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		var linkErr *os.LinkError
		if !errors.As(err, &linkErr) || !dirExists(filepath.Join(modules, "lookml-parser")) {
			t.Fatalf("move the LookML parser into %s: %v", dir, err)
		} // else installed by a parallel run meanwhile
	}
	t.Logf("installed the LookML parser into %s in %v", dir, time.Since(start).Round(time.Millisecond))
	return modules
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

var (
	tableColumn = regexp.MustCompile(`\$\{TABLE\}\.([A-Za-z_][A-Za-z0-9_]*)`)
	fieldRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	tableName   = regexp.MustCompile("^`@\\{project\\}\\.@\\{dataset\\}\\.([a-z0-9_]+)`$")
)

// lkView is a LookML view with the BigQuery view it reads and its fields.
type lkView struct {
	name   string
	bq     schemas.View
	fields map[string]bool // every field name an explore or dashboard can use
}

// checkProject returns every problem it finds in a parsed LookML project.
func checkProject(p project) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	views := map[string]*lkView{}
	for _, f := range p.Files {
		if len(f.Error) > 0 {
			report("%s: %s", f.Path, f.Error)
		}
		for name, obj := range f.View {
			views[name] = checkView(name, obj, report)
		}
	}
	explores := map[string]*lkView{}
	for _, f := range p.Files {
		for name, obj := range f.Explore {
			v := views[name]
			if from, ok := obj["from"].(string); ok {
				v = views[from]
			}
			if v == nil {
				report("explore %s: no view of that name", name)
				continue
			}
			explores[name] = v
			if af, ok := obj["always_filter"].(lookmlObject); ok {
				if filters, ok := af["filters"].(lookmlObject); ok {
					for field := range filters {
						if !strings.HasPrefix(field, "$") {
							checkField(fmt.Sprintf("explore %s: always_filter", name), field, v, report)
						}
					}
				}
			}
		}
	}
	for _, f := range p.Files {
		for name, dashboards := range f.Dashboard {
			for _, d := range dashboards {
				checkDashboard(name, d, explores, report)
			}
		}
	}
	return problems
}

func checkView(name string, obj lookmlObject, report func(string, ...any)) *lkView {
	v := &lkView{name: name, fields: map[string]bool{}}
	table, _ := obj["sql_table_name"].(string)
	m := tableName.FindStringSubmatch(strings.TrimSpace(table))
	if m == nil {
		report("view %s: sql_table_name %q is not `@{project}.@{dataset}.<serving view>`", name, table)
		return v
	}
	bq, err := schemas.LookupView(m[1])
	if err != nil {
		report("view %s: reads %s, which is not a serving view", name, m[1])
		return v
	}
	v.bq = bq

	kinds := map[string]lookmlObject{}
	for _, kind := range []string{"dimension", "dimension_group", "measure"} {
		fields, _ := obj[kind].(lookmlObject)
		kinds[kind] = fields
		for fname, f := range fields {
			if kind != "dimension_group" {
				v.fields[fname] = true
				continue
			}
			spec, _ := f.(lookmlObject)
			for _, tf := range strings.Fields(fmt.Sprint(spec["timeframes"])) {
				v.fields[fname+"_"+strings.Trim(tf, "[]")] = true
			}
		}
	}
	for kind, fields := range kinds {
		for fname, f := range fields {
			spec, _ := f.(lookmlObject)
			sql, _ := spec["sql"].(string)
			typ, _ := spec["type"].(string)
			where := name + "." + fname
			var cols []schemas.ViewColumn
			for _, m := range tableColumn.FindAllStringSubmatch(sql, -1) {
				c, ok := bq.Column(m[1])
				if !ok {
					report("%s: ${TABLE}.%s: view %s has no column %s (its columns: schemas/views/%s)", where, m[1], bq.Name, m[1], bq.File)
					continue
				}
				cols = append(cols, c)
			}
			for _, m := range fieldRef.FindAllStringSubmatch(sql, -1) {
				if m[1] != "TABLE" && !v.fields[m[1]] {
					report("%s: ${%s} is not a field of view %s", where, m[1], name)
				}
			}
			if kind == "dimension_group" && typ == "time" {
				for _, c := range cols {
					if c.Type != "TIMESTAMP" {
						report("%s: dimension_group of type time on ${TABLE}.%s, a %s column", where, c.Name, c.Type)
					}
				}
			}
			if kind == "measure" && slices.Contains([]string{"sum", "average", "median"}, typ) {
				for _, c := range cols {
					if c.Type != "INT64" && c.Type != "FLOAT64" {
						report("%s: %s of ${TABLE}.%s, a %s column", where, typ, c.Name, c.Type)
					}
				}
			}
		}
	}
	return v
}

// checkField reports a view.field reference that is not a field of v.
func checkField(where, ref string, v *lkView, report func(string, ...any)) {
	view, field, ok := strings.Cut(ref, ".")
	if !ok || view != v.name || !v.fields[field] {
		report("%s: field %s is not in explore %s", where, ref, v.name)
	}
}

func checkDashboard(name string, d lookmlObject, explores map[string]*lkView, report func(string, ...any)) {
	filterNames := map[string]bool{}
	filters, _ := d["filters"].([]any)
	for _, f := range filters {
		spec, _ := f.(map[string]any)
		fname, _ := spec["name"].(string)
		filterNames[fname] = true
		if explore, ok := spec["explore"].(string); ok {
			if v := explores[explore]; v == nil {
				report("%s: filter %s uses explore %s, which the model does not define", name, fname, explore)
			} else if field, ok := spec["field"].(string); ok {
				checkField(fmt.Sprintf("%s: filter %s", name, fname), field, v, report)
			}
		}
	}
	elements, _ := d["elements"].([]any)
	if len(elements) == 0 {
		report("%s: no elements", name)
	}
	for _, e := range elements {
		spec, _ := e.(map[string]any)
		ename, _ := spec["name"].(string)
		where := name + "/" + ename
		explore, _ := spec["explore"].(string)
		v := explores[explore]
		if v == nil {
			report("%s: explore %q is not in the model", where, explore)
			continue
		}
		var refs []string
		for _, key := range []string{"fields", "pivots", "sorts"} {
			list, _ := spec[key].([]any)
			for _, item := range list {
				s, _ := item.(string)
				refs = append(refs, strings.TrimSuffix(strings.TrimSuffix(s, " desc"), " asc"))
			}
		}
		if fs, ok := spec["filters"].(map[string]any); ok {
			for field := range fs {
				refs = append(refs, field)
			}
		}
		if listen, ok := spec["listen"].(map[string]any); ok {
			for filter, field := range listen {
				if !filterNames[filter] {
					report("%s: listens to filter %q, which the dashboard does not define", where, filter)
				}
				refs = append(refs, fmt.Sprint(field))
			}
		}
		for _, ref := range refs {
			checkField(where, ref, v, report)
		}
	}
}
