package sessions

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
)

func init() {
	register.Function1x3(unstamp)
}

// stampedDelta is a sessionDelta of Key as deltaFn or onTimeMarkerFn
// emit it, stamped at Stamp (Unix milliseconds).
type stampedDelta struct {
	Stamp int64
	Key   string
	D     sessionDelta
}

func unstamp(sd stampedDelta) (beam.EventTime, string, sessionDelta) {
	return mtime.FromMilliseconds(sd.Stamp), sd.Key, sd.D
}

// TestCumulate feeds cumulateFn deltas and markers in a given order (each
// a millisecond after the previous, so the runner keeps it) and checks the
// rows it fires.
func TestCumulate(t *testing.T) {
	const gapSeconds = 600
	processed := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixMicro()
	min := func(m int64) int64 { return m * 60_000_000 }
	// pane is a delta of window [ws, we) minutes whose events span s to e
	// minutes.
	pane := func(timing typex.PaneTiming, ws, we, s, e, events int64, sources ...string) sessionDelta {
		return sessionDelta{WStart: min(ws), WEnd: min(we), Timing: int32(timing), Events: events, Start: min(s), End: min(e), Sources: sources}
	}
	marker := func(ws, we, events int64) sessionDelta {
		return sessionDelta{WStart: min(ws), WEnd: min(we), OnTimeEvents: events}
	}
	unknown := func(d sessionDelta) sessionDelta { d.Timing = timingUnknown; return d }
	row := func(index int64, timing string, s, e, events int64, sources ...string) schemas.SessionSpeed {
		return schemas.SessionSpeed{
			Session: schemas.Session{SessionStart: min(s), SessionEnd: min(e), UserID: "u1", DurationSeconds: float64(min(e)-min(s)) / 1e6,
				Events: events, Sources: sources, GapSeconds: gapSeconds},
			Pane: schemas.Pane{PaneIndex: index, PaneTiming: timing, ProcessedAt: processed},
		}
	}
	tests := []struct {
		name string
		in   []sessionDelta
		want []schemas.SessionSpeed
	}{
		{
			name: "adds each pane to the session's total",
			in:   []sessionDelta{pane(typex.PaneEarly, 0, 12, 0, 2, 2, "web"), pane(typex.PaneEarly, 0, 15, 5, 5, 1, "ios"), pane(typex.PaneOnTime, 0, 18, 8, 8, 1, "web")},
			want: []schemas.SessionSpeed{row(0, "EARLY", 0, 2, 2, "web"), row(1, "EARLY", 0, 5, 3, "ios", "web"), row(2, "ON_TIME", 0, 8, 4, "ios", "web")},
		},
		{
			name: "fires the ON_TIME row from the marker when the on-time pane was empty",
			in:   []sessionDelta{pane(typex.PaneEarly, 0, 12, 0, 2, 2, "web"), marker(0, 12, 2), pane(typex.PaneLate, 1, 11, 1, 1, 1, "ios")},
			want: []schemas.SessionSpeed{row(0, "EARLY", 0, 2, 2, "web"), row(1, "ON_TIME", 0, 2, 2, "web"), row(2, "LATE", 0, 2, 3, "ios", "web")},
		},
		{
			name: "makes the pane that completes a marker that came first the ON_TIME row",
			in:   []sessionDelta{marker(0, 12, 3), pane(typex.PaneEarly, 0, 11, 0, 1, 2, "web"), pane(typex.PaneEarly, 0, 12, 2, 2, 1, "web")},
			want: []schemas.SessionSpeed{row(0, "EARLY", 0, 1, 2, "web"), row(1, "ON_TIME", 0, 2, 3, "web")},
		},
		{
			name: "ignores a marker after the session fired on time",
			in:   []sessionDelta{pane(typex.PaneOnTime, 0, 12, 0, 2, 2, "web"), marker(0, 12, 2)},
			want: []schemas.SessionSpeed{row(0, "ON_TIME", 0, 2, 2, "web")},
		},
		{
			name: "makes a pane after an on-time row late, whatever the runner says",
			in:   []sessionDelta{pane(typex.PaneOnTime, 0, 12, 0, 2, 2, "web"), pane(typex.PaneOnTime, 11, 21, 11, 11, 1, "ios")},
			want: []schemas.SessionSpeed{row(0, "ON_TIME", 0, 2, 2, "web"), row(1, "LATE", 0, 11, 3, "ios", "web")},
		},
		{
			name: "keeps the UNKNOWN of a pane the runner did not describe, and what follows it late",
			in:   []sessionDelta{unknown(pane(0, 0, 15, 0, 5, 2, "web")), pane(typex.PaneOnTime, 12, 22, 12, 12, 1, "ios")},
			want: []schemas.SessionSpeed{row(0, "UNKNOWN", 0, 5, 2, "web"), row(1, "LATE", 0, 12, 3, "ios", "web")},
		},
		{
			name: "merges the sessions a pane bridges, with the most rows of them",
			in: []sessionDelta{
				pane(typex.PaneEarly, 0, 10, 0, 0, 1, "web"), pane(typex.PaneEarly, 0, 10, 0, 0, 1, "web"),
				pane(typex.PaneEarly, 20, 30, 20, 20, 1, "ios"), pane(typex.PaneEarly, 5, 25, 5, 15, 2, "android"),
			},
			want: []schemas.SessionSpeed{
				row(0, "EARLY", 0, 0, 1, "web"), row(1, "EARLY", 0, 0, 2, "web"), row(0, "EARLY", 20, 20, 1, "ios"),
				row(2, "EARLY", 0, 20, 5, "android", "ios", "web"),
			},
		},
		{
			name: "keeps windows that only touch apart",
			in:   []sessionDelta{pane(typex.PaneOnTime, 0, 10, 0, 0, 1, "web"), pane(typex.PaneOnTime, 10, 20, 10, 10, 1, "web")},
			want: []schemas.SessionSpeed{row(0, "ON_TIME", 0, 0, 1, "web"), row(0, "ON_TIME", 10, 10, 1, "web")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := stateStamp("20513:u1", 0, 600_000, 120_000, 0).Milliseconds()
			var in []stampedDelta
			for i, d := range tt.in {
				in = append(in, stampedDelta{Stamp: base + int64(i), Key: "20513:u1", D: d})
			}
			p, s, col := ptest.CreateList(in)
			stamped := beam.WindowInto(s, window.NewFixedWindows(stateWindow), beam.ParDo(s, unstamp, col))
			rows := beam.ParDo(s, newCumulateFn(gapSeconds, processed), stamped)
			passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), rows), toAny(tt.want)...)
			ptest.RunAndValidate(t, p)
		})
	}
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// TestStateStamp checks that a day's deltas land in one state window that
// opens after its sessions can take no more late events.
func TestStateStamp(t *testing.T) {
	const gap, lateness = 30 * 60_000, 2 * 60_000 // milliseconds
	day := Day(time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC).UnixMicro())
	key := userDayKey("u1", day)
	midnight := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	first := stateStamp(key, 0, gap, lateness, 0).ToTime()
	if want := midnight.Add(time.Hour); !first.Equal(want) {
		t.Errorf("pane 0 stamped %v, want %v (the first hour after midnight + gap + lateness)", first, want)
	}
	if got := stateStamp(key, 0, gap, lateness, 7).ToTime(); !got.Equal(first.Add(7 * time.Millisecond)) {
		t.Errorf("pane 7 stamped %v, want 7 ms after pane 0", got)
	}
	if got := stateStamp(key, 0, gap, lateness, 1<<40).ToTime(); !got.Equal(first.Add(stateWindow - time.Millisecond)) {
		t.Errorf("a huge pane index stamped %v, want the last millisecond of the state window", got)
	}
	// Exactly on an hour boundary, the next hour.
	if got := stateStamp(key, 0, 60*60_000, 0, 0).ToTime(); !got.Equal(midnight.Add(2 * time.Hour)) {
		t.Errorf("gap 1h: stamped %v, want %v", got, midnight.Add(2*time.Hour))
	}
	if got := stateStamp("u1", midnight.Add(-time.Hour).UnixMicro(), gap, lateness, 0).ToTime(); !got.Equal(first) {
		t.Errorf("a key without a day: stamped %v, want %v from its window's day", got, first)
	}
}

