package monitoring

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file finds the Beam metrics and the log lines the jobs emit by
// reading their source.
//
// Why a source scan: an alert is only as good as the name it watches. A
// policy on metric_name="dead_leters" is accepted by Cloud Monitoring and
// then never fires, because nothing ever reports that name; the only
// place that decides which names exist is the code the jobs run. So the
// test reads that code, offline and in milliseconds, without running a
// pipeline: it starts at the two job commands (pipelines/batch and
// pipelines/streaming), follows their imports inside the module, and
// collects every beam.NewCounter / NewDistribution / NewGauge call and
// every slog call there. Code the jobs do not import (benchmarks, tools,
// tests) cannot satisfy a policy. Names built at run time ("dead_letter_"
// + reason) are understood through suffixSources, each of which reads
// the possible suffixes from the code too.

const (
	beamPath    = "github.com/apache/beam/sdks/v2/go/pkg/beam"
	metricsPath = "github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	// namespace is the Beam metrics namespace of every Railyard metric.
	namespace = "railyard"
)

// jobCommands are the main packages of the jobs, relative to the module.
var jobCommands = []string{"pipelines/batch", "pipelines/streaming"}

// module is the part of the Go module the jobs run, parsed.
type module struct {
	root, path string
	fset       *token.FileSet
	pkgs       map[string]*goPackage // by import path
}

type goPackage struct {
	path, dir string
	files     []*goFile
	consts    map[string]constDecl     // package-level constants by name
	funcs     map[string]*ast.FuncDecl // functions by name, methods by "Type.name"
}

type constDecl struct {
	value ast.Expr
	file  *goFile
}

type goFile struct {
	name    string // relative to the module root, with forward slashes
	ast     *ast.File
	pkg     *goPackage
	imports map[string]string // local name → import path
}

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

// loadJobs parses the job commands and every package of the module they
// import, directly or not, as built for Dataflow's workers (linux/amd64,
// no cgo). Test files are not read.
func loadJobs(root string) (*module, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	m := &module{root: root, fset: token.NewFileSet(), pkgs: map[string]*goPackage{}}
	for line := range strings.Lines(string(gomod)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			m.path = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	if m.path == "" {
		return nil, fmt.Errorf("%s/go.mod: no module line", root)
	}
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", false
	var queue []string
	for _, c := range jobCommands {
		queue = append(queue, m.path+"/"+c)
	}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if m.pkgs[path] != nil {
			continue
		}
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path, m.path)))
		bp, err := ctx.ImportDir(dir, 0)
		if err != nil {
			return nil, fmt.Errorf("read package %s: %w", path, err)
		}
		p := &goPackage{path: path, dir: dir, consts: map[string]constDecl{}, funcs: map[string]*ast.FuncDecl{}}
		m.pkgs[path] = p
		for _, name := range bp.GoFiles {
			f, err := m.parseFile(p, filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			p.files = append(p.files, f)
		}
		for _, imp := range bp.Imports {
			if imp == m.path || strings.HasPrefix(imp, m.path+"/") {
				queue = append(queue, imp)
			}
		}
	}
	// Local import names of module packages are their package clauses.
	for _, p := range m.pkgs {
		for _, f := range p.files {
			for _, spec := range f.ast.Imports {
				path, _ := strconv.Unquote(spec.Path.Value)
				if q := m.pkgs[path]; q != nil && spec.Name == nil && len(q.files) > 0 {
					delete(f.imports, defaultImportName(path))
					f.imports[q.files[0].ast.Name.Name] = path
				}
			}
		}
	}
	return m, nil
}

func (m *module) parseFile(p *goPackage, path string) (*goFile, error) {
	af, err := parser.ParseFile(m.fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(m.root, path)
	f := &goFile{name: filepath.ToSlash(rel), ast: af, pkg: p, imports: map[string]string{}}
	for _, spec := range af.Imports {
		ip, _ := strconv.Unquote(spec.Path.Value)
		name := defaultImportName(ip)
		if spec.Name != nil {
			name = spec.Name.Name
		}
		f.imports[name] = ip
	}
	for _, decl := range af.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			p.funcs[funcName(d)] = d
		case *ast.GenDecl:
			if d.Tok != token.CONST {
				continue
			}
			for _, spec := range d.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						p.consts[id.Name] = constDecl{value: vs.Values[i], file: f}
					}
				}
			}
		}
	}
	return f, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// defaultImportName guesses a package's name from its path: the last
