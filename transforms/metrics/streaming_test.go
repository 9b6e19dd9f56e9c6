package metrics_test

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/metrics"
)

func init() {
	register.Function1x2(byWindowStart)
	register.DoFn3x0[int64, func(*schemas.MetricMinuteSpeed) bool, func(paneSummary)](&summarizePanesFn{})
	register.Emitter1[paneSummary]()
	register.Iter1[schemas.MetricMinuteSpeed]()
}

// step is one event of a test stream: events arriving, stamped with their
// event time, or, when events is empty, the watermark advancing to
// t0+watermark.
type step struct {
	events    []schemas.Event
	watermark time.Duration
}

// stream builds a TestStream. Prism allows one TestStream per pipeline.
func stream(t *testing.T, s beam.Scope, steps []step) beam.PCollection {
	t.Helper()
	c := teststream.NewConfig()
	for _, st := range steps {
		if len(st.events) == 0 {
			if err := c.AdvanceWatermark(t0.Add(st.watermark).UnixMilli()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for _, ev := range st.events {
			if err := c.AddElements(ev.EventTime/1000, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}
	return teststream.Create(s, c)
}

// paneSummary is what a test asserts about the panes of one window: which
// pane (the first, the latest, or all panes added up) and its figures.
type paneSummary struct {
	Which      string
	PaneTiming string
	Events     int64
	Users      int64
	ValueSum   float64
}

func byWindowStart(m schemas.MetricMinuteSpeed) (int64, schemas.MetricMinuteSpeed) {
	return m.WindowStart, m
}

// summarizePanesFn summarizes the panes of a window as the serving views
// read them: the first pane, and the latest one (accumulating panes) or
// all panes added up (discarding panes). How many panes a late firing
// makes differs between runners; these summaries do not.
type summarizePanesFn struct {
	AddUp bool
}

func (fn *summarizePanesFn) ProcessElement(_ int64, panes func(*schemas.MetricMinuteSpeed) bool, emit func(paneSummary)) {
	var first, latest schemas.MetricMinuteSpeed
	added := paneSummary{Which: "all panes added"}
	var m schemas.MetricMinuteSpeed
	n := 0
	for panes(&m) {
		if n == 0 || m.PaneIndex < first.PaneIndex {
			first = m
		}
		if n == 0 || m.PaneIndex > latest.PaneIndex {
			latest = m
		}
		added.Events += m.Events
		added.ValueSum += m.ValueSum
		n++
	}
	summary := func(which string, m schemas.MetricMinuteSpeed) paneSummary {
		return paneSummary{Which: which, PaneTiming: m.PaneTiming, Events: m.Events, Users: m.Users, ValueSum: m.ValueSum}
	}
	emit(summary("first", first))
	if fn.AddUp {
		emit(added)
	} else {
		emit(summary("latest", latest))
	}
}

func TestPerMinuteStreaming(t *testing.T) {
	// One window, [t0, t0+1m), closed by the watermark at t0+1m10s, with
	// two late events inside the allowed lateness and one beyond it.
	steps := []step{
		{events: []schemas.Event{event(1*time.Second, "u1", ptr(1.0)), event(2*time.Second, "u2", ptr(2.0))}},
		{watermark: 30 * time.Second},
		{events: []schemas.Event{event(3*time.Second, "u1", ptr(3.0))}},
		{watermark: 70 * time.Second},
		{events: []schemas.Event{event(4*time.Second, "u3", ptr(4.0))}},
		{watermark: 80 * time.Second},
		{events: []schemas.Event{event(5*time.Second, "u4", ptr(5.0))}},
		{watermark: 5 * time.Minute},
		{events: []schemas.Event{event(6*time.Second, "u5", ptr(600.0))}},
	}
	lateFirings := trigger.AfterEndOfWindow().LateFiring(trigger.AfterCount(1))

	tests := []struct {
		name string
		cfg  metrics.Config
		want []paneSummary
	}{
		{
			name: "revises a window with late events in accumulating panes and drops those beyond the lateness",
			cfg:  metrics.Config{Trigger: lateFirings, AllowedLateness: 2 * time.Minute, Panes: metrics.Accumulating},
			want: []paneSummary{
				{Which: "first", PaneTiming: "ON_TIME", Events: 3, Users: 2, ValueSum: 6},
				{Which: "latest", PaneTiming: "LATE", Events: 5, Users: 4, ValueSum: 15},
			},
		},
		{
			name: "fires only new events in discarding panes",
			cfg:  metrics.Config{Trigger: lateFirings, AllowedLateness: 2 * time.Minute, Panes: metrics.Discarding},
			want: []paneSummary{
				{Which: "first", PaneTiming: "ON_TIME", Events: 3, Users: 2, ValueSum: 6},
				{Which: "all panes added", Events: 5, ValueSum: 15},
			},
		},
		{
			// The zero Config is the batch job's: it reads its input as
			// bounded, keyed by minute in the global window, so no event is
			// late and one on-time row holds them all when the input ends.
			name: "counts every event once, late or not, with the zero config",
			cfg:  metrics.Config{},
			want: []paneSummary{
				{Which: "first", PaneTiming: "ON_TIME", Events: 6, Users: 5, ValueSum: 615},
				{Which: "latest", PaneTiming: "ON_TIME", Events: 6, Users: 5, ValueSum: 615},
			},
		},
		{
			name: "drops every late event without allowed lateness",
			cfg:  metrics.Config{Trigger: lateFirings, Panes: metrics.Accumulating},
			want: []paneSummary{
				{Which: "first", PaneTiming: "ON_TIME", Events: 3, Users: 2, ValueSum: 6},
				{Which: "latest", PaneTiming: "ON_TIME", Events: 3, Users: 2, ValueSum: 6},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPanes(t, steps, tt.cfg, tt.want)
		})
	}
}

// checkPanes runs PerMinute with cfg over the test stream of steps and
// requires the summaries of its windows' panes (summarizePanesFn, adding
// panes up when they discard) to be want.
func checkPanes(t *testing.T, steps []step, cfg metrics.Config, want []paneSummary) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	rows := metrics.PerMinute(s, stream(t, s, steps), cfg)
	byWindow := beam.GroupByKey(s, beam.ParDo(s, byWindowStart, global(s, rows)))
	got := beam.ParDo(s, &summarizePanesFn{AddUp: cfg.Panes == metrics.Discarding}, byWindow)
	passert.EqualsList(s, got, want)
	ptest.RunAndValidate(t, p)
}

// TestPerMinuteStreamingOnlyLateEvents: a window none of whose events is
// on time (the watermark passed its end first, as when a job starts
// behind its subscription) has no on-time marker; its rows are its late
// panes, the first holding the first late event. The next window's event
// is on time.
func TestPerMinuteStreamingOnlyLateEvents(t *testing.T) {
	steps := []step{
		{watermark: 70 * time.Second},
		{events: []schemas.Event{event(59*time.Second, "u1", ptr(1.0))}},
		{watermark: 75 * time.Second},
		{events: []schemas.Event{event(59500*time.Millisecond, "u2", ptr(2.0))}},
		{watermark: 80 * time.Second},
		{events: []schemas.Event{event(70*time.Second, "u3", ptr(4.0))}},
		{watermark: 5 * time.Minute},
	}
	tr := trigger.AfterEndOfWindow().LateFiring(trigger.Always())
	checkPanes(t, steps, metrics.Config{Trigger: tr, AllowedLateness: 2 * time.Minute, Panes: metrics.Accumulating}, []paneSummary{
		{Which: "first", PaneTiming: "LATE", Events: 1, Users: 1, ValueSum: 1},
		{Which: "latest", PaneTiming: "LATE", Events: 2, Users: 2, ValueSum: 3},
		{Which: "first", PaneTiming: "ON_TIME", Events: 1, Users: 1, ValueSum: 4},
		{Which: "latest", PaneTiming: "ON_TIME", Events: 1, Users: 1, ValueSum: 4},
	})
}
