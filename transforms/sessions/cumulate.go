package sessions

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/windowing"
)

// Accumulating session panes whose cost does not grow with the session.
//
// An accumulating GroupByKey hands every pane of a session all of its
// events so far: a user who never pauses (a bot, a device reporting every
// second) has one session a day, and with early panes every second each
// pane re-reads the day so far, O(n²) a day on one worker. Instead,
// accumulatingPerUser groups with discarding panes, so each pane holds
// only the events since the session's previous pane; deltaFn, which still
// sees the runner's pane and window, reduces them to a sessionDelta; and
// cumulateFn, a stateful DoFn keyed by user and day, keeps the day's
// sessions of the user in state and merges each delta into them. A pane
// thus costs O(its own events) plus the user's sessions of the day.
//
// Session windows merge, so the state cannot be keyed by window.
// cumulateFn keeps each session with the union of the runner's windows
// its deltas came in, and merges a delta into every stored session whose
// window intersects the delta's (start < other end, both ways: windows
// that only touch stay apart, as the batch layer's rule and Beam Java's
// merging keep them). A discarding pane holds each event once, so the
// totals are exact whatever order the deltas arrive in; stored sessions
// are pairwise disjoint, so one pass merges every one a delta bridges.
// Where a runner fails to merge a late event's window with the fired
// session it extends (Prism v2.77.0 fires it as a session of its own),
// the intersection merges them here.
//
// The rows are those of an accumulating GroupByKey: one per pane, totals
// that only grow, with these differences:
//   - The pane index is cumulateFn's own count of the session's rows (the
//     most of the sessions merged), so it grows with every row of a
//     session start; runners restart or lose the index of merged windows.
//   - The timing is the runner's, except that a pane after any part of
//     the session fired on time (or UNKNOWN, which a runner gives merged
//     windows it lost the pane of) is LATE: once a session was complete,
//     what changes it is a late revision.
//   - With early firings, a discarding on-time pane with no new events
//     does not fire (the Go SDK asks FIRE_IF_NONEMPTY), so a count of the
//     session's on-time events, fired once when the watermark passes its
//     end (an on-time marker, Beam's default trigger over the same
//     session windows), tells cumulateFn when its total holds every
//     on-time event: that row is the ON_TIME row, fired again from the
//     marker if need be. Without early firings the first pane is the
//     on-time one and no marker is needed.
//
// The state must outlive the day's late panes. A session of day D ends by
// midnight plus the gap, and takes late events for the allowed lateness
// after; Prism v2.77.0 drops a stateful step's state when the watermark
// passes the end of its window. So the deltas of day D are stamped at the
// first hour boundary after midnight + gap + allowed lateness, plus their
// pane index in milliseconds (to keep a session's panes in firing order,
// as metrics does), and cumulateFn runs in the one-hour window of that
// instant: the runner drops the state an hour after the day can take no
// more late events. The rows are stamped back at the end of their
// session's window.
//
// A stored session is read, merged and written back, so one key must run
// in one bundle at a time (on Prism, with prism_disable_sdf_split, as the
// streaming job runs).

func init() {
	register.DoFn5x4[context.Context, typex.PaneInfo, typex.Window, string, func(*sessionInput) bool, beam.EventTime, string, sessionDelta, error](&deltaFn{})
	register.Function2x0(markerKey)
	register.Emitter1[string]()
	register.DoFn3x4[typex.Window, string, int, beam.EventTime, string, sessionDelta, error](&onTimeMarkerFn{})
	register.DoFn4x1[state.Provider, string, sessionDelta, func(beam.EventTime, schemas.SessionSpeed), error](&cumulateFn{})
	register.Emitter2[beam.EventTime, schemas.SessionSpeed]()
}

// timingUnknown is the timing of a pane the runner did not describe.
const timingUnknown int32 = -1

// stateWindow is the size of the fixed windows cumulateFn keeps a day's
// sessions in.
const stateWindow = time.Hour

// sessionDelta is one discarding pane of a session window, or its on-time
// marker. Times are in microseconds.
type sessionDelta struct {
	// WStart and WEnd are the runner's window of the pane.
	WStart, WEnd int64
	// OnTimeEvents, in an on-time marker, is how many events the session
	// window holds when the watermark passes its end; 0 in a pane.
	OnTimeEvents int64
	// Timing is the typex.PaneTiming of the runner's pane, or
	// timingUnknown.
	Timing int32
	// Events, Start, End and Sources (sorted) are what the pane adds.
	Events     int64
	Start, End int64
	Sources    []string
}

// deltaFn reduces a discarding pane of a session to a sessionDelta,
// stamped after the day's last late pane.
type deltaFn struct {
	GapMillis, AllowedLatenessMillis int64
}

