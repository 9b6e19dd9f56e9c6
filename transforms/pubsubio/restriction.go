package pubsubio

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
)

// shardRestriction is the restriction of the reading splittable DoFn: one
// pull loop over the subscription, from now on, for ever or until it has
// been idle for StopAfterIdle. Pub/Sub hands each message to one puller,
// so shards of one subscription share its messages without overlap; a
// shard has no offsets, and cannot be divided, only checkpointed.
type shardRestriction struct {
	// Index is the shard's number, 0 to Shards-1.
	Index int
	// IdleSince is when the shard's pulls started to come back empty, in
	// Unix milliseconds; 0 while messages flow. It travels with the
	// checkpoints, so the idle clock survives them.
	IdleSince int64
	// Ended marks a shard with nothing left to do: it stopped after being
	// idle, or the runner truncated it to drain the pipeline.
	Ended bool
}

// Claims the reading DoFn makes on its shard, in processing time.
type (
	// pullClaim asks to pull once more. It fails once the shard is done:
	// checkpointed (the rest of the shard is the residual) or ended.
	pullClaim struct{}
	// activeClaim records that the last read returned messages: the idle
	// clock stops.
	activeClaim struct{}
	// idleClaim records a read that returned nothing at At. The shard ends,
	// and the claim fails, once it has been idle for StopAfter (if
	// positive), counting from the later of its own idle start and
	// LastActive, the last message any shard of the reader saw.
	idleClaim struct {
		At         time.Time
		LastActive time.Time
		StopAfter  time.Duration
	}
)

// shardTracker tracks one shardRestriction. It is used behind an
// sdf.LockRTracker.
type shardTracker struct {
	rest         shardRestriction
	checkpointed bool // the rest of the shard went to a residual
	err          error
}

func newShardTracker(rest shardRestriction) *shardTracker {
	return &shardTracker{rest: rest}
}

// TryClaim applies one of the claims above.
func (t *shardTracker) TryClaim(pos any) bool {
	if t.IsDone() || t.err != nil {
		return false
	}
	switch c := pos.(type) {
	case pullClaim:
		return true
	case activeClaim:
		t.rest.IdleSince = 0
		return true
	case idleClaim:
		at := c.At.UnixMilli()
		if t.rest.IdleSince == 0 {
			t.rest.IdleSince = at
		}
		since := max(t.rest.IdleSince, c.LastActive.UnixMilli())
		if c.StopAfter > 0 && time.Duration(at-since)*time.Millisecond >= c.StopAfter {
			t.rest.Ended = true
			return false
		}
		return true
	default:
		t.err = fmt.Errorf("pubsubio: shard %d: unknown claim %T", t.rest.Index, pos)
		return false
	}
}

// TrySplit checkpoints the shard when fraction is 0: the primary is done
// and the residual is the rest of the shard, with its idle clock. A shard
// cannot be divided, so any other fraction splits nothing.
func (t *shardTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.IsDone() || fraction > 0 {
		return t.rest, nil, nil
	}
	t.checkpointed = true
	done := t.rest
	done.Ended = true
	return done, t.rest, nil
}

// GetError returns the error of an unknown claim.
func (t *shardTracker) GetError() error { return t.err }

// GetProgress reports an unbounded shard as all work remaining, and a
// done one as complete.
func (t *shardTracker) GetProgress() (done, remaining float64) {
	if t.IsDone() {
		return 1, 0
	}
	return 0, 1
}

// IsDone reports whether the shard was checkpointed or ended.
func (t *shardTracker) IsDone() bool { return t.checkpointed || t.rest.Ended }

// GetRestriction returns the shard as it stands.
func (t *shardTracker) GetRestriction() any { return t.rest }

// IsBounded is false: a shard reads until it is stopped.
func (t *shardTracker) IsBounded() bool { return t.rest.Ended }

var _ sdf.BoundableRTracker = (*shardTracker)(nil)
