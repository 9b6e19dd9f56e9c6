package replayjob

import (
	"flag"
	"strings"
	"testing"

	"github.com/railyard/railyard/pipelines/config"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Destination: config.Destination{Project: "my-project", Dataset: "railyard"}, Lake: "gs://lake", From: "2026-11-01", To: "2026-11-02", RunID: "r1"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"accepts a lake and a failed_at range", func(*Config) {}, ""},
		{"accepts every filter", func(c *Config) {
			c.Reasons, c.Layer, c.Stage, c.SourceURIPrefix = []string{"too_large", "missing_source"}, "batch", "write_events_speed", "gs://lake/raw/dt=2026-11-01/"
		}, ""},
		{"rejects a missing project", func(c *Config) { c.Project = "" }, "--project is required"},
		{"rejects a bad dataset", func(c *Config) { c.Dataset = "rail-yard" }, "--dataset"},
		{"rejects a missing lake", func(c *Config) { c.Lake = "" }, "--lake is required"},
		{"rejects a local lake", func(c *Config) { c.Lake = "/data/lake" }, `--lake="/data/lake": a replay writes to a Cloud Storage lake`},
		{"rejects a lake root with a glob", func(c *Config) { c.Lake = "gs://lake/*" }, "holds a glob character"},
		{"rejects a missing --from", func(c *Config) { c.From = "" }, "--from and --to are required"},
		{"rejects a missing --to", func(c *Config) { c.To = "" }, "--from and --to are required"},
		{"rejects a bad --from", func(c *Config) { c.From = "2026-11-31" }, `--from="2026-11-31" is not a date`},
		{"rejects a reversed range", func(c *Config) { c.From, c.To = "2026-11-02", "2026-11-01" }, "--to=2026-11-01 is before --from=2026-11-02"},
		{"rejects a reason that is not a code", func(c *Config) { c.Reasons = []string{"Too Large"} }, `--reason="Too Large" is not a reason code`},
		{"rejects an unknown layer", func(c *Config) { c.Layer = "fast" }, `--layer="fast"`},
		{"rejects an unknown stage", func(c *Config) { c.Stage = "encode" }, `--stage="encode"`},
		{"rejects a source_uri that is not a lake address", func(c *Config) { c.SourceURIPrefix = "raw/dt=2026-11-01" }, `--source_uri="raw/dt=2026-11-01"`},
		{"rejects a run id with dots", func(c *Config) { c.RunID = "r.1" }, `--run_id="r.1" is not a run name`},
		{"rejects a selection limit above the most", func(c *Config) { c.MaxDeadLetters = MaxMaxDeadLetters + 1 }, "--max_dead_letters=100001 must be between 1 and 100000"},
		{"rejects a negative selection limit", func(c *Config) { c.MaxDeadLetters = -1 }, "--max_dead_letters=-1"},
		{"rejects a dry run that would rebuild", func(c *Config) { c.DryRun, c.RebuildDays = true, true }, "--rebuild_days does nothing with --dry_run"},
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

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.String("project", "", "")
	fs.Bool("dry_run", false, "")
	build := RegisterFlags(fs)
	err := fs.Parse([]string{"--project=my-project", "--lake=gs://lake", "--from=2026-11-01", "--to=2026-11-01",
		"--reason=too_large, missing_source", "--layer=speed", "--dry_run"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := build()
	if cfg.Project != "my-project" || cfg.Dataset != "railyard" || !cfg.DryRun || cfg.Layer != "speed" ||
		strings.Join(cfg.Reasons, ",") != "too_large,missing_source" || !strings.HasPrefix(cfg.RunID, "replay-") || cfg.MaxDeadLetters != DefaultMaxDeadLetters {
		t.Errorf("config %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestDayRanges(t *testing.T) {
	got := dayRanges([]string{"2026-10-31", "2026-11-01", "2026-11-03"})
	if len(got) != 2 || got[0] != [2]string{"2026-10-31", "2026-11-01"} || got[1] != [2]string{"2026-11-03", "2026-11-03"} {
		t.Errorf("dayRanges = %v", got)
	}
}