func (fn *deltaFn) ProcessElement(ctx context.Context, pn typex.PaneInfo, w typex.Window, key string, inputs func(*sessionInput) bool) (beam.EventTime, string, sessionDelta, error) {
	d, err := windowDelta(w)
	if err != nil {
		return 0, "", sessionDelta{}, err
	}
	total := paneTotal(ctx, inputs)
	d.Events, d.Start, d.End, d.Sources = total.Events, total.Start, total.End, total.Sources
	d.Timing = int32(pn.Timing)
	if pn.Index == 0 && !pn.IsFirst { // not a pane at all (see windowing.Pane)
		d.Timing = timingUnknown
	}
	return stateStamp(key, d.WStart, fn.GapMillis, fn.AllowedLatenessMillis, pn.Index), key, d, nil
}

// windowDelta is an empty delta of the session window w.
func windowDelta(w typex.Window) (sessionDelta, error) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return sessionDelta{}, fmt.Errorf("sessions: window %v is a %T, want a session window", w, w)
	}
	return sessionDelta{WStart: iw.Start.Milliseconds() * 1000, WEnd: iw.End.Milliseconds() * 1000}, nil
}

// stateStamp is the timestamp of the delta of pane index i of key, a
// userDayKey: i milliseconds after the first hour boundary after the
// key's day has ended and its sessions can take no more late events
// (midnight + gap + allowed lateness), capped within that hour. A key
// without a day takes the day of its window's start.
func stateStamp(key string, windowStartMicros, gapMillis, latenessMillis, i int64) beam.EventTime {
	const dayMillis, hourMillis = int64(24 * time.Hour / time.Millisecond), int64(stateWindow / time.Millisecond)
	day, _, ok := strings.Cut(key, ":")
	d, err := strconv.ParseInt(day, 10, 64)
	if !ok || err != nil {
		d = Day(windowStartMicros)
	}
	last := (d+1)*dayMillis + gapMillis + latenessMillis
	start := windowing.FixedStart(last, hourMillis) + hourMillis
	return mtime.FromMilliseconds(start + min(max(i, 0), hourMillis-1))
}

// markerKey emits the key of an event with a user_id (keyByUserFn counts
// those without).
func markerKey(ev schemas.Event, emit func(string)) {
	if ev.UserID != nil {
		emit(eventKey(ev))
	}
}

// onTimeMarkerFn turns the count of a session's on-time events into its
// on-time marker, stamped as its deltas are.
type onTimeMarkerFn struct {
	GapMillis, AllowedLatenessMillis int64
}

func (fn *onTimeMarkerFn) ProcessElement(w typex.Window, key string, events int) (beam.EventTime, string, sessionDelta, error) {
	d, err := windowDelta(w)
	if err != nil {
		return 0, "", sessionDelta{}, err
	}
	d.OnTimeEvents = int64(events)
	return stateStamp(key, d.WStart, fn.GapMillis, fn.AllowedLatenessMillis, 0), key, d, nil
}

// storedSession is one session of a user's day in cumulateFn's state.
// Times are in microseconds.
type storedSession struct {
	// WStart and WEnd span the runner's windows of its deltas.
	WStart, WEnd int64
	Events       int64
	Start, End   int64
	Sources      []string // sorted
	// Rows is how many rows the session has fired: the next pane index.
	Rows int64
	// Timing is that of the latest row (typex.PaneTiming or
	// timingUnknown).
	Timing int32
	// OnTimeEvents is the on-time marker's count while the ON_TIME row
	// waits for panes that bring the total up to it; 0 otherwise.
	OnTimeEvents int64
}

// daySessions is the state of a user's day: its sessions, pairwise
// disjoint.
type daySessions struct {
	Sessions []storedSession
}

// closed reports whether s has fired a row on or after the end of its
// window: whatever changes it after that is a late revision.
func (s storedSession) closed() bool {
	return s.Rows > 0 && s.Timing != int32(typex.PaneEarly)
}

// cumulateFn merges each sessionDelta of a user's day into the day's
// sessions in state and fires the accumulating row of the session it
// lands in (see accumulatingPerUser).
type cumulateFn struct {
	GapSeconds int64
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64

	Day state.Value[daySessions]
}

func newCumulateFn(gapSeconds, processedAtMicros int64) *cumulateFn {
	return &cumulateFn{GapSeconds: gapSeconds, ProcessedAtMicros: processedAtMicros, Day: state.MakeValueState[daySessions]("day")}
}

