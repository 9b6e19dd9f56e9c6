package pubsubio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
)

// Lease timings. Pub/Sub's shortest ack deadline is 10s: a message held
// longer than half of it is extended, and kept extended while the reader is
// alive, until it is acked or maxHold has passed since it was read. Then
// the reader lets it go, and Pub/Sub redelivers it once its deadline ends.
// A reader is alive while one of its shards runs, or ran within
// aliveWithin; when it dies (the job failed or was cancelled) it nacks
// what it holds, so that the next job gets it at once.
const (
	firstExtension = 5 * time.Second
	leaseExtension = 60 * time.Second
	leaseTick      = time.Second
	maxHold        = 5 * time.Minute
	minAliveWithin = 10 * time.Second
	// ackIDsPerRequest keeps Acknowledge requests well under the 512 KiB
	// request limit (as the Go and Java clients do).
	ackIDsPerRequest = 1000
	// modackIDsPerRequest and maxAckRequestBytes are Pub/Sub's limits on
	// one ModifyAckDeadline request: 2,500 ack ids and 512 KB (with room
	// to spare). modackConcurrency is how many such requests are under
	// way at once: at the cap, renewing 200,000 leases of real ack ids
	// (about 200 bytes each) takes some 90 requests.
	modackIDsPerRequest = 2500
	maxAckRequestBytes  = 500_000
	modackConcurrency   = 8
	// rpcTimeout bounds one ack, nack or extension request.
	rpcTimeout = 30 * time.Second
	// ackAttempts is how many times an Acknowledge request is tried while
	// it fails transiently, ackAttemptTimeout bounds each try, and
	// ackBackoff spaces them.
	ackAttempts       = 4
	ackAttemptTimeout = 10 * time.Second
)

// ackBackoff spaces the attempts of an Acknowledge request.
func ackBackoff() gax.Backoff {
	return gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2}
}

// reader is the state one Read shares among all its DoFn instances, shards
// and bundles in one worker process: the Pub/Sub client, and the batches
// of messages read and not yet acknowledged ("held"). The Go SDK harness
// never tears DoFns down, so nothing here is closed; the lease keeper stops
// when nothing is held.
//
// What is held gives the watermark its floor across the shards of the
// worker (see estimateWatermark) — Prism keeps one watermark estimate per
// stage, the last bundle's, not the minimum over shards.
type reader struct {
	cfg Config

	clientMu sync.Mutex
	client   *pubsub.Client

	// Timings, variables for the tests.
	firstExtension, leaseExtension, leaseTick, aliveWithin time.Duration

	mu         sync.Mutex
	held       map[uint64]*heldBatch // by batch id
	lastActive time.Time             // when a shard last read a message
	unreported ackCounts             // acks the counters have not counted
	keeping    bool                  // the lease keeper runs
	calls      int                   // shard parts running now
	lastCall   time.Time             // when a shard part last started or ended
}

// ackCounts counts acks made outside a bundle (in finalization), which the
// reader's next call adds to its counters.
type ackCounts struct {
	acks, finalized int64
}

// heldBatch is the messages of one Pull, read and not yet acknowledged.
type heldBatch struct {
	ackIDs   []string
	oldest   time.Time // the oldest element timestamp among them
	extendAt time.Time
	expires  time.Time
}

var readers = struct {
	sync.Mutex
	m map[string]*reader
}{m: map[string]*reader{}}

// readerFor returns the worker's state of the Read with the given id.
func readerFor(id string, cfg Config) *reader {
	r, created := sharedReader(id, cfg)
	if created {
		slog.Info("pubsub reader starting", "subscription", cfg.Subscription, "shards", cfg.Shards,
			"ack_mode", cfg.AckMode.String(), "stop_after_idle", cfg.StopAfterIdle.String())
	}
	return r
}

// sharedReader returns the worker's reader with the given id, creating it
// if it is the first to ask.
func sharedReader(id string, cfg Config) (r *reader, created bool) {
	readers.Lock()
	defer readers.Unlock()
	if r, ok := readers.m[id]; ok {
		return r, false
	}
	r = newReader(cfg)
	readers.m[id] = r
	return r, true
}

func newReader(cfg Config) *reader {
	return &reader{
		cfg:            cfg,
		firstExtension: firstExtension,
		leaseExtension: leaseExtension,
		leaseTick:      leaseTick,
		aliveWithin:    max(minAliveWithin, 3*(cfg.PollInterval+cfg.PullTimeout+cfg.MaxBundleDuration)),
		held:           map[uint64]*heldBatch{},
	}
}

