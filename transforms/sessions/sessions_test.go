package sessions_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/sessions"
)

func TestMain(m *testing.M) { ptest.Main(m) }

func init() {
	register.Function1x2(stampEventTime)
	register.Function1x1(isBatchPane)
}

// stampEventTime does what the decode step upstream does: it makes the
// event time the element timestamp.
func stampEventTime(ev schemas.Event) (beam.EventTime, schemas.Event) {
	return mtime.FromTime(time.UnixMicro(ev.EventTime)), ev
}

// t0 is 2026-03-01T12:00:00Z.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// processedAt is the fixed processed_at of the tests.
var processedAt = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// event is an event of user (none if empty) from source at t0+at.
func event(user string, at time.Duration, source string) schemas.Event {
	ev := schemas.Event{
		EventID:   user + "@" + at.String() + "/" + source,
		EventType: "page.view",
		EventTime: t0.Add(at).UnixMicro(),
		Source:    source,
		Layer:     schemas.LayerBatch,
	}
	if user != "" {
		ev.UserID = &user
	}
	return ev
}

// session is a session of user from t0+start to t0+end, with the default
// gap.
func session(user string, start, end time.Duration, events int64, sources ...string) schemas.Session {
	return schemas.Session{
		SessionStart:    t0.Add(start).UnixMicro(),
		SessionEnd:      t0.Add(end).UnixMicro(),
		UserID:          user,
		DurationSeconds: (end - start).Seconds(),
		Events:          events,
		Sources:         sources,
		GapSeconds:      int64(sessions.DefaultGap / time.Second),
	}
}

func withGap(ss schemas.Session, gap time.Duration) schemas.Session {
	ss.GapSeconds = int64(gap / time.Second)
	return ss
}

// isBatchPane reports whether a row is the one pane of its session in a
// batch run: index 0, on time, and the test's processed_at. Grouped per
// pane, Prism v2.77.0 does not describe the pane of a merged session
// window, so UNKNOWN is accepted too (see TestPerUserStreamingOnPrism).
func isBatchPane(ss schemas.SessionSpeed) bool {
	return ss.PaneIndex == 0 && (ss.PaneTiming == "ON_TIME" || ss.PaneTiming == "UNKNOWN") && ss.ProcessedAt == processedAt.UnixMicro()
}

// global rewindows col into the global window, which passert needs.
func global(s beam.Scope, col beam.PCollection) beam.PCollection {
	return beam.WindowInto(s, window.NewGlobalWindows(), col)
}

// counter is the value of the counter railyard/name summed over all steps.
func counter(t *testing.T, pr beam.PipelineResult, name string) int64 {
	t.Helper()
	var total int64
	for _, c := range pr.Metrics().Query(func(r beam.MetricResult) bool {
		return r.Namespace() == "railyard" && r.Name() == name
	}).Counters() {
		total += c.Result()
	}
	return total
}

