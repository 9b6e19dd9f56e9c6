package config

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas/metricnames"
)

// LogCounters logs, at info level, one line per step of a finished job
// with the Railyard counters (namespace railyard) that step reported:
// the counts only, never a payload. res may be nil (nothing is logged).
func LogCounters(ctx context.Context, job, runID string, res beam.PipelineResult) {
	if res == nil {
		return
	}
	byStep := map[string]map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace != metricnames.Namespace {
			continue
		}
		if byStep[c.Key.Step] == nil {
			byStep[c.Key.Step] = map[string]int64{}
		}
		byStep[c.Key.Step][c.Key.Name] += c.Result()
	}
	for _, step := range slices.Sorted(maps.Keys(byStep)) {
		attrs := []any{"job", job, "run_id", runID, "step", step}
		for _, name := range slices.Sorted(maps.Keys(byStep[step])) {
			attrs = append(attrs, name, byStep[step][name])
		}
		slog.InfoContext(ctx, "job counters", attrs...)
	}
}