// begin and end bracket a part of a shard: the reader is alive.
func (r *reader) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.lastCall = time.Now()
}

func (r *reader) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls--
	r.lastCall = time.Now()
}

// subscriber returns the low-level subscriber client (unary Pull,
// Acknowledge, ModifyAckDeadline), creating the client on first use. It
// honours PUBSUB_EMULATOR_HOST.
func (r *reader) subscriber() (*vkit.SubscriptionAdminClient, error) {
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	if r.client == nil {
		// Not the bundle's context: the client outlives the bundle.
		c, err := pubsub.NewClient(context.Background(), r.cfg.Project)
		if err != nil {
			return nil, fmt.Errorf("pubsubio: client for project %s: %w", r.cfg.Project, err)
		}
		r.client = c
	}
	return r.client.SubscriptionAdminClient, nil
}

// hold records a batch just read and returns its id. Ids are random, so
// that a batch id carried in a restriction to another worker names
// nothing there (that worker acknowledges nothing; the batch is left to be
// redelivered) rather than some other batch.
func (r *reader) hold(ackIDs []string, oldest, now time.Time) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := rand.Uint64()
	for _, taken := r.held[id]; taken || id == 0; _, taken = r.held[id] {
		id = rand.Uint64()
	}
	b := &heldBatch{
		ackIDs:   ackIDs,
		oldest:   oldest,
		extendAt: now.Add(r.firstExtension),
		expires:  now.Add(maxHold),
	}
	if r.cfg.AckMode == AckDeferred {
		// Extended to AckExtension right after its Pull, and held only
		// while its part runs: the keeper's shorter extension would cut
		// that deadline short.
		b.extendAt = b.expires
	}
	r.held[id] = b
	r.lastActive = now
	if !r.keeping {
		r.keeping = true
		go r.keepLeases()
	}
	return id
}

// oldestHeld returns the oldest timestamp of the messages held, or the
// zero time.
func (r *reader) oldestHeld() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest time.Time
	for _, b := range r.held {
		if oldest.IsZero() || b.oldest.Before(oldest) {
			oldest = b.oldest
		}
	}
	return oldest
}

// lastActivity returns when a shard of this reader last read a message.
func (r *reader) lastActivity() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastActive
}

// takeAcked returns the acks noted since the last call.
func (r *reader) takeAcked() ackCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.unreported
	r.unreported = ackCounts{}
	return n
}

// release stops holding the batches and returns their ack ids. Batches
// no longer held (acked, released or expired) are skipped.
func (r *reader) release(batches []uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, b := range batches {
		if h, ok := r.held[b]; ok {
			ids = append(ids, h.ackIDs...)
			delete(r.held, b)
		}
	}
	return ids
}

// ack acknowledges the batches and returns how many messages it acked.
func (r *reader) ack(ctx context.Context, batches []uint64) (int, error) {
	return r.acknowledge(ctx, r.release(batches))
}

// acknowledge acknowledges the ack ids in requests of at most
// ackIDsPerRequest, trying each up to ackAttempts times while it fails
// transiently, and returns how many it acked. It goes on past a request
// that fails, and returns the failures joined.
func (r *reader) acknowledge(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	sub, err := r.subscriber()
	if err != nil {
		return 0, err
	}
	acked := 0
	var errs []error
	for chunk := range slices.Chunk(ids, ackIDsPerRequest) {
		if err := r.acknowledgeChunk(ctx, sub, chunk); err != nil {
			errs = append(errs, fmt.Errorf("pubsubio: acknowledge %d messages of %s: %w", len(chunk), r.cfg.Subscription, err))
			continue
		}
		acked += len(chunk)
	}
	return acked, errors.Join(errs...)
}

// acknowledgeChunk sends one Acknowledge request, retried with backoff
// while it fails transiently (the client's own retries are off: they
// would only cover Unavailable, for up to a minute).
func (r *reader) acknowledgeChunk(ctx context.Context, sub *vkit.SubscriptionAdminClient, ids []string) error {
	bo := ackBackoff()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, ackAttemptTimeout)
		err := sub.Acknowledge(actx, &pubsubpb.AcknowledgeRequest{Subscription: r.cfg.Subscription, AckIds: ids}, noRetry)
		cancel()
		if err == nil || attempt == ackAttempts || !isTransient(err) {
			return err
		}
		if gax.Sleep(ctx, bo.Pause()) != nil {
			return err // the bundle is ending: no time for another try
		}
	}
}