func TestPerUser(t *testing.T) {
	const gap = sessions.DefaultGap
	tests := []struct {
		name        string
		cfg         sessions.Config
		in          []schemas.Event
		want        []schemas.Session
		wantSkipped int64
	}{
		{
			name: "splits a user's events at a pause longer than the gap",
			in:   []schemas.Event{event("u1", 0, "web"), event("u1", 10*time.Minute, "web"), event("u1", 10*time.Minute+gap+time.Second, "web")},
			want: []schemas.Session{
				session("u1", 0, 10*time.Minute, 2, "web"),
				session("u1", 10*time.Minute+gap+time.Second, 10*time.Minute+gap+time.Second, 1, "web"),
			},
		},
		{
			name: "merges events closer than the gap into one session",
			in:   []schemas.Event{event("u1", 2*(gap-time.Second), "web"), event("u1", 0, "web"), event("u1", gap-time.Second, "web")},
			want: []schemas.Session{session("u1", 0, 2*(gap-time.Second), 3, "web")},
		},
		{
			name: "collects the distinct sources of a session, sorted",
			in:   []schemas.Event{event("u1", 0, "web-shop"), event("u1", time.Minute, "ios-app"), event("u1", 2*time.Minute, "web-shop"), event("u1", 3*time.Minute, "android-app")},
			want: []schemas.Session{session("u1", 0, 3*time.Minute, 4, "android-app", "ios-app", "web-shop")},
		},
		{
			name: "keeps the sessions of different users apart",
			in:   []schemas.Event{event("u1", 0, "web"), event("u2", time.Minute, "web"), event("u1", 2*time.Minute, "web")},
			want: []schemas.Session{session("u1", 0, 2*time.Minute, 2, "web"), session("u2", time.Minute, time.Minute, 1, "web")},
		},
		{
			name:        "skips and counts events without a user",
			in:          []schemas.Event{event("", 0, "web"), event("u1", 0, "web"), event("", time.Minute, "web")},
			want:        []schemas.Session{session("u1", 0, 0, 1, "web")},
			wantSkipped: 2,
		},
		{
			name: "uses the configured gap",
			cfg:  sessions.Config{Gap: 5 * time.Minute},
			in:   []schemas.Event{event("u1", 0, "web"), event("u1", 4*time.Minute, "web"), event("u1", 10*time.Minute, "web")},
			want: []schemas.Session{
				withGap(session("u1", 0, 4*time.Minute, 2, "web"), 5*time.Minute),
				withGap(session("u1", 10*time.Minute, 10*time.Minute, 1, "web"), 5*time.Minute),
			},
		},
	}
	// PerUser combines when each session fires once, and groups per pane
	// otherwise: both must give the same sessions.
	paths := []struct {
		name    string
		trigger trigger.Trigger
	}{
		{name: "combined, with the default trigger"},
		{name: "grouped, with a trigger", trigger: trigger.AfterEndOfWindow()},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, s, col := ptest.CreateList(tt.in)
					cfg := tt.cfg
					cfg.Trigger, cfg.ProcessedAt = path.trigger, processedAt
					got := global(s, sessions.PerUser(s, beam.ParDo(s, stampEventTime, col), cfg))
					passert.EqualsList(s, sessions.WithoutPane(s, got), tt.want)
					passert.True(s, got, isBatchPane)
					pr, err := ptest.RunWithMetrics(p)
					if err != nil {
						t.Fatalf("pipeline failed: %v", err)
					}
					if got := counter(t, pr, "sessions_skipped_no_user"); got != tt.wantSkipped {
						t.Errorf("railyard/sessions_skipped_no_user = %d, want %d", got, tt.wantSkipped)
					}
				})
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sessions.Config
		wantErr string
	}{
		{name: "accepts the zero config", cfg: sessions.Config{}},
		{name: "accepts a gap of whole seconds", cfg: sessions.Config{Gap: 90 * time.Second, AllowedLateness: time.Hour, Panes: sessions.Discarding}},
		{name: "rejects a negative gap", cfg: sessions.Config{Gap: -time.Minute}, wantErr: "must not be negative"},
		{name: "rejects a gap of a fraction of a second", cfg: sessions.Config{Gap: 1500 * time.Millisecond}, wantErr: "whole number of seconds"},
		{name: "rejects a negative allowed lateness", cfg: sessions.Config{AllowedLateness: -time.Second}, wantErr: "AllowedLateness is -1s"},
		{name: "rejects an unknown pane mode", cfg: sessions.Config{Panes: 4}, wantErr: "unknown Panes PaneMode(4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPerUserRejectsABadConfig(t *testing.T) {
	t.Run("panics while the pipeline is built", func(t *testing.T) {
		defer func() {
			r := recover()
			err, ok := r.(error)
			if !ok || !errors.Is(err, sessions.ErrInvalidConfig) || !strings.Contains(err.Error(), "whole number of seconds") {
				t.Fatalf("recovered %v, want an error wrapping ErrInvalidConfig about the gap", r)
			}
		}()
		_, s, col := ptest.CreateList([]schemas.Event{event("u1", 0, "web")})
		sessions.PerUser(s, col, sessions.Config{Gap: time.Millisecond})
	})
}
