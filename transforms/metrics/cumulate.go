package metrics

import (
	"context"
	"fmt"
	"slices"
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

// Accumulating panes whose cost does not grow with the window.
//
// An accumulating GroupByKey hands every pane all of the window's events
// so far: a key with n events in a minute and early panes every second
// costs O(n) per pane, O(n²) per minute, and the runner keeps resending
// them. Instead, accumulatingPerMinute groups with discarding panes, so
// each pane holds only the events since the previous one; deltaFn, which
// still sees the runner's pane, reduces them to a paneDelta; and
// cumulateFn, a stateful DoFn keyed by the window and the key, adds each
// delta to the window's running total in state and fires the accumulating
// row. The users seen so far are a set in state, looked up only for the
// users of the delta. A pane thus costs O(its own events), however many
// the window holds.
//
// The rows are those of an accumulating GroupByKey: one per pane, counts
// that only grow, pane indexes 0, 1, 2, … and the timing of the runner's
// pane, with two differences made up for:
//   - A discarding pane with no new events does not fire (Prism v2.77.0),
//     so a window whose on-time pane brings nothing new would have no
//     ON_TIME row. A count per key of the window's on-time events, fired
//     once when the watermark passes the end of the window (an on-time
//     marker), tells cumulateFn when its total holds every on-time event:
//     that row is the ON_TIME row, fired again from the marker if need be.
//   - The pane index is cumulateFn's own count of rows, since the
//     runner's counts only the panes that fired.
//
// (Prism v2.77.0 also re-fires an accumulating window's whole content as
// a LATE pane when the window expires; a discarding window has nothing
// new to fire then, so that repeat row is not written.)
//
// The state must outlive the window's late panes. Prism v2.77.0 gives a
// stateful stage no allowed lateness and drops its state when the
// watermark passes the end of the window (and its event-time timers in
// the global window stall a test stream), so the deltas and markers of
// the window [start, end) are stamped end + allowed lateness, after the
// window's last late pane, and cumulateFn runs in the one-minute window
// of that instant: the runner drops the state once the window can take
// no more late events, with no timer. The rows are stamped back at the
// end of their window, in their window.
//
// The deltas of a window must reach cumulateFn in the order the runner
// fired their panes: a late pane applied before the on-time one would
// make the first row LATE and leave the on-time events out of it.
// Nothing in the model orders elements of one key, and Prism v2.77.0
// hands a key's pending elements over in timestamp order, in any order
// among equal timestamps. So each delta is stamped its pane index in
// milliseconds after end + allowed lateness (capped to stay in that
// one-minute window): a later pane of the runner has a later timestamp.
// A runner may skip pane indexes (Prism does, for a processing-time
// firing with nothing new), which leaves the order intact.
//
// A running total is read, added to and written back, so one key must run
// in one bundle at a time, as the Beam model promises. Prism v2.77.0
// breaks that when it splits a slow bundle (it releases the keys of the
// residual while the primary still runs); run it with the experiment
// prism_disable_sdf_split, as the streaming job does.

func init() {
	register.DoFn4x4[typex.PaneInfo, typex.Window, minuteKey, func(*minuteInput) bool, beam.EventTime, windowKey, paneDelta, error](&deltaFn{})
	register.Function1x1(minuteKeyOf)
	register.DoFn3x4[typex.Window, minuteKey, int, beam.EventTime, windowKey, paneDelta, error](&onTimeMarkerFn{})
	register.DoFn5x1[context.Context, state.Provider, windowKey, paneDelta, func(beam.EventTime, schemas.MetricMinuteSpeed), error](&cumulateFn{})
	register.Emitter2[beam.EventTime, schemas.MetricMinuteSpeed]()
}

// windowKey is a minuteKey within one window [Start, End), in
// microseconds.
type windowKey struct {
	Start, End int64
	Key        minuteKey
}

// paneDelta is one discarding pane of a key and window: the runner's pane
// and what its events add; or the window's on-time marker.
type paneDelta struct {
	// OnTimeEvents, in an on-time marker, is how many events the window
	// of the key holds when the watermark passes its end; 0 in a pane.
	OnTimeEvents int64
	// Timing is the runner's typex.PaneTiming of the pane.
	Timing int32
	Events int64
	// Users are the distinct non-NULL user_ids of the pane, sorted.
	Users []string
	// Partials are the pane's value sum, exact (see addExact).
	Partials []float64
}

// deltaFn reduces a discarding pane of a key to a paneDelta, stamped
// after the window's last late pane.
type deltaFn struct {
	// AllowedLatenessMillis is the windows' allowed lateness.
	AllowedLatenessMillis int64
}

func (fn *deltaFn) ProcessElement(pn typex.PaneInfo, w typex.Window, key minuteKey, inputs func(*minuteInput) bool) (beam.EventTime, windowKey, paneDelta, error) {
	wk, ts, err := stateKey(w, key, fn.AllowedLatenessMillis)
	if err != nil {
		return 0, windowKey{}, paneDelta{}, err
	}
	ts = inPaneOrder(ts, pn.Index)
	d := paneDelta{Timing: int32(pn.Timing)}
	users := map[string]bool{}
	var in minuteInput
	for inputs(&in) {
		d.Events++
		if in.UserID != nil && !users[*in.UserID] {
			users[*in.UserID] = true
			d.Users = append(d.Users, *in.UserID)
		}
		if in.Value != nil {
			d.Partials = addExact(d.Partials, *in.Value)
		}
	}
	slices.Sort(d.Users)
	return ts, wk, d, nil
}

// stateKey is the key of cumulateFn for key in window w, and the instant
// its deltas are stamped with: the end of w plus the allowed lateness.
func stateKey(w typex.Window, key minuteKey, allowedLatenessMillis int64) (windowKey, beam.EventTime, error) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return windowKey{}, 0, fmt.Errorf("metrics: window %v is a %T, want a fixed window", w, w)
	}
	wk := windowKey{Start: iw.Start.Milliseconds() * 1000, End: iw.End.Milliseconds() * 1000, Key: key}
	return wk, iw.End.Add(time.Duration(allowedLatenessMillis) * time.Millisecond), nil
}