// element, skipping a major-version suffix.
func defaultImportName(path string) string {
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && majorVersion.MatchString(last) {
		last = elems[len(elems)-2]
	}
	return last
}

func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

// A namePart is a piece of a metric name: literal text, or a hole whose
// value is only known at run time: an expression (hole) or a fmt verb.
type namePart struct {
	lit  string
	hole string // the expression's source, e.g. "dl.Reason"
	verb string // a fmt verb, e.g. "%02d"
}

// metricDef is one beam.NewCounter/NewDistribution/NewGauge call.
type metricDef struct {
	kind      string // counter, distribution or gauge
	namespace []namePart
	name      []namePart
	file      *goFile
	where     string // the enclosing function or package variable
}

func literal(parts []namePart) (string, bool) {
	var b strings.Builder
	for _, p := range parts {
		if p.hole != "" || p.verb != "" {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// pattern renders a name with its holes in angle brackets, as the README
// lists it: dead_letter_<dl.Reason>.
func pattern(parts []namePart) string {
	var b strings.Builder
	for _, p := range parts {
		switch {
		case p.hole != "":
			b.WriteString("<" + p.hole + ">")
		case p.verb != "":
			b.WriteString("<" + p.verb + ">")
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

var metricConstructors = map[string]string{"NewCounter": "counter", "NewDistribution": "distribution", "NewGauge": "gauge"}

// metricDefs returns every metric the jobs create, in file order.
func (m *module) metricDefs() []metricDef {
	var defs []metricDef
	for _, f := range m.files() {
		for _, decl := range f.ast.Decls {
			where := declName(decl)
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 2 {
					return true
				}
				kind, ok := m.pkgCall(f, call, beamPath, metricConstructors)
				if !ok {
					kind, ok = m.pkgCall(f, call, metricsPath, metricConstructors)
				}
				if ok {
					defs = append(defs, metricDef{
						kind: kind, namespace: m.eval(f, call.Args[0], 0), name: m.eval(f, call.Args[1], 0),
						file: f, where: where,
					})
				}
				return true
			})
		}
	}
	return defs
}

// files returns the parsed files in a stable order.
func (m *module) files() []*goFile {
	var fs []*goFile
	for _, p := range m.pkgs {
		fs = append(fs, p.files...)
	}
	slices.SortFunc(fs, func(a, b *goFile) int { return strings.Compare(a.name, b.name) })
	return fs
}

func declName(decl ast.Decl) string {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		return funcName(d)
	case *ast.GenDecl:
		var names []string
		for _, spec := range d.Specs {
			if vs, ok := spec.(*ast.ValueSpec); ok {
				for _, id := range vs.Names {
					names = append(names, id.Name)
				}
			}
		}
		return "var " + strings.Join(names, ", ")
	}
	return ""
}

// pkgCall reports whether call is pkg.F(…) for an F in funcs (through
// f's import of pkgPath), and returns funcs[F].
func (m *module) pkgCall(f *goFile, call *ast.CallExpr, pkgPath string, funcs map[string]string) (string, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok || f.imports[x.Name] != pkgPath {
		return "", false
	}
	v, ok := funcs[sel.Sel.Name]
	return v, ok
}

// eval folds a string expression into literal text and holes: string
// literals and constants (of this or another package of the module) are
// literal, + concatenates, fmt.Sprintf with a constant format leaves a
// hole per verb; anything else is a hole.
func (m *module) eval(f *goFile, e ast.Expr, depth int) []namePart {
	hole := []namePart{{hole: m.source(e)}}
	if depth > 20 {
		return hole
	}
	switch x := e.(type) {
	case *ast.BasicLit:
		if s, err := strconv.Unquote(x.Value); err == nil && x.Kind == token.STRING {
			return []namePart{{lit: s}}
		}
	case *ast.ParenExpr:
		return m.eval(f, x.X, depth+1)
	case *ast.BinaryExpr:
		if x.Op == token.ADD {
			return append(m.eval(f, x.X, depth+1), m.eval(f, x.Y, depth+1)...)
		}
	case *ast.Ident:
		if c, ok := f.pkg.consts[x.Name]; ok {
			return m.eval(c.file, c.value, depth+1)
		}
	case *ast.SelectorExpr:
		if c, ok := m.constOf(f, x); ok {
			return m.eval(c.file, c.value, depth+1)
		}
	case *ast.CallExpr:
		if _, ok := m.pkgCall(f, x, "fmt", map[string]string{"Sprintf": ""}); ok && len(x.Args) > 0 {
			if format, ok := literal(m.eval(f, x.Args[0], depth+1)); ok {
				return formatParts(format)
			}
		}
	}
	return hole
}

// constOf resolves pkg.Name to a constant of a module package.
func (m *module) constOf(f *goFile, sel *ast.SelectorExpr) (constDecl, bool) {
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return constDecl{}, false
	}
	p := m.pkgs[f.imports[x.Name]]
	if p == nil {
		return constDecl{}, false
	}
	c, ok := p.consts[sel.Sel.Name]
	return c, ok
}

// constString evaluates a constant expression to a string, if it is one.
func (m *module) constString(f *goFile, e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.Ident:
		if _, ok := f.pkg.consts[x.Name]; !ok {
			return "", false
		}
	case *ast.SelectorExpr:
		if _, ok := m.constOf(f, x); !ok {
			return "", false
		}
	}
	return literal(m.eval(f, e, 0))
}

func (m *module) source(e ast.Expr) string {
	start, end := m.fset.Position(e.Pos()), m.fset.Position(e.End())
	src, err := os.ReadFile(start.Filename)
	if err != nil || end.Offset > len(src) {
		return "?"
	}
	return string(src[start.Offset:end.Offset])
}

var fmtVerb = regexp.MustCompile(`^%[-+# 0]*[0-9]*(\.[0-9]+)?[a-zA-Z%]`)

// formatParts splits a fmt format into literal text and verbs.
func formatParts(format string) []namePart {
	var parts []namePart
	var lit strings.Builder
	for i := 0; i < len(format); {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			i++
			continue
		}
		v := fmtVerb.FindString(format[i:])
		if v == "" || v == "%%" {
			lit.WriteByte('%')
			i += max(len(v), 1)
			continue
		}
		if lit.Len() > 0 {
			parts = append(parts, namePart{lit: lit.String()})
			lit.Reset()
		}
		parts = append(parts, namePart{verb: v})
		i += len(v)
	}
	if lit.Len() > 0 {
		parts = append(parts, namePart{lit: lit.String()})
	}
	return parts
}

