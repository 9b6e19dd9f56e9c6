package batchjob

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/config"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// env is one test's emulators and clients.
type env struct {
	dest   config.Destination
	db     testenv.Dataset
	lake   string
	sample *sample.Sample
}

// startEnv starts Cloud Storage and BigQuery emulators, points the
// process at them, and loads the committed sample lake into a bucket.
func startEnv(t *testing.T, dataset string) *env {
	t.Helper()
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	smp, err := sample.Generate(sample.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		dest:   config.Destination{Project: testenv.Project, Dataset: dataset},
		db:     te.Dataset(dataset),
		lake:   te.SampleLake(t, "lake"),
		sample: smp,
	}
}

func (e *env) run(t *testing.T, runID, from, to string) map[string]int64 {
	t.Helper()
	res, err := Run(context.Background(), Config{Destination: e.dest, Lake: e.lake, From: from, To: to, SessionGap: DefaultSessionGap, RunID: runID})
	if err != nil {
		t.Fatalf("run %s: %v", runID, err)
	}
	return testenv.Counters(res)
}

func str(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}

func micros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

func TestBatchJobOnTheSampleLake(t *testing.T) {
	e := startEnv(t, "batch_e2e")
	m := e.sample.Manifest()
	days := m.Days
	got := e.run(t, "run-1", days[0], days[len(days)-1])

	t.Run("reconciles: records in = valid unique + duplicates + dead letters", func(t *testing.T) {
		events := e.db.Query(t, "SELECT COUNT(*) FROM {ds}.events_batch")
		dead := e.db.Query(t, "SELECT COUNT(*) FROM {ds}.dead_letter WHERE layer = 'batch'")
		want := m.Lake
		if got["lake_lines_read"] != int64(want.RecordsIn) {
			t.Errorf("lines read = %d, want %d", got["lake_lines_read"], want.RecordsIn)
		}
		if events[0] != fmt.Sprint(want.ValidUnique) || dead[0] != fmt.Sprint(want.DeadLetters) || got["duplicates"] != int64(want.Duplicates) {
			t.Errorf("events_batch rows %s, dead letters %s, duplicates %d; want %d, %d, %d",
				events[0], dead[0], got["duplicates"], want.ValidUnique, want.DeadLetters, want.Duplicates)
		}
		if sum := int64(want.ValidUnique) + got["duplicates"] + int64(want.DeadLetters); sum != got["lake_lines_read"] {
			t.Errorf("valid unique + duplicates + dead letters = %d, records in = %d", sum, got["lake_lines_read"])
		}
	})

	t.Run("keeps every bad record's raw bytes in dead_letter with its reason", func(t *testing.T) {
		var want []string
		add := func(msg sample.Message) {
			if msg.Kind == sample.KindBad {
				want = append(want, msg.Reason+"|"+base64.StdEncoding.EncodeToString(msg.Data))
			}
		}
		for _, msg := range e.sample.Messages {
			add(msg)
		}
		for _, f := range e.sample.Imports {
			for _, line := range f.Lines {
				add(line)
			}
		}
		slices.Sort(want)
		got := e.db.Query(t, "SELECT reason, payload FROM {ds}.dead_letter WHERE layer = 'batch'")
		if !slices.Equal(got, want) {
			t.Errorf("dead letters differ from the sample's bad records: got %d, want %d\n%s", len(got), len(want), firstDiff(got, want))
		}
		missing := e.db.Query(t, "SELECT COUNT(*) FROM {ds}.dead_letter WHERE layer = 'batch' AND (source_uri IS NULL OR error = '' OR stage = '')")
		if missing[0] != "0" {
			t.Errorf("%s dead letters lack source_uri, error or stage", missing[0])
		}
	})

	t.Run("writes the winning record of every event", func(t *testing.T) {
		var want []string
		for _, w := range m.Events {
			want = append(want, strings.Join([]string{w.EventID, w.EventType, micros(w.EventTime), w.Source, str(w.Platform), str(w.Country), str(w.UserID), valueOf(w.Value), orNull(w.MessageID)}, "|"))
		}
		slices.Sort(want)
		got := e.db.Query(t, "SELECT event_id, event_type, event_time, source, platform, country, user_id, value, message_id FROM {ds}.events_batch")
		if !slices.Equal(got, want) {
			t.Errorf("events_batch differs from the manifest's winners (%d rows, want %d)\n%s", len(got), len(want), firstDiff(got, want))
		}
	})

	t.Run("computes the metrics the manifest implies", func(t *testing.T) {
		var want []string
		for _, r := range sample.MetricsMinute(m.Events) {
			want = append(want, strings.Join([]string{micros(r.WindowStart), micros(r.WindowEnd), r.EventType, r.Source, str(r.Platform), str(r.Country), fmt.Sprint(r.Events), fmt.Sprint(r.Users), fmt.Sprintf("%.6f", r.ValueSum)}, "|"))
		}
		slices.Sort(want)
		got := e.db.Query(t, "SELECT window_start, window_end, event_type, source, platform, country, events, users, value_sum FROM {ds}.metrics_minute_batch")
		if !slices.Equal(got, want) {
			t.Errorf("metrics_minute_batch differs (%d rows, want %d)\n%s", len(got), len(want), firstDiff(got, want))
		}
	})

	t.Run("computes the sessions the manifest implies", func(t *testing.T) {
		var want []string
		for _, r := range sample.Sessions(m.Events, DefaultSessionGap) {
			want = append(want, strings.Join([]string{r.UserID, micros(r.SessionStart), micros(r.SessionEnd), fmt.Sprint(r.Events), strings.Join(r.Sources, ",")}, "|"))
		}
		slices.Sort(want)
		got := e.db.Query(t, "SELECT user_id, session_start, session_end, events, sources FROM {ds}.sessions_batch")
		if !slices.Equal(got, want) {
			t.Errorf("sessions_batch differs (%d rows, want %d)\n%s", len(got), len(want), firstDiff(got, want))
		}
	})

	t.Run("a second run over the same input leaves the same rows", func(t *testing.T) {
		before := snapshot(t, e)
		e.run(t, "run-2", days[0], days[len(days)-1])
		if after := snapshot(t, e); !slices.Equal(before, after) {
			t.Errorf("rows changed after a rerun:\n%s", firstDiff(after, before))
		}
	})

	t.Run("a rerun of one day leaves the other day and the totals alone", func(t *testing.T) {
		before := snapshot(t, e)
		e.run(t, "run-3", days[1], days[1])
		if after := snapshot(t, e); !slices.Equal(before, after) {
			t.Errorf("rows changed after rerunning %s:\n%s", days[1], firstDiff(after, before))
		}
	})
}

