package streamjob

import (
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/transforms/windowing"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.Project = "railyard-test"
	cfg.Subscription = "projects/railyard-test/subscriptions/events"
	cfg.Lake = "gs://railyard-lake"
	cfg.RunID = "stream-test"
	return cfg
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("the defaults with the required flags: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // fragments of the message, one per problem
	}{
		{"no subscription", func(c *Config) { c.Subscription = "events" }, []string{"--subscription=\"events\" must be a full name"}},
		{"local lake", func(c *Config) { c.Lake = "/tmp/lake" }, []string{"--lake"}},
		{"a lake root with a star", func(c *Config) { c.Lake = "gs://railyard-lake/x*" }, []string{`--lake="gs://railyard-lake/x*" holds a glob character`}},
		{"a lake root with a question mark", func(c *Config) { c.Lake = "gs://railyard-lake/x?" }, []string{"--lake=", "holds a glob character"}},
		{"a lake root with a bracket", func(c *Config) { c.Lake = "gs://railyard-lake/[ab]" }, []string{"--lake=", "holds a glob character"}},
		{"a run id with dots", func(c *Config) { c.RunID = "2026.11.01" }, []string{`--run_id="2026.11.01" is not a run name: 1-64 letters, digits, _ or -`}},
		{"a run id too long", func(c *Config) { c.RunID = strings.Repeat("r", 65) }, []string{"--run_id=", "is not a run name"}},
		{"negative idle", func(c *Config) { c.StopAfterIdle = -time.Second }, []string{"--stop_after_idle=-1s must not be negative"}},
		{"no read shards", func(c *Config) { c.ReadShards = 0 }, []string{"--read_shards=0 must be between 1 and 1000"}},
		{"odd session gap", func(c *Config) { c.SessionGap = 1500 * time.Millisecond }, []string{"--session_gap=1.5s must be a positive whole number of seconds"}},
		{"ack deadline", func(c *Config) { c.AckDeadline = 5 * time.Second }, []string{"--ack_deadline=5s must be between 10s and 10m"}},
		{"too small a message cap", func(c *Config) { c.MaxOutstandingMessages = 999 }, []string{"--max_outstanding_messages=999 must be between 1000 and 10000000"}},
		{"too large a message cap", func(c *Config) { c.MaxOutstandingMessages = 20_000_000 }, []string{"--max_outstanding_messages=20000000 must be between"}},
		{"too small a byte cap", func(c *Config) { c.MaxOutstandingBytes = 1 << 20 }, []string{"--max_outstanding_bytes=1048576 must be between 16777216 (16 MiB) and 68719476736 (64 GiB)"}},
		{"too large a byte cap", func(c *Config) { c.MaxOutstandingBytes = 65 << 30 }, []string{"--max_outstanding_bytes=69793218560 must be between"}},
		{"ack extension under the archive window", func(c *Config) { c.ArchiveWindow = 10 * time.Minute }, []string{"--ack_extension=10m0s must be at least twice --archive_window=10m0s plus 10s"}},
		{"lateness too short on Prism", func(c *Config) { c.AllowedLateness = 20 * time.Second }, []string{"--allowed_lateness=20s is too short for --early_firing=1s on Prism: it must be at least 30s"}},
		{"lateness short of ten firings on Prism", func(c *Config) { c.EarlyFiring = 5 * time.Second; c.AllowedLateness = 40 * time.Second },
			[]string{"it must be at least 50s"}},
		{"no max future", func(c *Config) { c.MaxFuture = 0 }, []string{"--max_future=0s must be positive and at most 24h0m0s"}},
		{"max future of days", func(c *Config) { c.MaxFuture = 48 * time.Hour }, []string{"--max_future=48h0m0s must be positive and at most 24h0m0s"}},
		{"idle too short on Prism", func(c *Config) { c.StopAfterIdle = 5 * time.Second }, []string{"--stop_after_idle=5s must be at least 10 × --early_firing=1s on Prism"}},
		{"every problem at once", func(c *Config) { c.ReadShards = 0; c.ArchiveShards = 0; c.AllowedLateness = -time.Second },
			[]string{"--read_shards=0", "--archive_shards=0", "--allowed_lateness=-1s must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatalf("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the message does not say %q:\n%v", w, err)
				}
			}
		})
	}

	// The Prism rules hold on Prism only, and not without early firings.
	for _, runner := range []string{"dataflow", "flink"} {
		cfg := validConfig()
		cfg.Runner, cfg.AllowedLateness, cfg.StopAfterIdle = runner, 0, time.Second
		if err := cfg.Validate(); err != nil {
			t.Errorf("--runner=%s with no lateness: %v", runner, err)
		}
	}
	cfg := validConfig()
	cfg.EarlyFiring, cfg.AllowedLateness = 0, 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("Prism without early firings and no lateness: %v", err)
	}
}

func TestCloseMarginAndWatermarkSpeed(t *testing.T) {
	for _, tc := range []struct {
		runner              string
		early, lateness     time.Duration
		want, wantWatermark time.Duration
	}{
		{"", time.Second, 2 * time.Minute, 10 * time.Second, 40 * time.Second},
		{"prism", time.Second, 30 * time.Second, 10 * time.Second, 10 * time.Second},
		{"prism", 5 * time.Second, 50 * time.Second, 25 * time.Second, 3333333 * time.Microsecond},
		{"prism", 2 * time.Second, 10 * time.Minute, 20 * time.Second, 100 * time.Second},
		{"prism", 0, 2 * time.Minute, 0, 0},
		{"dataflow", time.Second, 2 * time.Minute, 0, 0},
		{"flink", time.Second, 2 * time.Minute, 0, 0},
	} {
		cfg := validConfig()
		cfg.Runner, cfg.EarlyFiring, cfg.AllowedLateness = tc.runner, tc.early, tc.lateness
		set := cfg.settings()
		if got := set.closeMargin; got != tc.want {
			t.Errorf("runner %q, early firing %v, lateness %v: close margin %v, want %v", tc.runner, tc.early, tc.lateness, got, tc.want)
		}
		// The margin leaves room for the timer: more than one firing delay,
		// and less than the lateness, so late events still revise windows.
		if m := set.closeMargin; m > 0 && (m <= tc.early || m >= tc.lateness) {
			t.Errorf("close margin %v outside (%v, %v)", m, tc.early, tc.lateness)
		}
		if got := time.Duration(set.read.MaxWatermarkSpeed * float64(time.Second)); got.Round(time.Microsecond) != tc.wantWatermark {
			t.Errorf("runner %q, early firing %v, lateness %v: watermark speed %v a second, want %v", tc.runner, tc.early, tc.lateness, got, tc.wantWatermark)
		}
	}
}

// TestSessionSettings: sessions fire early panes where the runner takes
// them; on Prism, which refuses them, they are split over 16 groupings.
func TestSessionSettings(t *testing.T) {
	for _, tc := range []struct {
		runner    string
		early     bool
		groupings int
	}{
		{"prism", false, prismSessionGroupings},
		{"dataflow", true, 0},
		{"flink", true, 0},
	} {
		cfg := validConfig()
		cfg.Runner, cfg.EarlyFiring = tc.runner, time.Second
		set := cfg.settings()
		if early := windowing.FiresEarly(set.sessionsTrigger); early != tc.early || set.sessionGroupings != tc.groupings {
			t.Errorf("runner %q: sessions trigger %v, groupings %d; want early firings %v, groupings %d",
				tc.runner, set.sessionsTrigger, set.sessionGroupings, tc.early, tc.groupings)
		}
	}
}
