package metrics_test

import (
	"errors"
	"flag"
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
	"github.com/railyard/railyard/transforms/metrics"
)

// TestMain runs the tests on Prism without bundle splits, as the
// streaming job does: Prism v2.77.0 can run one key of a split bundle in
// two bundles at once, and the running totals of accumulating panes
// would lose an update (see accumulatingPerMinute).
func TestMain(m *testing.M) {
	if err := flag.Set("experiments", "prism_disable_sdf_split"); err != nil {
		panic(err)
	}
	ptest.Main(m)
}

func init() {
	register.Function1x2(stampEventTime)
}

// stampEventTime does what the decode step upstream does: it makes the
// event time the element timestamp.
func stampEventTime(ev schemas.Event) (beam.EventTime, schemas.Event) {
	return mtime.FromTime(time.UnixMicro(ev.EventTime)), ev
}

// t0 is 2026-03-01T12:00:00Z, the start of a window.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// processedAt is the fixed processed_at of the tests.
var processedAt = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// event is a page.view from web-shop at t0+at, by user (none if empty),
// with value (none if nil).
func event(at time.Duration, user string, value *float64) schemas.Event {
	ev := schemas.Event{
		EventID:   "e" + at.String() + user,
		EventType: "page.view",
		EventTime: t0.Add(at).UnixMicro(),
		Source:    "web-shop",
		Platform:  ptr("web"),
		Country:   ptr("DE"),
		Value:     value,
		Layer:     schemas.LayerBatch,
	}
	if user != "" {
		ev.UserID = &user
	}
	return ev
}

func on(ev schemas.Event, platform, country *string) schemas.Event {
	ev.Platform, ev.Country = platform, country
	return ev
}

// metric is the on-time row of the window starting at start for the key
// of event's defaults (page.view, web-shop, web, DE).
func metric(start time.Duration, events, users int64, valueSum float64) schemas.MetricMinuteSpeed {
	return schemas.MetricMinuteSpeed{
		MetricMinute: schemas.MetricMinute{
			WindowStart: t0.Add(start).UnixMicro(),
			WindowEnd:   t0.Add(start + time.Minute).UnixMicro(),
			EventType:   "page.view",
			Source:      "web-shop",
			Platform:    ptr("web"),
			Country:     ptr("DE"),
			Events:      events,
			Users:       users,
			ValueSum:    valueSum,
		},
		Pane: schemas.Pane{PaneIndex: 0, PaneTiming: "ON_TIME", ProcessedAt: processedAt.UnixMicro()},
	}
}

func keyed(m schemas.MetricMinuteSpeed, platform, country *string) schemas.MetricMinuteSpeed {
	m.Platform, m.Country = platform, country
	return m
}

// global rewindows col into the global window, which passert needs.
func global(s beam.Scope, col beam.PCollection) beam.PCollection {
	return beam.WindowInto(s, window.NewGlobalWindows(), col)
}

