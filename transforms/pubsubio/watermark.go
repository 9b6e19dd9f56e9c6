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
	// updated is the wall-clock time of the last update, or of the
	// estimator's creation: the start of the time advanceAtMost credits.
	updated time.Time
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

// advanceAtMost sets the watermark to t, but when speed is positive
// advances it by at most speed times the wall-clock time since the last
// update (or the estimator's creation). The first estimate of a shard,
// from the minimum timestamp, is not held back. A shard's estimator lives
// for one part of the shard; the time between parts is not credited, so
// the watermark may move slower than speed allows, never faster.
func (e *watermarkEstimator) advanceAtMost(t, now time.Time, speed float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if speed > 0 && t.After(e.wm) && e.wm.After(mtime.MinTimestamp.ToTime()) {
		credit := time.Duration(speed * float64(now.Sub(e.updated)))
		if limit := e.wm.Add(max(credit, 0)); t.After(limit) {
			t = limit
		}
	}
	e.wm = t
	e.updated = now
}

var _ sdf.WatermarkEstimator = (*watermarkEstimator)(nil)

// estimateWatermark is the watermark of a shard after a read:
//
//   - the oldest timestamp among the messages the reader holds (this
//     part's, and in this worker those of the other shards' parts running
//     now), as the backlog is delivered roughly oldest first;
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