// noteFinalized records acks made by a finalization callback.
func (r *reader) noteFinalized(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreported.acks += int64(n)
	r.unreported.finalized += int64(n)
}

// nackAll gives everything held back to Pub/Sub for redelivery now, and
// stops keeping its leases if a leaseBook keeps them.
func (r *reader) nackAll(ctx context.Context) error {
	r.mu.Lock()
	var ids []string
	for id, b := range r.held {
		ids = append(ids, b.ackIDs...)
		delete(r.held, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if b := existingLeaseBook(r.cfg.Subscription); b != nil {
		b.forget(ids)
	}
	return r.modifyDeadline(ctx, ids, 0)
}

// modifyDeadline sets the ack deadline of the messages to d (0 nacks
// them), in requests within Pub/Sub's limits (chunkAckIDs), up to
// modackConcurrency of them at a time. It goes on past a request that
// fails, and returns the failures joined.
func (r *reader) modifyDeadline(ctx context.Context, ids []string, d time.Duration) error {
	sub, err := r.subscriber()
	if err != nil {
		return err
	}
	chunks := chunkAckIDs(ids, len(r.cfg.Subscription), modackIDsPerRequest, maxAckRequestBytes)
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, modackConcurrency)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			err := sub.ModifyAckDeadline(cctx, &pubsubpb.ModifyAckDeadlineRequest{
				Subscription: r.cfg.Subscription, AckIds: chunk, AckDeadlineSeconds: int32(d / time.Second),
			})
			if err != nil {
				errs[i] = fmt.Errorf("pubsubio: set the ack deadline of %d messages of %s to %v: %w", len(chunk), r.cfg.Subscription, d, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// chunkAckIDs splits ack ids into requests of at most maxIDs ids and at
// most maxBytes bytes as encoded, counting subscriptionLen for the
// subscription name and the deadline.
func chunkAckIDs(ids []string, subscriptionLen, maxIDs, maxBytes int) [][]string {
	const perID = 4              // a field tag and a length of up to three bytes
	base := subscriptionLen + 16 // the subscription's tag and length, the deadline
	var chunks [][]string
	start, size := 0, base
	for i, id := range ids {
		n := len(id) + perID
		if i > start && (i-start == maxIDs || size+n > maxBytes) {
			chunks = append(chunks, ids[start:i])
			start, size = i, base
		}
		size += n
	}
	if start < len(ids) {
		chunks = append(chunks, ids[start:])
	}
	return chunks
}

// keepLeases extends the deadlines of held messages until they are acked
// or nacked; lets them go after maxHold; and nacks them all once the
// reader is dead. It returns when nothing is held.
func (r *reader) keepLeases() {
	tick := time.NewTicker(r.leaseTick)
	defer tick.Stop()
	for range tick.C {
		now := time.Now()
		var extend, giveBack []string
		expired := 0
		r.mu.Lock()
		alive := r.calls > 0 || now.Sub(r.lastCall) < r.aliveWithin
		for id, b := range r.held {
			switch {
			case !alive:
				giveBack = append(giveBack, b.ackIDs...)
				delete(r.held, id)
			case now.After(b.expires):
				expired += len(b.ackIDs)
				delete(r.held, id)
			case !now.Before(b.extendAt):
				extend = append(extend, b.ackIDs...)
				b.extendAt = now.Add(r.leaseExtension / 2)
			}
		}
		done := len(r.held) == 0
		if done {
			r.keeping = false
		}
		r.mu.Unlock()

		ctx := context.Background()
		if expired > 0 {
			// The bundle failed after the read, or its commit never showed:
			// Pub/Sub redelivers the messages when their deadline ends.
			slog.Warn("pubsub messages held too long; leaving them to be redelivered",
				"subscription", r.cfg.Subscription, "messages", expired, "max_hold", maxHold.String())
		}
		if len(giveBack) > 0 {
			slog.Info("pubsub reader stopped; giving back what it held", "subscription", r.cfg.Subscription, "messages", len(giveBack))
			if err := r.modifyDeadline(ctx, giveBack, 0); err != nil {
				slog.Warn("pubsub nack failed; the messages come back when their deadline ends",
					"subscription", r.cfg.Subscription, "messages", len(giveBack), "error", err)
			}
		}
		if len(extend) > 0 {
			if err := r.modifyDeadline(ctx, extend, r.leaseExtension); err != nil {
				slog.Warn("pubsub ack deadline extension failed; the messages may be redelivered",
					"subscription", r.cfg.Subscription, "messages", len(extend), "error", err)
			}
		}
		if done {
			return
		}
	}
}