func TestPerMinute(t *testing.T) {
	tests := []struct {
		name string
		in   []schemas.Event
		want []schemas.MetricMinuteSpeed
	}{
		{
			name: "counts events, distinct users and the value sum of a minute",
			in: []schemas.Event{
				event(1*time.Second, "u1", ptr(1.5)),
				event(2*time.Second, "u1", nil),
				event(3*time.Second, "u2", ptr(2.0)),
				event(4*time.Second, "", ptr(0.25)),
			},
			want: []schemas.MetricMinuteSpeed{metric(0, 4, 2, 3.75)},
		},
		{
			name: "splits events at a window boundary",
			in: []schemas.Event{
				event(time.Minute-time.Microsecond, "u1", ptr(1.0)),
				event(time.Minute, "u1", ptr(2.0)),
				event(2*time.Minute+30*time.Second, "u2", nil),
			},
			want: []schemas.MetricMinuteSpeed{metric(0, 1, 1, 1), metric(time.Minute, 1, 1, 2), metric(2*time.Minute, 1, 1, 0)},
		},
		{
			name: "keeps NULL platform and country apart from other and from values",
			in: []schemas.Event{
				on(event(1*time.Second, "u1", nil), nil, nil),
				on(event(2*time.Second, "u1", nil), ptr("other"), nil),
				on(event(3*time.Second, "u1", nil), ptr("other"), ptr("US")),
				on(event(4*time.Second, "u2", nil), nil, ptr("US")),
				on(event(5*time.Second, "u3", nil), nil, ptr("US")),
			},
			want: []schemas.MetricMinuteSpeed{
				keyed(metric(0, 1, 1, 0), nil, nil),
				keyed(metric(0, 1, 1, 0), ptr("other"), nil),
				keyed(metric(0, 1, 1, 0), ptr("other"), ptr("US")),
				keyed(metric(0, 2, 2, 0), nil, ptr("US")),
			},
		},
		{
			name: "keeps event types and sources apart",
			in: func() []schemas.Event {
				a, b := event(time.Second, "u1", nil), event(time.Second, "u1", nil)
				a.EventType, b.Source = "cart.add", "ios-app"
				return []schemas.Event{a, b, event(time.Second, "u1", nil)}
			}(),
			want: func() []schemas.MetricMinuteSpeed {
				a, b := metric(0, 1, 1, 0), metric(0, 1, 1, 0)
				a.EventType, b.Source = "cart.add", "ios-app"
				return []schemas.MetricMinuteSpeed{a, b, metric(0, 1, 1, 0)}
			}(),
		},
		{
			name: "sums values exactly in any order",
			in: []schemas.Event{
				event(1*time.Second, "u1", ptr(1e16)),
				event(2*time.Second, "u1", ptr(1.0)),
				event(3*time.Second, "u1", ptr(-1e16)),
				event(4*time.Second, "u1", ptr(1.0)),
			},
			want: []schemas.MetricMinuteSpeed{metric(0, 4, 1, 2)},
		},
	}
	// PerMinute combines when each window fires once, and groups per pane
	// otherwise: both must give the same rows.
	paths := []struct {
		name string
		cfg  metrics.Config
	}{
		{name: "combined, with the default trigger", cfg: metrics.Config{ProcessedAt: processedAt}},
		{name: "grouped, with a trigger", cfg: metrics.Config{Trigger: trigger.AfterEndOfWindow(), ProcessedAt: processedAt}},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, s, col := ptest.CreateList(tt.in)
					events := beam.ParDo(s, stampEventTime, col)
					got := metrics.PerMinute(s, events, path.cfg)
					passert.EqualsList(s, global(s, got), tt.want)
					ptest.RunAndValidate(t, p)
				})
			}
		})
	}
}

func TestWithoutPane(t *testing.T) {
	t.Run("keeps the metric and drops the pane", func(t *testing.T) {
		p, s, col := ptest.CreateList([]schemas.Event{event(time.Second, "u1", ptr(4.0)), event(time.Minute, "u1", nil)})
		got := metrics.WithoutPane(s, metrics.PerMinute(s, beam.ParDo(s, stampEventTime, col), metrics.Config{}))
		passert.Equals(s, global(s, got), metric(0, 1, 1, 4).MetricMinute, metric(time.Minute, 1, 1, 0).MetricMinute)
		ptest.RunAndValidate(t, p)
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metrics.Config
		wantErr string
	}{
		{name: "accepts the zero config", cfg: metrics.Config{}},
		{name: "accepts discarding panes with lateness", cfg: metrics.Config{Panes: metrics.Discarding, AllowedLateness: time.Hour}},
		{name: "rejects a negative allowed lateness", cfg: metrics.Config{AllowedLateness: -time.Second}, wantErr: "must not be negative"},
		{name: "rejects an unknown pane mode", cfg: metrics.Config{Panes: 9}, wantErr: "unknown Panes PaneMode(9)"},
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

func TestPerMinuteRejectsABadConfig(t *testing.T) {
	t.Run("panics while the pipeline is built", func(t *testing.T) {
		defer func() {
			r := recover()
			err, ok := r.(error)
			if !ok || !errors.Is(err, metrics.ErrInvalidConfig) || !strings.Contains(err.Error(), "must not be negative") {
				t.Fatalf("recovered %v, want an error wrapping ErrInvalidConfig about the lateness", r)
			}
		}()
		_, s, col := ptest.CreateList([]schemas.Event{event(0, "u1", nil)})
		metrics.PerMinute(s, col, metrics.Config{AllowedLateness: -time.Minute})
	})
}
