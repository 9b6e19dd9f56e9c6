package metricnames

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/railyard/railyard/schemas"
)

// stringConsts returns the untyped string constants declared in the
// non-test Go files of dir, by name.
func stringConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if d, ok := decl.(*ast.GenDecl); ok && d.Tok == token.CONST {
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					if vs.Type != nil {
						continue
					}
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								out[name.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	return out
}

func TestEveryNameIsInTheList(t *testing.T) {
	for name, value := range stringConsts(t, ".") {
		switch {
		case name == "Namespace" || strings.HasPrefix(name, "Aggregation") || strings.HasSuffix(name, "Pkg"):
		case strings.HasSuffix(name, "Prefix"):
			if !slices.ContainsFunc(all, func(m Metric) bool { return m.Family() && strings.HasPrefix(m.Name, value+"<") }) {
				t.Errorf("%s = %q is the prefix of no family in the list", name, value)
			}
		default:
			if m, ok := Lookup(value); !ok || m.Name != value {
				t.Errorf("%s = %q is not in the list", name, value)
			}
		}
	}
}

func TestTheListIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range all {
		if seen[m.Name] {
			t.Errorf("%s is listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Kind != Counter && m.Kind != Distribution {
			t.Errorf("%s: kind %q", m.Name, m.Kind)
		}
		if m.Meaning == "" || m.Package == "" {
			t.Errorf("%s: no meaning or package", m.Name)
		}
		if m.Family() != (len(m.Values) > 0 || m.Digits > 0) {
			t.Errorf("%s: a family, and only a family, has values or digits", m.Name)
		}
	}
}

// TestDecodeReasonsAreTheContractReasons fails on a new reason code of
// package schemas until it is listed in DecodeReasons or notFromDecode.
func TestDecodeReasonsAreTheContractReasons(t *testing.T) {
	// Reasons of the read stage and of the sinks, not of decode.
	notFromDecode := []string{schemas.ReasonBadEnvelope, schemas.ReasonWriteFailed, schemas.ReasonEmptyFile, schemas.ReasonNotGzip, schemas.ReasonCorruptGzip}
	for name, value := range stringConsts(t, "..") {
		if strings.HasPrefix(name, "Reason") && !slices.Contains(DecodeReasons, value) && !slices.Contains(notFromDecode, value) {
			t.Errorf("schemas.%s = %q: add it to DecodeReasons if decode can give it", name, value)
		}
	}
	if len(DecodeReasons) != 21 {
		t.Errorf("%d decode reasons, want 21", len(DecodeReasons))
	}
}

func TestWrittenTablesAreTables(t *testing.T) {
	for _, name := range WrittenTables {
		if _, err := schemas.LookupTable(name); err != nil {
			t.Error(err)
		}
	}
	for _, table := range schemas.Tables {
		// The serving package records batch_watermark and batch_coverage,
		// the replay job dead_letter_replays.
		notBySinks := table.Name == schemas.TableBatchWatermark || table.Name == schemas.TableBatchCoverage || table.Name == schemas.TableDeadLetterReplays
		if !slices.Contains(WrittenTables, table.Name) && !notBySinks {
			t.Errorf("table %s: add it to WrittenTables if a sink writes it", table.Name)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // the metric's name, "" for none
	}{
		{"records_in", RecordsIn},
		{DeadLetter(schemas.ReasonInvalidJSON), "dead_letter_<reason>"},
		{RowsWritten(schemas.TableEventsSpeed), "rows_written_<table>"},
		{TooLate(AggregationSessions), "too_late_<aggregation>"},
		{PubsubShardRead(7), "pubsub_messages_read_shard_<shard>"},
		{PubsubShardRead(123), "pubsub_messages_read_shard_<shard>"},
		{Bench("unique"), "bench_<count>"},
		{"dead_leters", ""},
		{"dead_letter_bad_mood", ""},
		{"rows_written_batch_watermark", ""},
		{"too_late_", ""},
		{"pubsub_messages_read_shard_7", ""},
		{"pubsub_messages_read_shard_0x", ""},
	} {
		m, ok := Lookup(tc.name)
		if ok != (tc.want != "") || m.Name != tc.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.name, m.Name, ok, tc.want)
		}
	}
}