// inPaneOrder is the stamp of the delta of pane index i: i milliseconds
// after stamp, the end of its window plus the allowed lateness, but no
// later than the end of the one-minute window holding stamp, where
// cumulateFn keeps the window's state.
func inPaneOrder(stamp beam.EventTime, i int64) beam.EventTime {
	ms, size := stamp.Milliseconds(), WindowSize.Milliseconds()
	last := windowing.FixedStart(ms, size) + size - 1
	return mtime.FromMilliseconds(min(ms+max(i, 0), last))
}

func minuteKeyOf(ev schemas.Event) minuteKey {
	key, _ := keyByMinuteKey(ev)
	return key
}

// onTimeMarkerFn turns the count of a key's on-time events in a window
// into the window's on-time marker, stamped as its deltas are.
type onTimeMarkerFn struct {
	// AllowedLatenessMillis is the windows' allowed lateness.
	AllowedLatenessMillis int64
}

func (fn *onTimeMarkerFn) ProcessElement(w typex.Window, key minuteKey, events int) (beam.EventTime, windowKey, paneDelta, error) {
	wk, ts, err := stateKey(w, key, fn.AllowedLatenessMillis)
	if err != nil {
		return 0, windowKey{}, paneDelta{}, err
	}
	return ts, wk, paneDelta{OnTimeEvents: int64(events)}, nil
}

// runningTotal is the state of a key and window in cumulateFn: the
// figures of the rows fired so far and which rows they were.
type runningTotal struct {
	Events   int64
	Users    int64
	Partials []float64
	// Rows is how many rows have fired: the next row's pane index.
	Rows int64
	// Timing is the typex.PaneTiming of the latest row.
	Timing int32
	// OnTimeEvents is the on-time marker's count while the ON_TIME row
	// waits for panes that bring the total up to it; 0 otherwise.
	OnTimeEvents int64
}

// cumulateFn adds each paneDelta of a key and window to the running total
// in state and fires the accumulating row (see accumulatingPerMinute).
type cumulateFn struct {
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64

	Total state.Value[runningTotal]
	Users state.Set[string]
}

// newCumulateFn is a cumulateFn with its state named.
func newCumulateFn(processedAtMicros int64) *cumulateFn {
	return &cumulateFn{
		ProcessedAtMicros: processedAtMicros,
		Total:             state.MakeValueState[runningTotal]("total"),
		Users:             state.MakeSetState[string]("users"),
	}
}

