// Package testenv is what Railyard's tests share: the emulators started
// for one test with the process pointed at them, the committed sample lake
// in an emulated bucket, BigQuery queries read back as sorted strings or
// rows, and a job's counters.
//
// It sits at the bottom of the module with the emulators and the sample,
// so tests of every package (schemas, transforms, pipelines, runners) use
// it without importing the layers above their own.
package testenv

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/schemas/metricnames"
)

// Project is the project every test gives the emulators.
const Project = "railyard-test"

// Emulators selects what Start starts.
type Emulators struct {
	Storage, PubSub, BigQuery bool
}

// Env is one test's emulators; a field is nil when Start was not asked
// for it. Everything stops when the test ends.
type Env struct {
	Storage  *emulators.Storage
	PubSub   *emulators.PubSub
	BigQuery *emulators.BigQuery
	// BQ is a BigQuery client of the emulator, for Project.
	BQ *bigquery.Client
}

// Start starts the emulators which asks for and points the process at
// them the standard way (STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
// BIGQUERY_EMULATOR_HOST, BIGQUERY_STORAGE_EMULATOR_HOST), for the test's
// duration. Tests that call it cannot run in parallel (t.Setenv).
func Start(t *testing.T, which Emulators) *Env {
	t.Helper()
	e := &Env{}
	var envs []map[string]string
	if which.Storage {
		gcs, err := emulators.StartStorage()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { gcs.Close() })
		e.Storage = gcs
		envs = append(envs, gcs.Env())
	}
	if which.PubSub {
		ps := emulators.StartPubSub()
		t.Cleanup(func() { ps.Close() })
		e.PubSub = ps
		envs = append(envs, ps.Env())
	}
	if which.BigQuery {
		e.BigQuery = emulators.StartBigQueryForTest(t, Project)
		envs = append(envs, e.BigQuery.Env())
		client, err := bigquery.NewClient(t.Context(), Project,
			option.WithEndpoint("http://"+e.BigQuery.Host+"/"), option.WithoutAuthentication())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		e.BQ = client
	}
	for _, env := range envs {
		for k, v := range env {
			t.Setenv(k, v)
		}
	}
	return e
}

// SampleLake creates bucket in the Cloud Storage emulator, copies the
// committed sample lake (testdata/sample/lake) into it and returns the
// lake's root, gs://<bucket>.
func (e *Env) SampleLake(t *testing.T, bucket string) string {
	t.Helper()
	if e.Storage == nil {
		t.Fatal("testenv: SampleLake needs the Cloud Storage emulator")
	}
	e.Storage.CreateBucket(bucket)
	if _, err := e.Storage.UploadDir(t.Context(), Path(t, "testdata", "sample", "lake"), bucket); err != nil {
		t.Fatal(err)
	}
	return "gs://" + bucket
}

// Path is a path inside the module: Path(t, "testdata", "sample") from the
// test of any package. It finds the module root from the working
// directory, which go test sets to the package's folder.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir}, elem...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Dataset is one BigQuery dataset of the emulator, as tests query it.
type Dataset struct {
	Client  *bigquery.Client
	Project string
	Name    string
}

// Dataset returns the dataset name of the emulator's project.
func (e *Env) Dataset(name string) Dataset {
	return Dataset{Client: e.BQ, Project: Project, Name: name}
}

// tableRef is how test queries name a table of the dataset:
// {ds}.events_batch. The emulator needs names quoted whole.
var tableRef = regexp.MustCompile(`\{ds\}\.(\w+)`)

// SQL returns sql with every {ds}.<table> replaced by the table's full,
// quoted name.
func (d Dataset) SQL(sql string) string {
	return tableRef.ReplaceAllString(sql, fmt.Sprintf("`%s.%s.$1`", d.Project, d.Name))
}

// Query runs sql and returns each row as one string of its columns joined
// by "|" (see FormatValue), sorted.
func (d Dataset) Query(t testing.TB, sql string) []string {
	t.Helper()
	sql = d.SQL(sql)
	it, err := d.Client.Query(sql).Read(context.Background())
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	var rows []string
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("query %s: %v", sql, err)
		}
		cols := make([]string, len(row))
		for i, v := range row {
			cols[i] = FormatValue(v)
		}
		rows = append(rows, strings.Join(cols, "|"))
	}
	slices.Sort(rows)
	return rows
}

// One returns the single row of a query that must return one row.
func (d Dataset) One(t testing.TB, sql string) string {
	t.Helper()
	rows := d.Query(t, sql)
	if len(rows) != 1 {
		t.Fatalf("query %s: %d rows, want 1", d.SQL(sql), len(rows))
	}
	return rows[0]
}

// Rows runs sql and returns its rows as maps from column to value, in the
// order the query gives them.
func (d Dataset) Rows(t testing.TB, sql string) []map[string]bigquery.Value {
	t.Helper()
	return Rows(t, d.Client, d.SQL(sql))
}

// Rows runs sql on client and returns its rows as maps from column to
// value, in the order the query gives them.
func Rows(t testing.TB, client *bigquery.Client, sql string) []map[string]bigquery.Value {
	t.Helper()
	it, err := client.Query(sql).Read(context.Background())
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	var rows []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return rows
		}
		if err != nil {
			t.Fatalf("query %s: %v", sql, err)
		}
		rows = append(rows, row)
	}
}

// FormatValue writes a value read from BigQuery the way test expectations
// spell it: NULL, RFC 3339 UTC timestamps, base64 bytes, floats with six
// decimals, repeated values joined by ",".
func FormatValue(v bigquery.Value) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case float64:
		return fmt.Sprintf("%.6f", x)
	case []bigquery.Value:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = FormatValue(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// Counters returns a finished job's Railyard counters by name (summed over
// steps); none for a nil result.
func Counters(res beam.PipelineResult) map[string]int64 {
	out := map[string]int64{}
	if res == nil {
		return out
	}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == metricnames.Namespace {
			out[c.Key.Name] += c.Result()
		}
	}
	return out
}

// CheckReadmeFlags keeps a flags table of the README true to a command:
// the rows of section ("## <section>" up to the next "## ") whose first
// cell lists flags (| `--a`, `--b` | meaning |) must name exactly the
// flags defined on fs, with extra (flags the command gets elsewhere, such
// as Beam's --runner).
func CheckReadmeFlags(t testing.TB, section string, fs *flag.FlagSet, extra ...string) {
	t.Helper()
	b, err := os.ReadFile(Path(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), "## "+section+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", "## "+section)
	}
	text, _, _ = strings.Cut(text, "\n## ")
	listed := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, f := range strings.Split(cell, ",") {
			listed[strings.Trim(strings.TrimSpace(f), "`-")] = true
		}
	}
	want := map[string]bool{}
	for _, name := range extra {
		want[name] = true
	}
	fs.VisitAll(func(f *flag.Flag) { want[f.Name] = true })
	for name := range want {
		if !listed[name] {
			t.Errorf("README.md's %q flags table lacks --%s", section, name)
		}
	}
	for name := range listed {
		if !want[name] {
			t.Errorf("README.md's %q flags table lists --%s, which the command does not have", section, name)
		}
	}
}
