package pubsubio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vkit "cloud.google.com/go/pubsub/v2/apiv1"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// extendTimeout bounds the first lease of a pull's messages: the
// pull loop waits for it, and an extension that comes later than the
// subscription's deadline (10 s at least) is of no use.
const extendTimeout = 5 * time.Second

// flowResumeDelay is the checkpoint delay of a shard that has just read
// messages: none, it pulls again as soon as the runner reschedules it.
const flowResumeDelay = 0

// capResumeDelay is the checkpoint delay of a shard that found the
// process at its flow-control cap and waited PollInterval in vain for
// room: short, as the pipeline acknowledges in bursts (an archive window
// at a time), and the part before it already waited.
const capResumeDelay = 100 * time.Millisecond

func init() {
	register.DoFn2x0[[]byte, func(int)](&shardsFn{})
	register.DoFn5x2[context.Context, *watermarkEstimator, *sdf.LockRTracker, int,
		func(beam.EventTime, schemas.Record), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter1[int]()
	register.Emitter2[beam.EventTime, schemas.Record]()
	beam.RegisterType(reflect.TypeOf((*shardRestriction)(nil)).Elem())
}

// Read reads a Pub/Sub subscription on any portable runner (Prism, Flink,
// Dataflow) with unary Pull.
//
// It returns an unbounded PCollection<schemas.Record>: one per message,
// with Data, Attributes, MessageID and PublishTime as received,
// IngestTime = PublishTime and its AckID, timestamped with the event time
// in cfg.EventTimeAttribute when it is readable, else the publish time.
// Read never acknowledges: it keeps each message leased until the
// pipeline passes its AckID to Ack (or AckExtension has passed), and the
// job calls ReleaseLeases when it ends. Delivery is at least once: remove
// redeliveries by event_id downstream.
//
// The steps: Impulse → one element per shard → Reshuffle → a splittable
// DoFn that pulls each shard. The Reshuffle spreads the shards over the
// workers and puts the reader at the root of its fused stage (Prism makes
// every splittable DoFn a root anyway). It panics if cfg is invalid (see
// Config.Validate).
func Read(s beam.Scope, cfg Config) beam.PCollection {
	s = s.Scope("pubsubio.Read")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	shards := beam.ParDo(s.Scope("Shards"), &shardsFn{Shards: cfg.Shards}, beam.Impulse(s))
	shards = beam.Reshuffle(s, shards)
	return beam.ParDo(s.Scope("Pull"), &readFn{Cfg: cfg, ReaderID: newReaderID()}, shards)
}

// newReaderID names one Read, to share its state among the DoFn
// instances of a worker.
func newReaderID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// shardsFn emits the shard numbers 0 to Shards-1.
type shardsFn struct {
	Shards int
}

func (fn *shardsFn) ProcessElement(_ []byte, emit func(int)) {
	for i := range fn.Shards {
		emit(i)
	}
}

// readFn is the splittable DoFn that pulls one shard. Its element is the
// shard number, its restriction a shardRestriction, and its watermark
// estimator a watermarkEstimator. It never acknowledges: its Records
// carry their ack ids, for Ack, and the worker's leaseBook keeps each
// pull's messages leased until Ack acknowledges them.
type readFn struct {
	Cfg      Config
	ReaderID string

	r                 *reader
	leases            *leaseBook
	read, empty, errs beam.Counter
	atCap             beam.Counter
	outstanding       beam.Distribution
}

func (fn *readFn) Setup() {
	fn.leases = leaseBookFor(fn.Cfg.Subscription)
	r, created := fn.leases.readerFor(fn.ReaderID, fn.Cfg)
	if created {
		slog.Info("pubsub reader starting", "subscription", fn.Cfg.Subscription, "shards", fn.Cfg.Shards,
			"stop_after_idle", fn.Cfg.StopAfterIdle.String())
	}
	fn.r = r
	fn.read = beam.NewCounter(metricnames.Namespace, metricnames.PubsubMessagesRead)
	fn.empty = beam.NewCounter(metricnames.Namespace, metricnames.PubsubPullsEmpty)
	fn.errs = beam.NewCounter(metricnames.Namespace, metricnames.PubsubPullErrors)
	fn.atCap = beam.NewCounter(metricnames.Namespace, metricnames.PubsubFlowControlWaits)
	fn.outstanding = beam.NewDistribution(metricnames.Namespace, metricnames.PubsubOutstandingMessages)
}

func (fn *readFn) CreateInitialRestriction(shard int) shardRestriction {
	return shardRestriction{Index: shard}
}

// SplitRestriction keeps the shard whole: it cannot be divided.
func (fn *readFn) SplitRestriction(_ int, rest shardRestriction) []shardRestriction {
	return []shardRestriction{rest}
}

func (fn *readFn) RestrictionSize(_ int, rest shardRestriction) float64 {
	if rest.Ended {
		return 0
	}
	return 1
}

func (fn *readFn) CreateTracker(rest shardRestriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(newShardTracker(rest))
}

// TruncateRestriction ends the shard when the runner drains the pipeline.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ int) shardRestriction {
	rest := rt.GetRestriction().(shardRestriction)
	rest.Ended = true
	return rest
}