// verbPattern is the regular expression of what an integer verb prints;
// other verbs are not understood.
func verbPattern(v string) (string, bool) {
	m := regexp.MustCompile(`^%(0?)([0-9]*)d$`).FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	if m[1] == "0" && m[2] != "" {
		return `[0-9]{` + m[2] + `,}`, true
	}
	return `-?[0-9]+`, true
}

// A suffixSource lists the values a run-time suffix of a metric name can
// take, read from the code that decides them.
type suffixSource struct {
	// what the suffix is and where it comes from, for the README.
	about  string
	values func(m *module, def metricDef) ([]string, error)
}

// suffixSources understands the names the jobs build at run time, keyed
// by the literal prefix before the run-time part. A new dynamic name in
// the jobs makes TestEveryEmittedMetricIsUnderstood fail until it is
// added here.
var suffixSources = map[string]suffixSource{
	// decode.go: beam.NewCounter(Namespace, CounterReasonPrefix+dl.Reason),
	// where dl = schemas.NewDeadLetter(rec, …, err) and err comes from
	// schemas.ParseEvent.
	"dead_letter_": {
		about:  "reason: a reason code schemas.ParseEvent or schemas.NewDeadLetter can give",
		values: reasonCodes,
	},
	// bqsink: beam.NewCounter(metricsNamespace, "rows_written_"+f.Table),
	// f.Table being a table the jobs hand to the sinks.
	"rows_written_": {
		about:  "table: a schemas.Table* table the job packages name",
		values: tablesOfJobs,
	},
	// streamjob/late.go: "late_events_"+fn.Aggregation and the like, with
	// fn.Aggregation the aggregation argument of onTimeEnough.
	"late_events_":             aggregations,
	"too_late_":                aggregations,
	"recovered_floor_skipped_": aggregations,
	"window_closing_":          aggregations,
}