func init() {
	register.Function1x2(stampAtEventTime)
}

func stampAtEventTime(ev schemas.Event) (beam.EventTime, schemas.Event) {
	return mtime.FromMilliseconds(ev.EventTime / 1000), ev
}

// TestOnTimeMarkers runs the accumulating path with the on-time markers
// (which it adds when the trigger fires early, something Prism v2.77.0
// refuses on session windows) under a trigger without early firings:
// every on-time pane then holds its session's on-time events, so the
// markers must change no row.
func TestOnTimeMarkers(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var in []schemas.Event
	for i, at := range []time.Duration{0, time.Minute, 3 * time.Minute, 40 * time.Minute, 41 * time.Minute, 23*time.Hour + 59*time.Minute} {
		for _, user := range []string{"u1", "u2"} {
			in = append(in, schemas.Event{EventID: fmt.Sprint(user, i), UserID: &user, EventTime: t0.Add(at).UnixMicro(), Source: []string{"web", "ios"}[i%2]})
		}
	}
	cfg := Config{Gap: 10 * time.Minute, Trigger: trigger.AfterEndOfWindow().LateFiring(trigger.Always()), AllowedLateness: time.Hour, ProcessedAt: t0}
	p, s, col := ptest.CreateList(in)
	events := beam.ParDo(s, stampAtEventTime, col)
	rows := func(s beam.Scope, markers bool) beam.PCollection {
		discarding := cfg.settings()
		discarding.Panes = Discarding
		keyed := beam.ParDo(s, &keyByUserFn{}, beam.WindowInto(s, window.NewSessions(cfg.gap()), events, discarding.Options()...))
		return accumulatingPerUser(s, events, []beam.PCollection{beam.GroupByKey(s, keyed)}, cfg, markers)
	}
	with, without := rows(s.Scope("With"), true), rows(s.Scope("Without"), false)
	passert.Equals(s, with, without)
	passert.Count(s, with, "rows", 2*3) // per user: two sessions on 1 March, one on the 2nd
	ptest.RunAndValidate(t, p)
}