func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, _ shardRestriction, _ int) int64 {
	return int64(et)
}

func (fn *readFn) CreateWatermarkEstimator(state int64) *watermarkEstimator {
	return &watermarkEstimator{wm: mtime.Time(state).ToTime(), updated: time.Now()}
}

func (fn *readFn) WatermarkEstimatorState(e *watermarkEstimator) int64 {
	return int64(mtime.FromTime(e.CurrentWatermark()))
}

// ProcessElement reads one part of the shard (process). The messages the
// part pulled stay leased in the leaseBook, for the pipeline to Ack; if
// the part fails, or panics while emitting, the worker gives back at once
// what its running parts hold (abandon).
func (fn *readFn) ProcessElement(ctx context.Context, we *watermarkEstimator,
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
	fn.r.release(batches) // emitted: from here on the pipeline acks them, with Ack
	ok = true
	return cont, nil
}

// process reads one part of a shard: it pulls until a pull comes back
// empty or short (the backlog is drained for now), the bundle budget is
// spent, or the process holds all that flow control allows, emits what it
// read, and returns how to continue and the batches it read (held by the
// reader while the part runs, for the watermark and abandon). It sets the
// watermark, and ends the shard after StopAfterIdle.
//
// A part that starts at the cap waits up to PollInterval for room (the
// pipeline acknowledges what it has made durable), and pulls if some is
// freed. If none is, the shard is not idle — its idle clock stops, as
// when it reads — and checkpoints for capResumeDelay. Its watermark then
// advances as an idle shard's, towards now − IdleWatermarkLag and no
// faster than MaxWatermarkSpeed (the wait is the time it credits): the
// pipeline acknowledges a message once windows of ingest time have
// closed over it (the lake archive), so a watermark held back by a
// backlog not yet pulled would keep the cap full for ever. What is still
// in the backlog may then arrive behind the watermark: late, as after
// any outage.
func (fn *readFn) process(ctx context.Context, we *watermarkEstimator, rt *sdf.LockRTracker, shard int,
	emit func(beam.EventTime, schemas.Record)) (sdf.ProcessContinuation, []uint64, error) {
	cfg, r, leases := fn.Cfg, fn.r, fn.leases
	sub, err := r.subscriber()
	if err != nil {
		return nil, nil, err
	}
	shardRead := beam.NewCounter(metricnames.Namespace, metricnames.PubsubShardRead(shard))
	start := time.Now()
	var batches []uint64
	n := 0
	atCap := false
	for n < cfg.MaxBundleMessages && time.Since(start) < cfg.MaxBundleDuration {
		if !rt.TryClaim(pullClaim{}) {
			// The runner took the rest of the shard as a residual, or
			// truncated it to drain.
			return sdf.StopProcessing(), batches, rt.GetError()
		}
		want := min(cfg.MaxMessagesPerPull, cfg.MaxBundleMessages-n)
		room, _ := leases.reserve(want, cfg.flowLimits())
		if room.messages == 0 && n == 0 {
			room = leases.awaitRoom(ctx, want, cfg.flowLimits(), cfg.PollInterval)
		}
		if room.messages == 0 {
			atCap = n == 0
			break
		}
		want = room.messages
		msgs, err := fn.pull(ctx, sub, want)
		if len(msgs) == 0 {
			leases.unreserve(room)
		}
		if err != nil {
			var transient *transientError
			if errors.As(err, &transient) {
				// Not idleness: try again later, without moving the idle clock.
				fn.errs.Inc(ctx, 1)
				slog.WarnContext(ctx, "pubsub pull failed; retrying", "subscription", cfg.Subscription, "shard", shard, "error", err)
				if n > 0 {
					break
				}
				return sdf.ResumeProcessingIn(cfg.PollInterval), batches, nil
			}
			return nil, batches, err
		}
		if len(msgs) == 0 {
			fn.empty.Inc(ctx, 1)
			break
		}
		leases.lease(ctx, r, ackIDs(msgs), messageSizes(msgs), time.Now(), room)
		batches = append(batches, fn.emitAll(msgs, emit))
		n += len(msgs)
		fn.read.Inc(ctx, int64(len(msgs)))
		shardRead.Inc(ctx, int64(len(msgs)))
		if len(msgs) < want {
			break // drained for now
		}
	}
	now := time.Now()
	held, _ := leases.outstanding()
	fn.outstanding.Update(ctx, int64(held))
	if atCap {
		// Not idle: the job holds all it may, and is writing it out.
		fn.atCap.Inc(ctx, 1)
		rt.TryClaim(activeClaim{})
		we.advanceAtMost(estimateWatermark(r.oldestHeld(), now, cfg.IdleWatermarkLag), now, cfg.MaxWatermarkSpeed)
		return sdf.ResumeProcessingIn(capResumeDelay), batches, nil
	}
	if n > 0 {
		rt.TryClaim(activeClaim{})
		we.advanceAtMost(estimateWatermark(r.oldestHeld(), now, cfg.IdleWatermarkLag), now, cfg.MaxWatermarkSpeed)
		slog.DebugContext(ctx, "pubsub shard read", "subscription", cfg.Subscription, "shard", shard,
			"messages", n, "took", time.Since(start).String())
		return sdf.ResumeProcessingIn(flowResumeDelay), batches, nil
	}
	// An acknowledgement is activity too: the job is still writing what it
	// read, and its aggregations may still have early firings pending for
	// it.
	lastActive := later(r.lastActivity(), leases.lastAcked())
	if !rt.TryClaim(idleClaim{At: now, LastActive: lastActive, StopAfter: cfg.StopAfterIdle}) {
		if err := rt.GetError(); err != nil {
			return nil, batches, err
		}
		if rt.GetRestriction().(shardRestriction).Ended {
			we.UpdateWatermark(endOfTime)
			slog.InfoContext(ctx, "pubsub shard idle; stopping", "subscription", cfg.Subscription, "shard", shard,
				"stop_after_idle", cfg.StopAfterIdle.String())
		}
		return sdf.StopProcessing(), batches, nil
	}
	we.advanceAtMost(estimateWatermark(r.oldestHeld(), now, cfg.IdleWatermarkLag), now, cfg.MaxWatermarkSpeed)
	return sdf.ResumeProcessingIn(cfg.PollInterval), batches, nil
}

