package monitoring

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/railyard/railyard/schemas/metricnames"
)

// The metric names the policies may watch are those of the registry,
// schemas/metricnames. This file keeps the code honest to it: every
// beam.NewCounter, NewDistribution and NewGauge call of the module's
// non-test code takes its namespace and name from the registry.

const (
	beamPath        = "github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamMetricsPath = "github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	registryPath    = "github.com/railyard/railyard/schemas/metricnames"
	registryDir     = "schemas/metricnames"
)

// notYetOnTheRegistry are packages whose metric calls are not checked:
// none, every package takes its names from the registry.
var notYetOnTheRegistry []string

// findModuleRoot walks up from dir to the directory holding go.mod.
func findModuleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// code is what the module's non-test Go code says about metrics and logs.
type code struct {
	metricCalls  int
	unregistered []string        // metric calls whose name is not the registry's
	messages     map[string]bool // constant messages of slog calls outside runners/
}

var slogMessageArg = map[string]int{
	"Debug": 0, "Info": 0, "Warn": 0, "Error": 0,
	"DebugContext": 1, "InfoContext": 1, "WarnContext": 1, "ErrorContext": 1, "Log": 2,
}

// readCode parses every non-test Go file of the module under root.
func readCode(root string) (*code, error) {
	names, funcs, err := registryDecls(filepath.Join(root, registryDir))
	if err != nil {
		return nil, err
	}
	c := &code{messages: map[string]bool{}}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if d.IsDir() {
			if path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{} // import path → local name
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if spec.Name != nil {
				name = spec.Name.Name
			}
			imports[p] = name
		}
		skip := false
		for _, dir := range notYetOnTheRegistry {
			skip = skip || strings.HasPrefix(rel, dir+"/")
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			pkg, fn := pkgSel(call.Fun)
			switch {
			case (pkg == imports[beamPath] || pkg == imports[beamMetricsPath]) && pkg != "" && len(call.Args) == 2 &&
				(fn == "NewCounter" || fn == "NewDistribution" || fn == "NewGauge"):
				c.metricCalls++
				mn := imports[registryPath]
				if p, name := pkgSel(call.Args[0]); skip || mn != "" && p == mn && name == "Namespace" && registered(call.Args[1], mn, names, funcs) {
					return true
				}
				c.unregistered = append(c.unregistered, fmt.Sprintf("%s:%d: %s.%s(%s, %s)", rel, fset.Position(call.Pos()).Line,
					pkg, fn, source(fset, path, call.Args[0]), source(fset, path, call.Args[1])))
			case pkg == imports["log/slog"] && pkg != "" && !strings.HasPrefix(rel, "runners/"):
				if i, ok := slogMessageArg[fn]; ok && i < len(call.Args) {
					if lit, ok := call.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						msg, _ := strconv.Unquote(lit.Value)
						c.messages[msg] = true
					}
				}
			}
			return true
		})
		return nil
	})
	return c, err
}

// registered reports whether name is metricnames.X, X a name of the
// registry, or a call of one of its functions.
func registered(name ast.Expr, mn string, names map[string]string, funcs map[string]bool) bool {
	if call, ok := name.(*ast.CallExpr); ok {
		p, fn := pkgSel(call.Fun)
		return p == mn && funcs[fn]
	}
	p, id := pkgSel(name)
	if p != mn {
		return false
	}
	m, ok := metricnames.Lookup(names[id])
	return ok && m.Name == names[id]
}

// registryDecls returns the registry's exported string constants, by
// name, and its exported functions that return a name.
func registryDecls(dir string) (map[string]string, map[string]bool, error) {
	names, funcs := map[string]string{}, map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				res := d.Type.Results
				if d.Recv == nil && d.Name.IsExported() && res != nil && len(res.List) == 1 && identName(res.List[0].Type) == "string" {
					funcs[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					for i := 0; ok && d.Tok == token.CONST && i < len(vs.Names) && i < len(vs.Values); i++ {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING && vs.Names[i].IsExported() {
							names[vs.Names[i].Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	if len(names) == 0 || len(funcs) == 0 {
		return nil, nil, fmt.Errorf("%s: no names or functions found", dir)
	}
	return names, funcs, nil
}

// pkgSel splits pkg.Name; it returns "", "" for anything else.
func pkgSel(e ast.Expr) (pkg, name string) {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		return identName(sel.X), sel.Sel.Name
	}
	return "", ""
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func source(fset *token.FileSet, path string, e ast.Expr) string {
	src, err := os.ReadFile(path)
	start, end := fset.Position(e.Pos()).Offset, fset.Position(e.End()).Offset
	if err != nil || end > len(src) {
		return "?"
	}
	return string(src[start:end])
}

// TestMetricsComeFromTheRegistry fails on a metric created with a name
// that is not the registry's: a string literal, a fmt pattern, a local
// constant. Declare the name in schemas/metricnames and use it from there.
func TestMetricsComeFromTheRegistry(t *testing.T) {
	w := mustWorld(t)
	for _, u := range w.code.unregistered {
		t.Errorf("%s: take the namespace and name from schemas/metricnames", u)
	}
	if w.code.metricCalls < 20 {
		t.Errorf("found only %d metric calls; the scan is broken", w.code.metricCalls)
	}
}

// TestTheRegistryCheckRejectsNamesFromElsewhere proves the check fails on
// the ways a name can bypass the registry.
func TestTheRegistryCheckRejectsNamesFromElsewhere(t *testing.T) {
	root := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := mustWorld(t)
	registry, err := os.ReadFile(filepath.Join(w.root, registryDir, "metricnames.go"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.mod", "module github.com/railyard/railyard\n")
	write(registryDir+"/metricnames.go", string(registry))
	write("transforms/x/x.go", `package x

import (
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	mn "github.com/railyard/railyard/schemas/metricnames"
)

const local = "records_in"

var (
	good1 = beam.NewCounter(mn.Namespace, mn.RecordsIn)
	good2 = beam.NewDistribution(mn.Namespace, mn.RowsWritten("events_speed"))
	bad1  = beam.NewCounter("railyard", mn.RecordsIn)
	bad2  = beam.NewCounter(mn.Namespace, "records_in")
	bad3  = beam.NewCounter(mn.Namespace, local)
	bad4  = beam.NewCounter(mn.Namespace, fmt.Sprintf("shard_%02d", 1))
	bad5  = beam.NewCounter(mn.Namespace, mn.AggregationMetrics)
)
`)
	write("transforms/x/x_test.go", "package x\n\nvar inATest = beam.NewCounter(\"railyard\", \"t\")\n")
	c, err := readCode(root)
	if err != nil {
		t.Fatal(err)
	}
	if c.metricCalls != 7 || len(c.unregistered) != 5 {
		t.Fatalf("%d calls, unregistered %q; want 7 calls, bad1 to bad5 unregistered", c.metricCalls, c.unregistered)
	}
	for i, want := range []string{`("railyard", mn.RecordsIn)`, `(mn.Namespace, "records_in")`, `(mn.Namespace, local)`, `fmt.Sprintf`, `mn.AggregationMetrics)`} {
		if !strings.Contains(c.unregistered[i], want) {
			t.Errorf("unregistered[%d] = %q, want it to contain %q", i, c.unregistered[i], want)
		}
	}
}
