package pubsubio

import (
	"reflect"
	"testing"
	"time"
)

func TestShardTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	stopAfter := 10 * time.Second
	idleAt := func(d time.Duration) idleClaim {
		return idleClaim{At: t0.Add(d), StopAfter: stopAfter}
	}

	t.Run("checkpoints at fraction 0: done primary, the rest as residual", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{Index: 2})
		if !tr.TryClaim(pullClaim{}) {
			t.Fatal("first pull claim failed")
		}
		tr.TryClaim(idleAt(0))
		p, r, err := tr.TrySplit(0)
		if err != nil {
			t.Fatal(err)
		}
		wantR := shardRestriction{Index: 2, IdleSince: t0.UnixMilli()}
		if !reflect.DeepEqual(r, wantR) {
			t.Errorf("residual = %+v, want %+v", r, wantR)
		}
		if !p.(shardRestriction).Ended {
			t.Errorf("primary = %+v, want it ended", p)
		}
		if !tr.IsDone() || tr.TryClaim(pullClaim{}) {
			t.Error("the tracker still claims after the checkpoint")
		}
		if _, r, _ := tr.TrySplit(0); r != nil {
			t.Errorf("a second checkpoint returned residual %+v", r)
		}
	})

	t.Run("does not divide a shard", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{Index: 1})
		for _, f := range []float64{0.5, 0.01, 1} {
			if _, r, err := tr.TrySplit(f); r != nil || err != nil {
				t.Errorf("TrySplit(%v) = residual %v, error %v; want neither", f, r, err)
			}
		}
		if tr.IsDone() || !tr.TryClaim(pullClaim{}) {
			t.Error("a declined split stopped the shard")
		}
	})

	t.Run("ends after StopAfterIdle of idleness", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{})
		if !tr.TryClaim(idleAt(0)) || !tr.TryClaim(idleAt(stopAfter-time.Millisecond)) {
			t.Fatal("idle claims failed before StopAfterIdle")
		}
		if tr.TryClaim(idleAt(stopAfter)) {
			t.Fatal("idle claim at StopAfterIdle succeeded")
		}
		if !tr.IsDone() || !tr.IsBounded() || !tr.GetRestriction().(shardRestriction).Ended || tr.GetError() != nil {
			t.Errorf("ended tracker: done %v, bounded %v, restriction %+v, error %v", tr.IsDone(), tr.IsBounded(), tr.GetRestriction(), tr.GetError())
		}
		if done, rem := tr.GetProgress(); done != 1 || rem != 0 {
			t.Errorf("progress = %v, %v; want 1, 0", done, rem)
		}
	})

	t.Run("a message restarts the idle clock", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{})
		tr.TryClaim(idleAt(0))
		tr.TryClaim(activeClaim{})
		if !tr.TryClaim(idleAt(stopAfter)) {
			t.Fatal("ended although a message came in between")
		}
		if !tr.TryClaim(idleAt(2*stopAfter - time.Millisecond)) {
			t.Fatal("ended before StopAfterIdle after the message")
		}
	})

	t.Run("another shard's message postpones the end", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{})
		tr.TryClaim(idleAt(0))
		c := idleAt(stopAfter)
		c.LastActive = t0.Add(5 * time.Second)
		if !tr.TryClaim(c) {
			t.Fatal("ended although another shard read 5s ago")
		}
	})

	t.Run("never ends with StopAfterIdle 0", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{})
		for _, d := range []time.Duration{0, time.Hour, 1000 * time.Hour} {
			if !tr.TryClaim(idleClaim{At: t0.Add(d)}) {
				t.Fatalf("ended after %v", d)
			}
		}
		if tr.IsBounded() {
			t.Error("an open shard says it is bounded")
		}
	})

	t.Run("a truncated shard claims nothing", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{Ended: true})
		if tr.TryClaim(pullClaim{}) || !tr.IsDone() {
			t.Error("a truncated shard still claims")
		}
	})

	t.Run("an unknown claim is an error", func(t *testing.T) {
		tr := newShardTracker(shardRestriction{})
		if tr.TryClaim(int64(4)) || tr.GetError() == nil {
			t.Error("an unknown claim did not fail")
		}
		if tr.TryClaim(pullClaim{}) {
			t.Error("claims go on after an error")
		}
	})
}