// emitAll holds the messages of one pull (before emitting them, so that a
// failure while emitting nacks them), emits them as Records with their
// ack ids and returns the batch's id.
func (fn *readFn) emitAll(msgs []*pubsubpb.ReceivedMessage, emit func(beam.EventTime, schemas.Record)) uint64 {
	ids := make([]string, len(msgs))
	stamps := make([]time.Time, len(msgs))
	var oldest time.Time
	for i, m := range msgs {
		ids[i] = m.GetAckId()
		msg := m.GetMessage()
		stamps[i] = eventTime(msg.GetAttributes(), fn.Cfg.EventTimeAttribute, msg.GetPublishTime().AsTime())
		if oldest.IsZero() || stamps[i].Before(oldest) {
			oldest = stamps[i]
		}
	}
	id := fn.r.hold(ids, oldest, time.Now())
	for i, m := range msgs {
		rec := toRecord(m.GetMessage())
		rec.AckID = ids[i]
		emit(mtime.FromTime(stamps[i]), rec)
	}
	return id
}

// transientError is a pull failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// noRetry turns off the client's own retries of Pull: its backoff would
// outlast PullTimeout and turn an outage into what looks like idleness.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// pull makes one unary Pull. A pull that times out is empty. A failure
// that may pass is a *transientError; others (no such subscription, no
// permission) fail the bundle.
func (fn *readFn) pull(ctx context.Context, sub *vkit.SubscriptionAdminClient, max int) ([]*pubsubpb.ReceivedMessage, error) {
	pctx, cancel := context.WithTimeout(ctx, fn.Cfg.PullTimeout)
	defer cancel()
	resp, err := sub.Pull(pctx, &pubsubpb.PullRequest{Subscription: fn.Cfg.Subscription, MaxMessages: int32(max)}, noRetry)
	switch {
	case err == nil:
		return resp.GetReceivedMessages(), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("pubsubio: pull %s: %w", fn.Cfg.Subscription, context.Cause(ctx))
	case pctx.Err() != nil:
		return nil, nil
	}
	if isTransient(err) {
		return nil, &transientError{fmt.Errorf("pubsubio: pull %s: %w", fn.Cfg.Subscription, err)}
	}
	return nil, fmt.Errorf("pubsubio: pull %s: %w", fn.Cfg.Subscription, err)
}

// isTransient reports whether a failed Pub/Sub call may pass if tried
// again.
func isTransient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

// messageSizes returns the encoded sizes of messages just pulled, what
// MaxOutstandingBytes counts.
func messageSizes(msgs []*pubsubpb.ReceivedMessage) []int64 {
	sizes := make([]int64, len(msgs))
	for i, m := range msgs {
		sizes[i] = int64(proto.Size(m.GetMessage()))
	}
	return sizes
}

// ackIDs returns the ack ids of messages just pulled.
func ackIDs(msgs []*pubsubpb.ReceivedMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.GetAckId()
	}
	return ids
}

// abandon gives back everything the reader holds in this worker: a bundle
// is failing (its messages should come back at once), or was cancelled
// because the job or the worker is stopping. That includes what the other
// shards' parts running now read: a nack can cause a redelivery, never a
// loss, and failures are rare.
func (fn *readFn) abandon(ctx context.Context) {
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
	defer cancel()
	if err := fn.r.nackAll(nctx); err != nil {
		slog.WarnContext(ctx, "pubsub nack failed; the messages come back when their deadline ends",
			"subscription", fn.Cfg.Subscription, "error", err)
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