func (fn *cumulateFn) ProcessElement(sp state.Provider, key string, d sessionDelta, emit func(beam.EventTime, schemas.SessionSpeed)) error {
	day, _, err := fn.Day.Read(sp)
	if err != nil {
		return fmt.Errorf("sessions: reading the day's sessions: %w", err)
	}
	// Take out every stored session the delta's window intersects.
	var parts, rest []storedSession
	for _, s := range day.Sessions {
		if s.WStart < d.WEnd && d.WStart < s.WEnd {
			parts = append(parts, s)
		} else {
			rest = append(rest, s)
		}
	}
	merged := storedSession{WStart: d.WStart, WEnd: d.WEnd, Timing: int32(typex.PaneEarly)}
	for _, p := range parts {
		merged = mergeStored(merged, p)
	}
	closed := merged.closed() // if any part is (see mergeStored)
	fire := false
	timing := typex.PaneTiming(d.Timing)
	switch {
	case d.OnTimeEvents > 0:
		switch {
		case closed:
		case merged.Rows > 0 && merged.Events >= d.OnTimeEvents:
			// The latest row holds every on-time event: fire it again,
			// on time.
			fire, timing = true, typex.PaneOnTime
		default:
			merged.OnTimeEvents = max(merged.OnTimeEvents, d.OnTimeEvents)
		}
	default:
		merged = mergeStored(merged, storedSession{WStart: d.WStart, WEnd: d.WEnd, Events: d.Events, Start: d.Start, End: d.End, Sources: d.Sources})
		fire = true
		switch {
		case closed && d.Timing != int32(typex.PaneLate):
			timing = typex.PaneLate
		case d.Timing == int32(typex.PaneEarly) && merged.OnTimeEvents > 0 && merged.Events >= merged.OnTimeEvents:
			timing = typex.PaneOnTime // the marker came first; this pane completes it
		}
	}
	var row schemas.SessionSpeed
	if fire {
		pn := typex.PaneInfo{Timing: timing, IsFirst: merged.Rows == 0, Index: merged.Rows}
		p := windowing.Pane(pn, fn.ProcessedAtMicros)
		merged.Timing = int32(timing)
		if d.OnTimeEvents == 0 && d.Timing == timingUnknown && !closed {
			p.PaneTiming, merged.Timing = "UNKNOWN", timingUnknown
		}
		merged.Rows++
		if merged.Timing != int32(typex.PaneEarly) {
			merged.OnTimeEvents = 0
		}
		total := sessionTotal{Events: merged.Events, Start: merged.Start, End: merged.End, Sources: merged.Sources}
		row = sessionRow(userOfKey(key), total, fn.GapSeconds, p)
	}
	day.Sessions = append(rest, merged)
	if err := fn.Day.Write(sp, day); err != nil {
		return fmt.Errorf("sessions: writing the day's sessions: %w", err)
	}
	if fire {
		emit(mtime.FromMilliseconds(merged.WEnd/1000).Subtract(time.Millisecond), row)
	}
	return nil
}

// mergeStored is one session of a and b: the union of their windows,
// events and sources, the most rows and the larger pending on-time count;
// it is closed if either is.
func mergeStored(a, b storedSession) storedSession {
	switch {
	case a.Rows == 0:
		a.Timing = b.Timing
	case b.Rows == 0:
	case b.closed() && !a.closed():
		a.Timing = b.Timing
	}
	a.OnTimeEvents = max(a.OnTimeEvents, b.OnTimeEvents)
	a.WStart, a.WEnd = min(a.WStart, b.WStart), max(a.WEnd, b.WEnd)
	a.Rows = max(a.Rows, b.Rows)
	switch {
	case b.Events == 0:
	case a.Events == 0:
		a.Start, a.End = b.Start, b.End
	default:
		a.Start, a.End = min(a.Start, b.Start), max(a.End, b.End)
	}
	a.Events += b.Events
	a.Sources = unionSorted(a.Sources, b.Sources)
	return a
}

// unionSorted is the sorted union of two sorted lists, without repeats.
func unionSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// accumulatingPerUser is PerUser with accumulating panes, at a cost per
// pane that does not grow with the session (see the comment at the top
// of this file). events are the input of PerUser; grouped, the
// discarding groupings of its panes, keyed by userDayKey; markers says
// whether the on-time markers are needed (the trigger fires early).
func accumulatingPerUser(s beam.Scope, events beam.PCollection, grouped []beam.PCollection, cfg Config, markers bool) beam.PCollection {
	gapMillis, lateness := cfg.gap().Milliseconds(), cfg.AllowedLateness.Milliseconds()
	parts := make([]beam.PCollection, 0, len(grouped)+1)
	for _, g := range grouped {
		parts = append(parts, beam.ParDo(s, &deltaFn{GapMillis: gapMillis, AllowedLatenessMillis: lateness}, g))
	}
	if markers {
		// The on-time marker: Beam's default trigger without lateness
		// fires each session once, with the events that were not late.
		onTime := beam.WindowInto(s, window.NewSessions(cfg.gap()), events)
		counts := stats.Count(s, beam.ParDo(s, markerKey, onTime))
		parts = append(parts, beam.ParDo(s, &onTimeMarkerFn{GapMillis: gapMillis, AllowedLatenessMillis: lateness}, counts))
	}
	all := parts[0]
	if len(parts) > 1 {
		all = beam.Flatten(s, parts...)
	}
	stamped := beam.WindowInto(s, window.NewFixedWindows(stateWindow), all)
	rows := beam.ParDo(s, newCumulateFn(int64(cfg.gap()/time.Second), cfg.settings().ProcessedAtMicros()), stamped)
	return beam.WindowInto(s, window.NewGlobalWindows(), rows)
}
