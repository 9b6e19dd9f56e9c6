package metrics_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/railyard/railyard/internal/proc"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/metrics"
)

// hotKey runs TestPerMinuteHotKeyCost, which measures the CPU time of one
// busy key (50,000 and then 200,000 events in one minute, early panes
// every second). It takes a few minutes, so it is off by default.
var hotKey = flag.Bool("hotkey", false, "measure the CPU time of one hot key of metrics.PerMinute (slow)")

func init() {
	register.DoFn4x0[context.Context, int64, func(*schemas.MetricMinuteSpeed) bool, func(paneCheck)](&checkPanesFn{})
	register.Emitter1[paneCheck]()
}

// hotKeyUsers is how many distinct users the hot key's events come from.
const hotKeyUsers = 5000

// hotKeyStream is a test stream of n events of one key (page.view from
// web-shop, web, DE) in the minute [t0, t0+1m): one batch of events per
// second of event time, the processing time advancing one second after
// each batch, so that a window with 1 s early firings fires about once
// per batch. The watermark then closes the minute. Every event has the
// value 1 and one of hotKeyUsers users.
func hotKeyStream(t testing.TB, s beam.Scope, n int) beam.PCollection {
	t.Helper()
	c := teststream.NewConfig()
	const batches = 60
	for b := range batches {
		at := time.Duration(b) * time.Second
		var evs []any
		for i := b * n / batches; i < (b+1)*n/batches; i++ {
			ev := event(at, fmt.Sprintf("u%d", i%hotKeyUsers), ptr(1.0))
			ev.EventID = fmt.Sprintf("e%08d", i)
			evs = append(evs, ev)
		}
		if err := c.AddElements(t0.Add(at).UnixMilli(), evs...); err != nil {
			t.Fatal(err)
		}
		c.AdvanceProcessingTime(time.Second.Milliseconds())
	}
	if err := c.AdvanceWatermark(t0.Add(90 * time.Second).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	c.AdvanceProcessingTime(time.Second.Milliseconds())
	if err := c.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}
	return teststream.Create(s, c)
}

// hotKeyConfig is the streaming job's metrics configuration: early panes
// every second, an on-time pane, a late pane per late event.
var hotKeyConfig = metrics.Config{
	Trigger: trigger.AfterEndOfWindow().
		EarlyFiring(trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(time.Second))).
		LateFiring(trigger.Always()),
	AllowedLateness: 2 * time.Minute,
	Panes:           metrics.Accumulating,
	ProcessedAt:     processedAt,
}

// paneCheck is what a test asserts about the accumulating panes of one
// window: the latest pane's figures, and whether the panes are in order —
// indexes 0, 1, 2, … with no gap or repeat, counts that never decrease,
// EARLY panes, then one ON_TIME pane, then LATE panes (Prism v2.77.0
// fires a LATE pane when the window expires even without late events).
type paneCheck struct {
	Events   int64
	Users    int64
	ValueSum float64
	InOrder  bool
	// Problem says what is out of order; empty when InOrder.
	Problem string
}

// windowPanes is the distribution of how many panes a window fired.
var windowPanes = beam.NewDistribution("railyard_test", "window_panes")

// checkPanesFn checks the panes of a window (see paneCheck).
type checkPanesFn struct{}

func (*checkPanesFn) ProcessElement(ctx context.Context, _ int64, panes func(*schemas.MetricMinuteSpeed) bool, emit func(paneCheck)) {
	byIndex := map[int64]schemas.MetricMinuteSpeed{}
	var m schemas.MetricMinuteSpeed
	defer func() { windowPanes.Update(ctx, int64(len(byIndex))) }()
	for panes(&m) {
		if _, dup := byIndex[m.PaneIndex]; dup {
			emit(paneCheck{Problem: fmt.Sprintf("pane index %d twice", m.PaneIndex)})
			return
		}
		byIndex[m.PaneIndex] = m
	}
	rank := map[string]int{"EARLY": 0, "ON_TIME": 1, "LATE": 2}
	var prev schemas.MetricMinuteSpeed
	onTime := 0
	for i := range int64(len(byIndex)) {
		p, ok := byIndex[i]
		switch {
		case !ok:
			emit(paneCheck{Problem: fmt.Sprintf("no pane %d of %d", i, len(byIndex))})
			return
		case i > 0 && p.Events < prev.Events:
			emit(paneCheck{Problem: fmt.Sprintf("pane %d has %d events, pane %d had %d", i, p.Events, i-1, prev.Events)})
			return
		case i > 0 && rank[p.PaneTiming] < rank[prev.PaneTiming]:
			emit(paneCheck{Problem: fmt.Sprintf("pane %d is %s after %s", i, p.PaneTiming, prev.PaneTiming)})
			return
		}
		if p.PaneTiming == "ON_TIME" {
			onTime++
		}
		prev = p
	}
	if onTime != 1 {
		emit(paneCheck{Problem: fmt.Sprintf("%d ON_TIME panes", onTime)})
		return
	}
	emit(paneCheck{Events: prev.Events, Users: prev.Users, ValueSum: prev.ValueSum, InOrder: true})
}

// hotKeyPipeline is PerMinute over hotKeyStream(n), its panes checked.
func hotKeyPipeline(t testing.TB, n int) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	rows := metrics.PerMinute(s, hotKeyStream(t, s, n), hotKeyConfig)
	byWindow := beam.GroupByKey(s, beam.ParDo(s, byWindowStart, global(s, rows)))
	got := beam.ParDo(s, &checkPanesFn{}, byWindow)
	passert.Equals(s, got, paneCheck{
		Events: int64(n), Users: int64(min(n, hotKeyUsers)), ValueSum: float64(n), InOrder: true,
	})
	return p
}

func TestPerMinuteHotKey(t *testing.T) {
	t.Run("fires exact accumulating panes in order for one key with early firings", func(t *testing.T) {
		ptest.RunAndValidate(t, hotKeyPipeline(t, 2000))
	})
}

// TestPerMinuteHotKeyCost measures (with -hotkey) the CPU time of the
// pipeline of TestPerMinuteHotKey at 50,000 and 200,000 events: if the
// cost of a pane does not depend on how many events the window holds,
// the second costs about 4× the first (a cost quadratic in the events
// would be 16×). It reports the figures and asserts only the panes.
func TestPerMinuteHotKeyCost(t *testing.T) {
	if !*hotKey {
		t.Skip("measures CPU time for minutes; run with -hotkey")
	}
	var cpu [2]time.Duration
	for i, n := range []int{50_000, 200_000} {
		p := hotKeyPipeline(t, n)
		runtime.GC()
		before, wall := proc.SelfCPU(), time.Now()
		res, err := ptest.RunWithMetrics(p)
		if err != nil {
			t.Fatalf("%d events: %v", n, err)
		}
		cpu[i] = proc.SelfCPU() - before
		var panes int64
		for _, d := range res.Metrics().Query(func(r beam.MetricResult) bool { return r.Name() == "window_panes" }).Distributions() {
			panes = d.Result().Max
		}
		t.Logf("%d events of one key in one minute, %d panes: CPU %v, wall %v", n, panes, cpu[i].Round(time.Millisecond), time.Since(wall).Round(time.Millisecond))
	}
	t.Logf("CPU growth for 4× the events: %.2f×", float64(cpu[1])/float64(cpu[0]))
}
