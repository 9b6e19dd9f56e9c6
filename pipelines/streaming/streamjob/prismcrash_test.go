package streamjob

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/periodic"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
)

// Prism v2.77.0 fails a job when a window's state is collected while an
// early-firing (processing-time) timer is still pending for it (see
// DESIGN.md and Config.prismSafe). This test reproduces the condition:
// a stream of 5,000 elements a second into 5-second windows with the
// streaming job's early-firing trigger, run twice, each in a process of
// its own (the failure may take the process down):
//
//   - with no allowed lateness, every window is collected the moment the
//     watermark passes its end, while the timer of its last early firing
//     is pending: Prism fails the job (measured: 8 of 8 runs);
//   - with the job's configuration (the shortest lateness Validate
//     accepts on Prism, and the shortest quiet tail before the input ends
//     that it accepts for --stop_after_idle), windows are collected
//     throughout the run and the job must succeed.
//
// The first case documents the bug: if a Prism release fixes it, the test
// says so in its log. The second is the guarantee.

const crashCaseEnv = "RAILYARD_PRISM_CRASH_CASE"

func init() {
	register.DoFn3x0[beam.EventTime, []byte, func(beam.EventTime, int)](&fanOutFn{})
	register.Emitter2[beam.EventTime, int]()
}

// fanOutFn turns each tick into PerTick elements over 10 keys, until
// Until; later ticks only move the watermark on.
type fanOutFn struct {
	PerTick int
	Until   int64 // Unix milliseconds
}

func (fn *fanOutFn) ProcessElement(ts beam.EventTime, _ []byte, emit func(beam.EventTime, int)) {
	if int64(ts) > fn.Until {
		return
	}
	for i := range fn.PerTick {
		emit(ts, i%10)
	}
}

// runCrashCase runs the pipeline of one case in this process.
func runCrashCase(lateness, run, tail time.Duration) error {
	cfg := DefaultConfig()
	cfg.EarlyFiring = time.Second
	cfg.AllowedLateness = lateness
	p, s := beam.NewPipelineWithRoot()
	start := time.Now()
	ticks := periodic.Impulse(s, start, start.Add(run+tail), 10*time.Millisecond, false)
	elems := beam.ParDo(s, &fanOutFn{PerTick: 50, Until: int64(mtime.FromTime(start.Add(run)))}, ticks)
	windowed := beam.WindowInto(s, window.NewFixedWindows(5*time.Second), elems,
		beam.Trigger(cfg.metricsTrigger()), beam.AllowedLateness(lateness), beam.PanesAccumulate())
	stats.Count(s, windowed)
	_, err := ptest.RunWithMetrics(p)
	return err
}

func TestPrismEarlyFiringCrash(t *testing.T) {
	switch os.Getenv(crashCaseEnv) {
	case "unsafe":
		if err := runCrashCase(0, 10*time.Second, 0); err != nil {
			t.Fatalf("job failed: %v", err)
		}
		return
	case "safe":
		if err := runCrashCase(minPrismLateness, 45*time.Second, minPrismIdleFirings*time.Second); err != nil {
			t.Fatalf("job failed: %v", err)
		}
		return
	}
	if testing.Short() {
		t.Skip("runs two streaming pipelines for about a minute")
	}
	safe := DefaultConfig()
	safe.AllowedLateness = minPrismLateness
	safe.EarlyFiring = time.Second
	if err := safe.prismSafe(); err != nil {
		t.Fatalf("the safe case is not a configuration the job accepts: %v", err)
	}
	unsafe := safe
	unsafe.AllowedLateness = 0
	if unsafe.prismSafe() == nil {
		t.Fatal("the job accepts the configuration that crashes Prism")
	}

	bin := caseBinary(t)
	runCase := func(name string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-test.run=^TestPrismEarlyFiringCrash$", "-test.v")
		cmd.Env = append(os.Environ(), crashCaseEnv+"="+name)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Run("no allowed lateness crashes Prism", func(t *testing.T) {
		out, err := runCase("unsafe")
		if err == nil {
			t.Logf("the job survived: this Prism may have fixed the crash; Config.prismSafe could be relaxed")
			return
		}
		if !strings.Contains(out, "nil map") {
			t.Logf("the job failed, but not with the known panic:\n%s", tail(out, 20))
		}
	})
	t.Run("the job's configuration does not", func(t *testing.T) {
		out, err := runCase("safe")
		if err != nil {
			t.Fatalf("the job failed with windows expiring under the job's configuration: %v\n%s", err, tail(out, 30))
		}
	})
}

// caseBinary returns the test binary the cases run in: this one, or, under
// the race detector, this package's tests built without it. The race
// detector slows the pipeline several times over on 2 cores, so the
// 5,000 elements a second would not be the load the case is about; and
// it reports races inside Beam's own SDK harness, which are not what the
// case tests.
func caseBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return os.Args[0]
	}
	bin := filepath.Join(t.TempDir(), "streamjob.test")
	out, err := exec.Command("go", "test", "-c", "-o", bin, "github.com/railyard/railyard/pipelines/streaming/streamjob").CombinedOutput()
	if err != nil {
		t.Fatalf("go test -c ./pipelines/streaming/streamjob: %v\n%s", err, out)
	}
	return bin
}

// tail returns the last n lines of s, without Prism's log lines.
func tail(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "time=") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "\n")
}
