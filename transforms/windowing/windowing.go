// Package windowing holds what Railyard's windowed aggregations (metrics
// and sessions) share: the windowing settings a streaming job sets on
// them, and the pane columns every row they fire carries.
package windowing

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"

	"github.com/railyard/railyard/schemas"
)

// PaneMode says what a later pane of a window holds.
type PaneMode int

const (
	// Accumulating panes hold all of the window's elements seen so far,
	// so the latest pane is the whole answer: what the *_speed tables and
	// their views need. The default.
	Accumulating PaneMode = iota
	// Discarding panes hold only the elements since the window's previous
	// pane.
	Discarding
)

func (m PaneMode) String() string {
	switch m {
	case Accumulating:
		return "Accumulating"
	case Discarding:
		return "Discarding"
	}
	return fmt.Sprintf("PaneMode(%d)", int(m))
}

// Settings are the windowing knobs of an aggregation. The zero Settings
// are the batch job's: Beam's default trigger, no allowed lateness, one
// on-time pane per window.
type Settings struct {
	// Trigger says when a window fires a pane; nil is Beam's default
	// trigger (once when the watermark passes the end of the window, then
	// once per late element within AllowedLateness).
	Trigger trigger.Trigger
	// AllowedLateness is how long after the end of a window its late
	// elements still revise it; the runner drops elements later than that.
	AllowedLateness time.Duration
	// Panes says what a later pane of a window holds.
	Panes PaneMode
	// ProcessedAt, when set, is every pane's processed_at, instead of the
	// wall clock at the time the pane is computed: for tests and golden
	// files.
	ProcessedAt time.Time
}

// Validate reports whether the settings can build a pipeline.
func (s Settings) Validate() error {
	if s.AllowedLateness < 0 {
		return fmt.Errorf("AllowedLateness is %v, it must not be negative", s.AllowedLateness)
	}
	if s.Panes != Accumulating && s.Panes != Discarding {
		return fmt.Errorf("unknown Panes %v", s.Panes)
	}
	return nil
}

// FiresOnce reports whether every window fires exactly one pane, on
// time: with Beam's default trigger and no allowed lateness, a window
// fires when the watermark passes its end, and expires at that moment.
// The pane of such a window is known in advance (OnTime), so an
// aggregation can use a lifted CombinePerKey, whose output loses the
// runner's pane (the Go SDK's combine builds its output without it).
func (s Settings) FiresOnce() bool {
	if s.AllowedLateness != 0 {
		return false
	}
	switch s.Trigger.(type) {
	case nil, *trigger.DefaultTrigger, trigger.DefaultTrigger:
		return true
	}
	return false
}

// FiresEarly reports whether t may fire a pane before the end of the
// window: anything but Beam's default trigger or AfterEndOfWindow without
// early firings (whose early firing is then nil or the default trigger,
// which fires at the end of the window).
func FiresEarly(t trigger.Trigger) bool {
	switch t := t.(type) {
	case nil, *trigger.DefaultTrigger, trigger.DefaultTrigger:
		return false
	case *trigger.AfterEndOfWindowTrigger:
		return FiresEarly(t.Early())
	}
	return true
}

// FixedStart is the start of the fixed window of size that holds ms, both
// in milliseconds (for ms before 1970 too).
func FixedStart(ms, size int64) int64 {
	return ms - ((ms%size)+size)%size
}

// Options turns the settings into WindowInto options.
func (s Settings) Options() []beam.WindowIntoOption {
	opts := []beam.WindowIntoOption{beam.AllowedLateness(s.AllowedLateness), beam.PanesAccumulate()}
	if s.Panes == Discarding {
		opts[1] = beam.PanesDiscard()
	}
	if s.Trigger != nil {
		opts = append(opts, beam.Trigger(s.Trigger))
	}
	return opts
}

// ProcessedAtMicros is ProcessedAt in microseconds, 0 for the zero time
// (which Pane reads as the wall clock).
func (s Settings) ProcessedAtMicros() int64 {
	if s.ProcessedAt.IsZero() {
		return 0
	}
	return s.ProcessedAt.UnixMicro()
}

// OnTime is the pane of a window that fires once (see FiresOnce).
var OnTime = typex.PaneInfo{Timing: typex.PaneOnTime, IsFirst: true, IsLast: true}

// Pane is the pane columns of a row fired in pane pn and processed at
// processedMicros (0 means now). A pane the runner did not describe is
// UNKNOWN: the zero PaneInfo, which claims index 0 without being the
// first pane (Prism v2.77.0 gives it to merged session windows, and the
// SDK's combine to everything), or the "no firing" pane.
func Pane(pn typex.PaneInfo, processedMicros int64) schemas.Pane {
	timing := "UNKNOWN"
	switch {
	case pn.Index == 0 && !pn.IsFirst: // not a pane at all
	case pn.Timing == typex.PaneEarly:
		timing = "EARLY"
	case pn.Timing == typex.PaneOnTime:
		timing = "ON_TIME"
	case pn.Timing == typex.PaneLate:
		timing = "LATE"
	}
	if processedMicros == 0 {
		processedMicros = time.Now().UnixMicro()
	}
	return schemas.Pane{PaneIndex: pn.Index, PaneTiming: timing, ProcessedAt: processedMicros}
}
