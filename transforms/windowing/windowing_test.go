package windowing

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"

	"github.com/railyard/railyard/schemas"
)

func TestPane(t *testing.T) {
	tests := []struct {
		name string
		pn   typex.PaneInfo
		want schemas.Pane
	}{
		{name: "names an early pane", pn: typex.PaneInfo{Timing: typex.PaneEarly, IsFirst: true, NonSpeculativeIndex: -1}, want: schemas.Pane{PaneIndex: 0, PaneTiming: "EARLY", ProcessedAt: 7}},
		{name: "names an on-time pane", pn: typex.PaneInfo{Timing: typex.PaneOnTime, IsFirst: true, IsLast: true}, want: schemas.Pane{PaneIndex: 0, PaneTiming: "ON_TIME", ProcessedAt: 7}},
		{name: "names a late pane and keeps its index", pn: typex.PaneInfo{Timing: typex.PaneLate, Index: 3, NonSpeculativeIndex: 2}, want: schemas.Pane{PaneIndex: 3, PaneTiming: "LATE", ProcessedAt: 7}},
		{name: "calls the no-firing pane unknown", pn: typex.NoFiringPane(), want: schemas.Pane{PaneIndex: 0, PaneTiming: "UNKNOWN", ProcessedAt: 7}},
		{name: "calls the zero pane unknown, not early", pn: typex.PaneInfo{}, want: schemas.Pane{PaneIndex: 0, PaneTiming: "UNKNOWN", ProcessedAt: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Pane(tt.pn, 7); got != tt.want {
				t.Errorf("Pane(%+v) = %+v, want %+v", tt.pn, got, tt.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	if !(Settings{}).FiresOnce() {
		t.Error("the zero Settings must fire once: the batch job relies on it")
	}
	if (Settings{AllowedLateness: time.Minute}).FiresOnce() {
		t.Error("Settings with allowed lateness fire late panes, not once")
	}
	if err := (Settings{AllowedLateness: -time.Second}).Validate(); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("Validate(negative lateness) = %v", err)
	}
	if err := (Settings{Panes: 7}).Validate(); err == nil || !strings.Contains(err.Error(), "unknown Panes") {
		t.Errorf("Validate(Panes 7) = %v", err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if got := (Settings{ProcessedAt: at}).ProcessedAtMicros(); got != at.UnixMicro() {
		t.Errorf("ProcessedAtMicros = %d, want %d", got, at.UnixMicro())
	}
}

func TestFiresEarly(t *testing.T) {
	early := trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(time.Second))
	for _, tc := range []struct {
		trigger trigger.Trigger
		want    bool
	}{
		{nil, false},
		{trigger.Default(), false},
		{trigger.AfterEndOfWindow(), false},
		{trigger.AfterEndOfWindow().LateFiring(trigger.Always()), false},
		{trigger.AfterEndOfWindow().EarlyFiring(early).LateFiring(trigger.Always()), true},
		{early, true},
		{trigger.Always(), true},
	} {
		if got := FiresEarly(tc.trigger); got != tc.want {
			t.Errorf("FiresEarly(%v) = %v, want %v", tc.trigger, got, tc.want)
		}
	}
}

func TestFixedStart(t *testing.T) {
	for _, tc := range []struct{ ms, size, want int64 }{
		{0, 60_000, 0},
		{59_999, 60_000, 0},
		{60_000, 60_000, 60_000},
		{-1, 60_000, -60_000},
		{-60_000, 60_000, -60_000},
		{7_200_001, 3_600_000, 7_200_000},
	} {
		if got := FixedStart(tc.ms, tc.size); got != tc.want {
			t.Errorf("FixedStart(%d, %d) = %d, want %d", tc.ms, tc.size, got, tc.want)
		}
	}
}
