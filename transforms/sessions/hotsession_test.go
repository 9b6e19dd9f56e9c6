package sessions_test

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/railyard/railyard/internal/proc"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/sessions"
)

// hotSession runs TestHotSessionCost, which measures the CPU time of one
// user's busy session (50,000 and then 200,000 events). It takes a few
// minutes, so it is off by default.
var hotSession = flag.Bool("hotsession", false, "measure the CPU time of one busy session of sessions.PerUser (slow)")

func init() {
	register.Function1x1(eventCount)
}

func eventCount(ss schemas.SessionSpeed) int64 { return ss.Events }

// hotSessionStream is a test stream of one user's session: n events over
// the 10 minutes from t0, in 60 batches; the watermark then closes the
// session, and late events come one at a time, each a late pane of the
// session (at t0 plus a few seconds, inside it).
func hotSessionStream(t testing.TB, s beam.Scope, n, late int) beam.PCollection {
	t.Helper()
	c := teststream.NewConfig()
	const batches = 60
	for b := range batches {
		var evs []any
		for i := b * n / batches; i < (b+1)*n/batches; i++ {
			evs = append(evs, event("bot", time.Duration(i)*10*time.Minute/time.Duration(n), "api"))
		}
		if err := c.AddElements(t0.Add(time.Duration(b)*10*time.Second).UnixMilli(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AdvanceWatermark(t0.Add(30 * time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for i := range late {
		ev := event("bot", time.Duration(i+1)*time.Second, "late")
		ev.EventID = fmt.Sprint("late-", i)
		if err := c.AddElements(ev.EventTime/1000, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}
	return teststream.Create(s, c)
}

// runHotSession runs sessions with running totals (late panes, allowed
// lateness an hour) over hotSessionStream and checks the revisions: one
// per pane, the latest holding every event. (On Prism v2.77.0 the first
// late event's pane may reach the totals before the on-time pane: both
// carry pane index 0. The rows then start from that one event; the
// latest is the same.) It returns the events the panes read in all.
func runHotSession(t testing.TB, n, late int) (read int64) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	rows := global(s, sessions.PerUser(s, hotSessionStream(t, s, n, late), runningTotals))
	counts := beam.ParDo(s, eventCount, rows)
	passert.Count(s, counts, "rows", late+1)
	passert.Equals(s, stats.Max(s, counts), int64(n+late))
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Metrics().AllMetrics().Distributions() {
		if d.Name() == metricnames.SessionsPaneEvents {
			read += d.Result().Sum
		}
	}
	return read
}

// TestHotSessionReadsEachEventOnce: a session of 20,000 events revised by
// 30 late events fires 31 rows, the latest of all 20,030, and its panes
// read each event once, not the whole session again at every late pane
// (which would be 620,000 reads).
func TestHotSessionReadsEachEventOnce(t *testing.T) {
	const n, late = 20_000, 30
	read := runHotSession(t, n, late)
	t.Logf("the panes read %d events in all", read)
	// Prism may drop a metric report, which lowers the sum: the check is
	// that nothing was read twice.
	if read == 0 || read > n+late {
		t.Errorf("the panes read %d events in all, want at most the %d of the stream", read, n+late)
	}
}

// TestHotSessionCost measures the process's CPU time for one busy session
// of 50,000 and then 200,000 events, each revised by 60 late panes: a
// cost per pane that grows with the session would grow the total 4× over
// the events plus 4× over the panes' re-reads.
func TestHotSessionCost(t *testing.T) {
	if !*hotSession {
		t.Skip("slow: run with -args -hotsession")
	}
	var took []time.Duration
	for _, n := range []int{50_000, 200_000} {
		runtime.GC()
		before, start := proc.SelfCPU(), time.Now()
		read := runHotSession(t, n, 60)
		took = append(took, proc.SelfCPU()-before)
		t.Logf("%d events, 60 late panes: CPU %v, wall %v, events read %d", n, took[len(took)-1].Round(time.Millisecond), time.Since(start).Round(time.Millisecond), read)
	}
	t.Logf("CPU time grew %.1f× for 4× the events (%s, GOMAXPROCS %d)", float64(took[1])/float64(took[0]), runtime.GOARCH, runtime.GOMAXPROCS(0))
}