var aggregations = suffixSource{
	about:  "aggregation: an aggregation argument of streamjob's onTimeEnough",
	values: argumentsOf("onTimeEnough", "aggregation"),
}

// reasonCodes returns the Reason* constants that schemas.ParseEvent,
// schemas.NewDeadLetter and the functions of package schemas they call
// refer to.
func reasonCodes(m *module, _ metricDef) ([]string, error) {
	p := m.pkgs[m.path+"/schemas"]
	if p == nil {
		return nil, errors.New("package schemas is not part of the jobs")
	}
	var codes []string
	for _, id := range p.reachableIdents("ParseEvent", "NewDeadLetter") {
		c, ok := p.consts[id]
		if !strings.HasPrefix(id, "Reason") || !ok {
			continue
		}
		if v, ok := m.constString(c.file, c.value); ok {
			codes = append(codes, v)
		}
	}
	if len(codes) == 0 {
		return nil, errors.New("no Reason* constant reachable from schemas.ParseEvent or schemas.NewDeadLetter")
	}
	slices.Sort(codes)
	return slices.Compact(codes), nil
}

// reachableIdents returns the identifiers used in the named functions of
// p and in the functions and methods of p they call, transitively.
func (p *goPackage) reachableIdents(roots ...string) []string {
	seen := map[string]bool{}
	idents := map[string]bool{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		d := p.funcs[name]
		if d == nil || seen[name] || d.Body == nil {
			continue
		}
		seen[name] = true
		ast.Inspect(d.Body, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				idents[x.Name] = true
				if p.funcs[x.Name] != nil {
					queue = append(queue, x.Name)
				}
			case *ast.SelectorExpr:
				for key := range p.funcs {
					if strings.HasSuffix(key, "."+x.Sel.Name) {
						queue = append(queue, key)
					}
				}
			}
			return true
		})
	}
	out := make([]string, 0, len(idents))
	for id := range idents {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// tablesOfJobs returns the schemas.Table* constants the job packages
// (under pipelines/batch and pipelines/streaming) refer to: the tables
// they hand to the BigQuery sinks.
func tablesOfJobs(m *module, _ metricDef) ([]string, error) {
	set := map[string]bool{}
	for _, f := range m.files() {
		if !slices.ContainsFunc(jobCommands, func(c string) bool { return strings.HasPrefix(f.name, c+"/") }) {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || !strings.HasPrefix(sel.Sel.Name, "Table") || f.imports[identName(sel.X)] != m.path+"/schemas" {
				return true
			}
			if v, ok := m.constString(f, sel); ok {
				set[v] = true
			}
			return true
		})
	}
	if len(set) == 0 {
		return nil, errors.New("the job packages name no schemas.Table* constant")
	}
	return sortedKeys(set), nil
}

