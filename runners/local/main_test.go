package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// These tests cover what can be checked without emulators or a job: the
// flags, the grouping of the lake's days into batch runs, the
// reconciliation and the side-by-side table. The whole command is run by
// hand (go run ./runners/local); the jobs have their own end-to-end tests.

func defaults() options {
	return options{project: "railyard-local", dataset: "railyard", bucket: "railyard-lake",
		streamMessages: 3000, streamRate: 200, stopAfterIdle: 10 * time.Second}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*options)
		wantErr []string // substrings; none for a valid configuration
	}{
		{"accepts the defaults", func(*options) {}, nil},
		{"accepts a batch-only run without an idle stop", func(o *options) { o.streamMessages, o.stopAfterIdle = 0, 0 }, nil},
		{"refuses a negative stream", func(o *options) { o.streamMessages = -1 }, []string{"--stream_messages=-1"}},
		{"refuses a zero rate", func(o *options) { o.streamRate = 0 }, []string{"--stream_rate=0 must be between 1"}},
		{"refuses a stream that never stops", func(o *options) { o.stopAfterIdle = 0 }, []string{"--stop_after_idle=0s must be positive"}},
		{"passes on the streaming job's own rule", func(o *options) { o.stopAfterIdle = 3 * time.Second }, []string{"--stop_after_idle=3s must be at least"}},
		{"names this command's project flag, once", func(o *options) { o.project = "X" }, []string{`--emulator_project="X"`}},
		{"names this command's bucket flag", func(o *options) { o.bucket = "A" }, []string{`--bucket="gs://A"`}},
		{"reports every problem", func(o *options) { o.streamRate, o.dataset = -5, "no-dashes" },
			[]string{"--stream_rate=-5", `--dataset="no-dashes"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaults()
			tt.change(&o)
			err := o.validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate accepted %+v, want an error with %q", o, tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if n := strings.Count(err.Error(), want); n != 1 {
					t.Errorf("error %q holds %q %d times, want once", err, want, n)
				}
			}
			if strings.Contains(err.Error(), "--project=") || strings.Contains(err.Error(), "--lake=") {
				t.Errorf("error %q names a flag of the jobs, not of this command", err)
			}
		})
	}
}

func TestDayRanges(t *testing.T) {
	tests := []struct {
		name    string
		days    []string
		want    string
		wantErr string
	}{
		{"no days, no run", nil, "", ""},
		{"one day", []string{"2026-11-25"}, "2026-11-25", ""},
		{"history and today are two runs", []string{"2026-11-01", "2026-11-02", "2026-11-25", "2026-11-26"},
			"2026-11-01..2026-11-02 and 2026-11-25..2026-11-26", ""},
		{"consecutive across a month", []string{"2026-10-31", "2026-11-01"}, "2026-10-31..2026-11-01", ""},
		{"a one-day hole splits", []string{"2026-11-01", "2026-11-03"}, "2026-11-01 and 2026-11-03", ""},
		{"unsorted", []string{"2026-11-02", "2026-11-01"}, "", "not sorted"},
		{"repeated", []string{"2026-11-02", "2026-11-02"}, "", "not sorted"},
		{"not a day", []string{"2026-13-01"}, "", `"2026-13-01" is not YYYY-MM-DD`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dayRanges(tt.days)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dayRanges(%v) error = %v, want %q", tt.days, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := joinRanges(got); s != tt.want {
				t.Errorf("dayRanges(%v) = %s, want %s", tt.days, s, tt.want)
			}
		})
	}
}

func TestDayOfPrefix(t *testing.T) {
	for prefix, want := range map[string]string{
		"raw/dt=2026-11-25/":  "2026-11-25",
		"raw/dt=2026-11-5/":   "",
		"raw/dt=junk/":        "",
		"other/dt=2026-11-25": "",
	} {
		if got, _ := dayOfPrefix(prefix); got != want {
			t.Errorf("dayOfPrefix(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name     string
		layer    string
		counters map[string]int64
		want     string
	}{
		{"the stream counts records_in", speedLayer, map[string]int64{
			"records_in": 3000, "rows_written_events_speed": 2880, "duplicates": 90, "rows_written_dead_letter": 30,
			"rows_written_events_batch": 99, // another layer's: ignored
		}, "Streaming job: records_in 3,000 = events written 2,880 + duplicates 90 + dead letters 30: reconciles."},
		{"the batch job counts lake lines, broken envelopes included", batchLayer, map[string]int64{
			"lake_lines_read": 3377, "records_in": 3368, "rows_written_events_batch": 3079, "duplicates": 150, "rows_written_dead_letter": 148,
		}, "Batch job: lake_lines_read 3,377 = events written 3,079 + duplicates 150 + dead letters 148: reconciles."},
		{"says how many records are unaccounted for", batchLayer, map[string]int64{
			"lake_lines_read": 100, "rows_written_events_batch": 90, "duplicates": 3, "rows_written_dead_letter": 2,
		}, "Batch job: lake_lines_read 100 = events written 90 + duplicates 3 + dead letters 2: DOES NOT reconcile (5 unaccounted for)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reconcile(tt.layer, tt.counters).String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLandedCheck(t *testing.T) {
	// The counters of a run where Prism reported the streaming job's
	// metrics without its last bundles: 5 rows written, not counted.
	short := reconcile(speedLayer, map[string]int64{
		"records_in": 3000, "rows_written_events_speed": 2875, "duplicates": 90, "rows_written_dead_letter": 30,
	})
	full := reconcile(speedLayer, map[string]int64{
		"records_in": 3000, "rows_written_events_speed": 2880, "duplicates": 90, "rows_written_dead_letter": 30,
	})
	tests := []struct {
		name   string
		r      reconciliation
		landed landed
		want   string
	}{
		{"agrees with counters that reconcile", full, landed{2880, 2880, 30}, ": reconciles."},
		{"counts distinct events, not the rows a retry doubled", full, landed{2880, 2883, 30}, "2,880 (2,883 rows) + duplicates 90 + speed dead_letter rows 30: reconciles."},
		{"tells counters that missed rows from rows that are missing", short, landed{2880, 2880, 30}, "reconciles: the rows are all there, the job's counters missed some it wrote."},
		{"says what is missing from the tables", full, landed{2870, 2870, 30}, "DOES NOT reconcile (10 unaccounted for)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := landedCheck(tt.r, tt.landed); !strings.HasSuffix(got, tt.want) {
				t.Errorf("got  %s\nwant it to end with %s", got, tt.want)
			}
		})
	}
}

func TestStreamedMinutes(t *testing.T) {
	m := func(hhmm string) time.Time {
		ts, err := time.Parse("2006-01-02 15:04", "2026-11-25 "+hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	speed := map[time.Time]int64{m("23:32"): 56, m("23:33"): 1130, m("23:34"): 1600}
	batch := map[time.Time]int64{m("23:32"): 56, m("23:33"): 1130, m("23:34"): 1661, m("23:35"): 4}
	view := map[time.Time]string{m("23:32"): "batch", m("23:33"): "batch", m("23:34"): "batch", m("23:35"): "batch"}
	rows := compareMinutes(speed, batch, view)
	var out bytes.Buffer
	printMinutes(&out, rows)
	want := `  minute (UTC)      speed layer  batch layer  match  metrics_minute view serves
  2026-11-25 23:32  56           56           yes    batch
  2026-11-25 23:33  1,130        1,130        yes    batch
  2026-11-25 23:34  1,600        1,661        no     batch
  2026-11-25 23:35  -            4            no     batch
  total             2,786        2,851               
  2 of 4 minutes match.
`
	if out.String() != want {
		t.Errorf("side-by-side table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestKeepInstructions(t *testing.T) {
	vars := map[string]string{
		"PUBSUB_EMULATOR_HOST":           "127.0.0.1:1001",
		"STORAGE_EMULATOR_HOST":          "127.0.0.1:1002",
		"BIGQUERY_EMULATOR_HOST":         "127.0.0.1:1003",
		"BIGQUERY_STORAGE_EMULATOR_HOST": "127.0.0.1:1004",
	}
	got := keepInstructions(vars, defaults(), dayRange{"2026-11-25", "2026-11-26"})
	for _, want := range []string{
		"  export BIGQUERY_EMULATOR_HOST=127.0.0.1:1003\n",
		"  export BIGQUERY_STORAGE_EMULATOR_HOST=127.0.0.1:1004\n",
		"  export PUBSUB_EMULATOR_HOST=127.0.0.1:1001\n",
		"  export STORAGE_EMULATOR_HOST=127.0.0.1:1002\n",
		"curl -s -X POST http://127.0.0.1:1003/bigquery/v2/projects/railyard-local/queries",
		"FROM `railyard-local.railyard.events` GROUP BY layer",
		"curl -s 'http://127.0.0.1:1002/storage/v1/b/railyard-lake/o?prefix=raw/dt=2026-11-25/'",
		"go run ./pipelines/batch --lake=gs://railyard-lake --from=2026-11-25 --to=2026-11-26 --project=railyard-local --dataset=railyard\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("--keep instructions lack %q:\n%s", want, got)
		}
	}
}

func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	p.update("Publishing %s/%s messages", thousands(1200), thousands(3000))
	p.update("Publishing %s/%s messages", thousands(2400), thousands(3000))
	p.say("Published.")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "] Publishing 2,400/3,000 messages") || strings.Contains(out.String(), "\r") {
		t.Errorf("output that is not a terminal gets one plain line per update, got %q", out.String())
	}
}

func TestProgressOnATerminal(t *testing.T) {
	var out bytes.Buffer
	p := &progress{out: &out, tty: true, start: time.Now()}
	p.update("Batch job running… 10s")
	p.update("Batch job running… 5s")
	p.update("%s", strings.Repeat("x", rewriteWidth))
	p.say("Batch job done.")
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("want the rewritten line, the long one and the done one, got %q", out.String())
	}
	if first := lines[0]; strings.Count(first, "\r") != 2 || !strings.HasSuffix(first, "] Batch job running… 5s ") {
		t.Errorf("the second status line must overwrite the first, padded over its longer end: %q", first)
	}
	if strings.Contains(lines[1], "\r") {
		t.Errorf("a line too long to rewrite safely gets its own line: %q", lines[1])
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
