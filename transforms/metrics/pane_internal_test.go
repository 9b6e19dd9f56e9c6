package metrics

import (
	"testing"

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
			if got := pane(tt.pn, 7); got != tt.want {
				t.Errorf("pane(%+v) = %+v, want %+v", tt.pn, got, tt.want)
			}
		})
	}
}
