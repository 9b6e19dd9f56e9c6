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

// The four reading DoFns, one per AckMode. They differ only in when they
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
	register.DoFn5x2[context.Context, *watermarkEstimator, *sdf.LockRTracker, int,
		func(beam.EventTime, schemas.Record), sdf.ProcessContinuation, error](&readDeferredFn{})
	register.DoFn1x0[string](&ackFn{})
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

// readDeferredFn never acknowledges (AckDeferred): its Records carry
// their ack ids, for Ack. The worker's leaseBook keeps each pull's
// messages leased until Ack acknowledges them (readFn.process); the
// reader also holds them while its part runs (a part that fails gives
// them back at once), and lets go of them when the part has emitted them.
type readDeferredFn struct {
	readFn
}

func (fn *readDeferredFn) ProcessElement(ctx context.Context, we *watermarkEstimator,
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
	fn.r.release(batches) // from here on the pipeline acks them, with Ack
	ok = true
	return cont, nil
}

// Ack acknowledges Pub/Sub messages by ack id: the AckIDs of the Records
// Read emits with AckDeferred, once the pipeline has made what each
// message must become durable. ackIDs is a PCollection<string>; empty ids
// are skipped. cfg names the subscription (Project and Subscription; the
// rest is ignored). It panics if cfg is invalid (see Config.Validate).
//
// Each bundle's ids are acknowledged when the bundle finishes, in
// requests of at most 1000 ids, each tried a few times with backoff while
// it fails transiently. An ack that still fails is logged and counted in
// pubsub_ack_failures and never fails the bundle: its messages come back
// after their deadline, and dedup removes them. Acked ids are counted in
// pubsub_acks.
func Ack(s beam.Scope, cfg Config, ackIDs beam.PCollection) {
	s = s.Scope("pubsubio.Ack")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	beam.ParDo0(s, &ackFn{Cfg: cfg.withDefaults(), AckerID: newReaderID()}, ackIDs)
}

// ackFn collects a bundle's ack ids and acknowledges them in
// FinishBundle. It shares one Pub/Sub client per worker with the other
// instances of its Ack.
type ackFn struct {
	Cfg     Config
	AckerID string

	r              *reader
	ids            []string
	acks, failures beam.Counter
}

func (fn *ackFn) Setup() {
	r, created := sharedReader("ack/"+fn.AckerID, fn.Cfg)
	if created {
		slog.Info("pubsub acker starting", "subscription", fn.Cfg.Subscription)
	}
	fn.r = r
	fn.acks = beam.NewCounter("railyard", counterAcks)
	fn.failures = beam.NewCounter("railyard", counterAckFailures)
}

func (fn *ackFn) StartBundle() {
	fn.ids = fn.ids[:0]
}

func (fn *ackFn) ProcessElement(ackID string) {
	if ackID != "" {
		fn.ids = append(fn.ids, ackID)
	}
}

func (fn *ackFn) FinishBundle(ctx context.Context) {
	if len(fn.ids) == 0 {
		return
	}
	acked, err := fn.r.acknowledge(ctx, fn.ids)
	if b := existingLeaseBook(fn.Cfg.Subscription); b != nil {
		// Acked, or failed to be after retries: either way the lease
		// need not be kept, and a failed one comes back sooner.
		b.forget(fn.ids)
	}
	fn.acks.Inc(ctx, int64(acked))
	if failed := len(fn.ids) - acked; failed > 0 {
		fn.failures.Inc(ctx, int64(failed))
		slog.WarnContext(ctx, "pubsub ack failed; the messages will be redelivered", "subscription", fn.Cfg.Subscription,
			"messages", failed, "error", err)
	}
	fn.ids = fn.ids[:0]
}
