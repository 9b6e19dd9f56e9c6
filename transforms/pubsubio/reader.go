package pubsubio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
)

// Request limits and timings of the acks, nacks and lease renewals.
const (
	// leaseTick is how often the leaseBook looks for leases to renew.
	leaseTick = time.Second
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

// reader is the state one Read (or Ack) shares among all its DoFn
// instances, shards and bundles in one worker process: the Pub/Sub client,
// and the batches of messages that the shards' running parts have pulled
// and not yet emitted in full ("held"). The leaseBook of the subscription
// keeps the readers (leaseBook.readerFor) and the messages' leases. The Go
// SDK harness never tears DoFns down, so nothing here is closed.
//
// What is held gives the watermark its floor across the shards of the
// worker (see estimateWatermark) — Prism keeps one watermark estimate per
// stage, the last bundle's, not the minimum over shards — and is what a
// failing part gives back at once (nackAll).
type reader struct {
	cfg  Config
	book *leaseBook // the book that keeps the reader; nil in some tests

	clientMu sync.Mutex
	client   *pubsub.Client

	mu         sync.Mutex
	held       map[uint64]heldBatch // by batch id
	batch      uint64               // the last batch id given
	lastActive time.Time            // when a shard last read a message
}

// heldBatch is the messages of one Pull, held while its part runs.
type heldBatch struct {
	ackIDs []string
	oldest time.Time // the oldest element timestamp among them
}

func newReader(cfg Config) *reader {
	return &reader{cfg: cfg, held: map[uint64]heldBatch{}}
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

// hold records a batch just read, until its part releases it, and returns
// its id.
func (r *reader) hold(ackIDs []string, oldest, now time.Time) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch++
	r.held[r.batch] = heldBatch{ackIDs: ackIDs, oldest: oldest}
	r.lastActive = now
	return r.batch
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

// release stops holding the batches: their part has emitted them. Batches
// no longer held (given back by nackAll) are skipped.
func (r *reader) release(batches []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range batches {
		delete(r.held, b)
	}
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

// nackAll gives everything held back to Pub/Sub for redelivery now, and
// has the leaseBook stop keeping its leases.
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
	if r.book != nil {
		r.book.forget(ids)
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
