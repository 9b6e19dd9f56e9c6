package pubsubio

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
)

// The three reading DoFns, one per AckMode. They differ only in when they
// acknowledge; readFn does the rest. Each is its own type because the
// BundleFinalization parameter alone makes the pipeline require bundle
// finalization of the runner.

func init() {
	register.DoFn5x2[context.Context, *watermarkEstimator, *sdf.LockRTracker, int,
		func(beam.EventTime, schemas.Record), sdf.ProcessContinuation, error](&readCommittedFn{})
	register.DoFn6x2[context.Context, *watermarkEstimator, beam.BundleFinalization, *sdf.LockRTracker, int,
		func(beam.EventTime, schemas.Record), sdf.ProcessContinuation, error](&readFinalizingFn{})
	register.DoFn5x2[context.Context, *watermarkEstimator, *sdf.LockRTracker, int,
		func(beam.EventTime, schemas.Record), sdf.ProcessContinuation, error](&readAckingFn{})
}

// readCommittedFn acknowledges what a part of a shard read when the
// shard's next part starts (AckOnCommit): the part's batches travel in
// the checkpoint's residual, which the runner schedules only after it has
// committed the bundle.
type readCommittedFn struct {
	readFn
}

func (fn *readCommittedFn) ProcessElement(ctx context.Context, we *watermarkEstimator,
	rt *sdf.LockRTracker, shard int, emit func(beam.EventTime, schemas.Record)) (sdf.ProcessContinuation, error) {
	ok := false
	defer func() {
		if !ok { // an error, or a panic while emitting
			fn.abandon(ctx)
		}
	}()
	cont, batches, err := fn.process(ctx, we, rt, shard, emit)
	if err != nil {
		return nil, err
	}
	withTracker(rt, func(t *shardTracker) { t.addPending(batches) })
	ok = true
	return cont, nil
}

// readFinalizingFn is readCommittedFn plus bundle finalization
// (AckOnFinalize): a bundle's callback acknowledges its batches, and the
// shard's next part acknowledges those the callback did not.
type readFinalizingFn struct {
	readFn

	// finalizedOnce is set when a callback of this instance has run. Beam
	// Go v2.77.0 runs none of the instance's later callbacks (its plan has
	// a new finalizer by then), so they are not registered: they would pile
	// up in the old one for the life of the worker.
	finalizedOnce atomic.Bool
}

func (fn *readFinalizingFn) ProcessElement(ctx context.Context, we *watermarkEstimator, bf beam.BundleFinalization,
	rt *sdf.LockRTracker, shard int, emit func(beam.EventTime, schemas.Record)) (sdf.ProcessContinuation, error) {
	ok := false
	defer func() {
		if !ok {
			fn.abandon(ctx)
		}
	}()
	cont, batches, err := fn.process(ctx, we, rt, shard, emit)
	if err != nil {
		return nil, err
	}
	withTracker(rt, func(t *shardTracker) { t.addPending(batches) })
	if len(batches) > 0 && !fn.finalizedOnce.Load() {
		bf.RegisterCallback(maxHold, finalizer{fn: fn, batches: batches}.run)
	}
	ok = true
	return cont, nil
}

// finalizer acknowledges the batches of a committed bundle.
type finalizer struct {
	fn      *readFinalizingFn
	batches []uint64
}

// run never fails: the Go harness would keep a failed callback and run it
// again at the plan's next finalization, and Prism ignores the failure.
// Messages whose ack fails come back, and dedup removes them.
func (f finalizer) run() error {
	f.fn.finalizedOnce.Store(true)
	r := f.fn.r
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	n, err := r.ack(ctx, f.batches)
	r.noteFinalized(n) // counted at the next part: this bundle's metrics are sent
	if err != nil {
		slog.Warn("pubsub ack failed; the messages will be redelivered", "subscription", r.cfg.Subscription, "error", err)
	}
	return nil
}

// readAckingFn acknowledges what a part of a shard read as soon as the
// part has emitted it (AckAfterOutput).
type readAckingFn struct {
	readFn
}

func (fn *readAckingFn) ProcessElement(ctx context.Context, we *watermarkEstimator,
	rt *sdf.LockRTracker, shard int, emit func(beam.EventTime, schemas.Record)) (sdf.ProcessContinuation, error) {
	ok := false
	defer func() {
		if !ok {
			fn.abandon(ctx)
		}
	}()
	cont, batches, err := fn.process(ctx, we, rt, shard, emit)
	if err != nil {
		return nil, err
	}
	n, err := fn.r.ack(context.WithoutCancel(ctx), batches)
	fn.acks.Inc(ctx, int64(n))
	if err != nil {
		slog.WarnContext(ctx, "pubsub ack failed; the messages will be redelivered", "subscription", fn.Cfg.Subscription, "error", err)
	}
	ok = true
	return cont, nil
}