// argumentsOf returns a source of the constant string arguments passed
// for parameter param of function fn, in the package of the metric.
func argumentsOf(fn, param string) func(*module, metricDef) ([]string, error) {
	return func(m *module, def metricDef) ([]string, error) {
		p := def.file.pkg
		d := p.funcs[fn]
		if d == nil {
			return nil, fmt.Errorf("no function %s in %s", fn, p.path)
		}
		index, i := -1, 0
		for _, field := range d.Type.Params.List {
			for _, name := range field.Names {
				if name.Name == param {
					index = i
				}
				i++
			}
		}
		if index < 0 {
			return nil, fmt.Errorf("%s has no parameter %s", fn, param)
		}
		set := map[string]bool{}
		for _, f := range p.files {
			var err error
			ast.Inspect(f.ast, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || identName(call.Fun) != fn || index >= len(call.Args) {
					return true
				}
				v, ok := literal(m.eval(f, call.Args[index], 0))
				if !ok {
					err = fmt.Errorf("%s: %s is called with %s = %s, not a constant", f.name, fn, param, m.source(call.Args[index]))
				}
				set[v] = true
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		if len(set) == 0 {
			return nil, fmt.Errorf("%s is never called in %s", fn, p.path)
		}
		return sortedKeys(set), nil
	}
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// emitted is what the jobs emit: their metrics, understood, and the
// messages of their slog calls.
type emitted struct {
	defs     []emittedMetric
	messages map[string]bool
	problems []string // metrics the scan does not understand
}

// emittedMetric is a metric definition with the regular expression of
// every name it can take.
type emittedMetric struct {
	metricDef
	namespace string
	match     *regexp.Regexp
	domains   []string // for each run-time part: what it is and its values
}

// scanEmitted loads the jobs under root and understands their metrics.
func scanEmitted(root string) (*emitted, error) {
	m, err := loadJobs(root)
	if err != nil {
		return nil, err
	}
	e := &emitted{messages: m.slogMessages()}
	for _, def := range m.metricDefs() {
		em := emittedMetric{metricDef: def}
		at := fmt.Sprintf("%s (%s): %s", def.file.name, def.where, pattern(def.name))
		ns, ok := literal(def.namespace)
		if !ok {
			e.problems = append(e.problems, at+": the namespace is not a constant")
			continue
		}
		em.namespace = ns
		var re strings.Builder
		var prefix strings.Builder
		understood := true
		for _, part := range def.name {
			switch {
			case part.verb != "":
				vp, ok := verbPattern(part.verb)
				if !ok {
					e.problems = append(e.problems, fmt.Sprintf("%s: the verb %s is not understood", at, part.verb))
					understood = false
				}
				re.WriteString(vp)
				em.domains = append(em.domains, fmt.Sprintf("%s: %s", part.verb, vp))
			case part.hole != "":
				src, ok := suffixSources[prefix.String()]
				if !ok {
					e.problems = append(e.problems, fmt.Sprintf("%s: no suffixSources entry for the prefix %q", at, prefix.String()))
					understood = false
					continue
				}
				values, err := src.values(m, def)
				if err != nil {
					e.problems = append(e.problems, fmt.Sprintf("%s: %v", at, err))
					understood = false
					continue
				}
				quoted := make([]string, len(values))
				for i, v := range values {
					quoted[i] = regexp.QuoteMeta(v)
				}
				re.WriteString("(?:" + strings.Join(quoted, "|") + ")")
				em.domains = append(em.domains, fmt.Sprintf("%s ∈ {%s}", src.about, strings.Join(values, ", ")))
			default:
				re.WriteString(regexp.QuoteMeta(part.lit))
			}
			prefix.WriteString(part.lit)
		}
		if understood {
			em.match = regexp.MustCompile("^" + re.String() + "$")
		}
		e.defs = append(e.defs, em)
	}
	return e, nil
}

// counter returns the definitions of the Railyard counter name, or why
// there is none.
func (e *emitted) counter(name string) ([]emittedMetric, error) {
	var found, other []emittedMetric
	for _, d := range e.defs {
		if d.match == nil || d.namespace != namespace || !d.match.MatchString(name) {
			continue
		}
		if d.kind == "counter" {
			found = append(found, d)
		} else {
			other = append(other, d)
		}
	}
	switch {
	case len(found) > 0:
		return found, nil
	case len(other) > 0:
		return nil, fmt.Errorf("metric_name %q is a Beam %s (%s), not a counter: only counters are exported as job/user_counter", name, other[0].kind, other[0].file.name)
	}
	return nil, fmt.Errorf("metric_name %q is not a counter the jobs emit (no beam.NewCounter(%q, …) in code pipelines/batch or pipelines/streaming run)", name, namespace)
}

var slogFuncs = map[string]string{
	"Debug": "0", "Info": "0", "Warn": "0", "Error": "0",
	"DebugContext": "1", "InfoContext": "1", "WarnContext": "1", "ErrorContext": "1",
	"Log": "2",
}

// slogMessages returns the constant messages of the slog calls in the
// jobs' code.
func (m *module) slogMessages() map[string]bool {
	msgs := map[string]bool{}
	for _, f := range m.files() {
		ast.Inspect(f.ast, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			pos, ok := m.pkgCall(f, call, "log/slog", slogFuncs)
			if !ok {
				return true
			}
			i, _ := strconv.Atoi(pos)
			if i < len(call.Args) {
				if msg, ok := literal(m.eval(f, call.Args[i], 0)); ok {
					msgs[msg] = true
				}
			}
			return true
		})
	}
	return msgs
}