// snapshot is every batch table's content that a rerun must not change.
func snapshot(t *testing.T, e *env) []string {
	var rows []string
	for _, q := range []string{
		"SELECT 'e', event_id, event_time, message_id FROM {ds}.events_batch",
		"SELECT 'm', window_start, event_type, source, platform, country, events, users, value_sum FROM {ds}.metrics_minute_batch",
		"SELECT 's', user_id, session_start, events FROM {ds}.sessions_batch",
		"SELECT 'd', source_uri, reason, payload FROM {ds}.dead_letter WHERE layer = 'batch'",
	} {
		rows = append(rows, e.db.Query(t, q)...)
	}
	return rows
}

func valueOf(v *float64) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.6f", *v)
}

func orNull(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// firstDiff describes the first few rows in one list and not the other.
func firstDiff(got, want []string) string {
	var b strings.Builder
	extra, missing := difference(got, want), difference(want, got)
	for i, r := range extra {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "  unexpected: %.300s\n", r)
	}
	for i, r := range missing {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "  missing:    %.300s\n", r)
	}
	fmt.Fprintf(&b, "  (%d unexpected, %d missing)", len(extra), len(missing))
	return b.String()
}

// difference returns the rows of a not matched one-for-one in b.
func difference(a, b []string) []string {
	left := map[string]int{}
	for _, r := range b {
		left[r]++
	}
	var out []string
	for _, r := range a {
		if left[r] > 0 {
			left[r]--
			continue
		}
		out = append(out, r)
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Destination: config.Destination{Project: "my-project", Dataset: "railyard"}, Inputs: []string{"gs://b/x/*"}, SessionGap: time.Minute, RunID: "r"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"accepts globs", func(*Config) {}, ""},
		{"accepts a lake day range", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "gs://lake", "2026-11-01", "2026-11-02" }, ""},
		{"rejects a missing project", func(c *Config) { c.Project = "" }, "--project is required"},
		{"rejects a bad dataset", func(c *Config) { c.Dataset = "rail-yard" }, "--dataset"},
		{"rejects both input and days", func(c *Config) { c.Lake, c.From, c.To = "gs://lake", "2026-11-01", "2026-11-02" }, "not both"},
		{"rejects nothing to read", func(c *Config) { c.Inputs = nil }, "nothing to read"},
		{"rejects --from without --to", func(c *Config) { c.Inputs = nil; c.Lake, c.From = "gs://lake", "2026-11-01" }, "go together"},
		{"rejects a reversed range", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "gs://lake", "2026-11-02", "2026-11-01" }, "before --from"},
		{"rejects a bad date", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "gs://lake", "2026-13-01", "2026-11-01" }, "not a date"},
		{"rejects an s3 lake", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "s3://lake", "2026-11-01", "2026-11-01" }, "only gs://"},
		{"rejects a missing lake", func(c *Config) { c.Inputs = nil; c.From, c.To = "2026-11-01", "2026-11-01" }, "--lake is required"},
		{"rejects a zero session gap", func(c *Config) { c.SessionGap = 0 }, "--session_gap"},
		{"rejects a lake root with a star", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "gs://lake/x*", "2026-11-01", "2026-11-01" }, `--lake="gs://lake/x*" holds a glob character`},
		{"rejects a lake root with a question mark", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "gs://lake/x?", "2026-11-01", "2026-11-01" }, "holds a glob character"},
		{"rejects a local lake root with a bracket", func(c *Config) { c.Inputs = nil; c.Lake, c.From, c.To = "/data/lake[12]", "2026-11-01", "2026-11-01" }, "holds a glob character"},
		{"rejects a run id with dots", func(c *Config) { c.RunID = "2026.11.01" }, `--run_id="2026.11.01" is not a run name: 1-64 letters, digits, _ or -`},
		{"rejects a run id too long", func(c *Config) { c.RunID = strings.Repeat("r", 65) }, "is not a run name"},
		{"accepts a run id of dashes and underscores", func(c *Config) { c.RunID = "2026-11-01_rerun" }, ""},
		{"rejects a negative max future", func(c *Config) { c.MaxFuture = -time.Minute }, "--max_future=-1m0s must be positive"},
		{"rejects a max future of days", func(c *Config) { c.MaxFuture = 48 * time.Hour }, "--max_future=48h0m0s must be positive and at most 24h0m0s"},
		{"names every bad flag at once", func(c *Config) { c.Project, c.SessionGap, c.RunID = "", 0, "a.b" }, "--project is required: the Google Cloud project that holds the BigQuery dataset\n--session_gap=0s must be positive\n--run_id=\"a.b\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