func (fn *cumulateFn) ProcessElement(ctx context.Context, sp state.Provider, key windowKey, d paneDelta, emit func(beam.EventTime, schemas.MetricMinuteSpeed)) error {
	total, _, err := fn.Total.Read(sp)
	if err != nil {
		return fmt.Errorf("metrics: reading the running total: %w", err)
	}
	firedOnTime := total.Rows > 0 && typex.PaneTiming(total.Timing) != typex.PaneEarly
	if d.OnTimeEvents > 0 {
		switch {
		case firedOnTime:
			return nil
		case total.Events >= d.OnTimeEvents:
			// The latest row holds every on-time event: fire it again,
			// on time.
			return fn.fire(sp, key, total, typex.PaneOnTime, emit)
		}
		total.OnTimeEvents = d.OnTimeEvents
		if err := fn.Total.Write(sp, total); err != nil {
			return fmt.Errorf("metrics: writing the running total: %w", err)
		}
		return nil
	}
	// Look every user of the pane up before adding any: the SDK replays
	// the element's own writes on each lookup.
	var added []string
	for _, u := range d.Users {
		seen, err := fn.Users.Contains(sp, u)
		if err != nil {
			return fmt.Errorf("metrics: reading the users seen: %w", err)
		}
		if !seen {
			added = append(added, u)
		}
	}
	for _, u := range added {
		if err := fn.Users.Add(sp, u); err != nil {
			return fmt.Errorf("metrics: adding a user seen: %w", err)
		}
	}
	total.Events += d.Events
	total.Users += int64(len(added))
	for _, p := range d.Partials {
		total.Partials = addExact(total.Partials, p)
	}
	timing := typex.PaneTiming(d.Timing)
	switch {
	case firedOnTime && timing != typex.PaneLate:
		// The window fired on time already, from its marker: what
		// follows is late.
		timing = typex.PaneLate
	case timing == typex.PaneEarly && total.OnTimeEvents > 0 && total.Events >= total.OnTimeEvents:
		// The marker came first; this pane completes the on-time events.
		timing = typex.PaneOnTime
	}
	return fn.fire(sp, key, total, timing, emit)
}

// fire writes the total, as the next row of the window, to state and
// emits that row, stamped at the end of its window.
func (fn *cumulateFn) fire(sp state.Provider, key windowKey, total runningTotal, timing typex.PaneTiming, emit func(beam.EventTime, schemas.MetricMinuteSpeed)) error {
	pn := typex.PaneInfo{Timing: timing, IsFirst: total.Rows == 0, Index: total.Rows}
	total.Rows++
	total.Timing = int32(timing)
	if timing != typex.PaneEarly {
		total.OnTimeEvents = 0
	}
	if err := fn.Total.Write(sp, total); err != nil {
		return fmt.Errorf("metrics: writing the running total: %w", err)
	}
	sum := minuteTotal{Events: total.Events, Users: total.Users, ValueSum: roundExact(total.Partials)}
	emit(mtime.FromMilliseconds(key.End/1000).Subtract(time.Millisecond), row(key.Start, key.End, key.Key, sum, windowing.Pane(pn, fn.ProcessedAtMicros)))
	return nil
}

// accumulatingPerMinute is PerMinute with accumulating panes, at a cost
// per pane that does not grow with the window (see the comment at the
// top of this file). events are the input of PerMinute; keyed, the same
// keyed by minuteKey in windows of settings but with discarding panes.
func accumulatingPerMinute(s beam.Scope, events, keyed beam.PCollection, settings windowing.Settings) beam.PCollection {
	lateness := settings.AllowedLateness.Milliseconds()
	deltas := beam.ParDo(s, &deltaFn{AllowedLatenessMillis: lateness}, beam.GroupByKey(s, keyed))
	// The on-time marker: Beam's default trigger without lateness fires
	// each window once, with the events that were not late.
	onTime := beam.WindowInto(s, window.NewFixedWindows(WindowSize), events)
	counts := stats.Count(s, beam.ParDo(s, minuteKeyOf, onTime))
	markers := beam.ParDo(s, &onTimeMarkerFn{AllowedLatenessMillis: lateness}, counts)
	stamped := beam.WindowInto(s, window.NewFixedWindows(WindowSize), beam.Flatten(s, deltas, markers))
	rows := beam.ParDo(s, newCumulateFn(settings.ProcessedAtMicros()), stamped)
	return beam.WindowInto(s, window.NewFixedWindows(WindowSize), rows, settings.Options()...)
}
