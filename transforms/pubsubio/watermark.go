package pubsubio

import (
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
)

// watermarkEstimator is the manual watermark estimator of one shard: the
// reading DoFn sets it after each read with UpdateWatermark, as with
// sdf.ManualWatermarkEstimator. Unlike that one it is safe for concurrent
// use: the SDK harness reads it from another goroutine when the runner
// asks for a split while the shard is pulling (Prism does, when a bundle
// makes no progress).
//
// Its state, carried across checkpoints, is the watermark in Unix
// milliseconds.
type watermarkEstimator struct {
	mu sync.Mutex
	wm time.Time
}

// CurrentWatermark returns the shard's watermark.
func (e *watermarkEstimator) CurrentWatermark() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wm
}

// UpdateWatermark sets the shard's watermark.
func (e *watermarkEstimator) UpdateWatermark(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wm = t
}

var _ sdf.WatermarkEstimator = (*watermarkEstimator)(nil)

// estimateWatermark is the watermark of a shard after a read:
//
//   - the oldest timestamp among the messages the reader holds
//     unacknowledged (this read's, and in this worker other bundles' not
//     yet finalized), as the backlog is delivered roughly oldest first;
//   - when there are none (the subscription is idle), now minus lag;
//   - never above now minus lag, so that a message stamped in the future
//     cannot carry the watermark past the present.
//
// oldest is the zero time when nothing is held.
func estimateWatermark(oldest, now time.Time, lag time.Duration) time.Time {
	limit := now.Add(-lag)
	if oldest.IsZero() || oldest.After(limit) {
		return limit
	}
	return oldest
}

// endOfTime is the watermark of an ended shard.
var endOfTime = mtime.MaxTimestamp.ToTime()
