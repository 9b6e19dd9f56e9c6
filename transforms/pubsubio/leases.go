package pubsubio

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// leaseBook keeps the leases of the messages a Read with AckDeferred has
// pulled and the pipeline has not acknowledged yet, in one worker process:
// each message's ack deadline is set to AckDeadline right after its Pull
// and renewed every half of it, until Ack acknowledges the message,
// AckExtension has passed since the pull, or nothing of the job has run
// in this process for a while (the job ended or is gone). So a message
// stays leased for as long as the pipeline works on it, and a crashed
// worker's messages come back within AckDeadline, not AckExtension.
//
// There is one book per subscription and process: Ack finds it by the
// subscription's name. On a runner with several workers a message may be
// acked on another worker than the one that read it; that one then goes
// on renewing a lease Pub/Sub ignores (an acked message's modack is a
// no-op) until AckExtension, which costs requests, not messages.
type leaseBook struct {
	subscription string
	tick         time.Duration // a variable for the tests

	mu        sync.Mutex
	byAckID   map[string]*leaseBatch
	batches   map[*leaseBatch]struct{}
	lastTouch time.Time // when a reader or an acker last used the book
	lastAck   time.Time // when a message of the book was last acknowledged
	keeping   bool      // the keeper runs
}

// leaseBatch is the messages of one pull still leased, with the reader
// that pulled them (its client and configuration: tests run several jobs
// on one subscription name in one process).
type leaseBatch struct {
	r         *reader
	ackIDs    []string
	live      int // how many of ackIDs are not yet acked
	renewAt   time.Time
	expires   time.Time
	idleLimit time.Duration // gone once the book is untouched this long
}

var leaseBooks = struct {
	sync.Mutex
	m map[string]*leaseBook
}{m: map[string]*leaseBook{}}

// leaseBookFor returns the process's book of the subscription, creating it
// if it is the first to ask.
func leaseBookFor(subscription string) *leaseBook {
	leaseBooks.Lock()
	defer leaseBooks.Unlock()
	if b, ok := leaseBooks.m[subscription]; ok {
		return b
	}
	b := newLeaseBook(subscription)
	leaseBooks.m[subscription] = b
	return b
}

func newLeaseBook(subscription string) *leaseBook {
	return &leaseBook{
		subscription: subscription,
		tick:         leaseTick,
		byAckID:      map[string]*leaseBatch{},
		batches:      map[*leaseBatch]struct{}{},
	}
}

// existingLeaseBook returns the process's book of the subscription, or nil
// if no Read of it ran in this process.
func existingLeaseBook(subscription string) *leaseBook {
	leaseBooks.Lock()
	defer leaseBooks.Unlock()
	return leaseBooks.m[subscription]
}

// lease sets the deadline of messages just pulled to AckDeadline, in one
// request, and keeps them leased from then on. A failed request is
// logged, not returned: the messages then come back after the
// subscription's own deadline, and dedup removes them; the keeper tries
// again at the next renewal.
func (b *leaseBook) lease(ctx context.Context, r *reader, ackIDs []string, pulledAt time.Time) {
	deadline := r.cfg.AckDeadline
	ectx, cancel := context.WithTimeout(ctx, extendTimeout)
	defer cancel()
	if err := r.modifyDeadline(ectx, ackIDs, deadline); err != nil {
		slog.WarnContext(ctx, "pubsub ack deadline extension failed; the messages may come back after the subscription's deadline",
			"subscription", b.subscription, "messages", len(ackIDs), "error", err)
	}
	lb := &leaseBatch{
		r:         r,
		ackIDs:    ackIDs,
		live:      len(ackIDs),
		renewAt:   pulledAt.Add(deadline / 2),
		expires:   pulledAt.Add(r.cfg.AckExtension),
		idleLimit: r.aliveWithin + deadline,
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ackIDs {
		b.byAckID[id] = lb
	}
	b.batches[lb] = struct{}{}
	b.lastTouch = time.Now()
	if !b.keeping {
		b.keeping = true
		go b.keep()
	}
}

// touch notes that the job still runs in this process: a reader's part
// ran, though it may have read nothing.
func (b *leaseBook) touch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastTouch = time.Now()
}

// forget stops renewing the leases of acknowledged messages.
func (b *leaseBook) forget(ackIDs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastTouch = time.Now()
	for _, id := range ackIDs {
		lb, ok := b.byAckID[id]
		if !ok {
			continue
		}
		b.lastAck = b.lastTouch
		delete(b.byAckID, id)
		if lb.live--; lb.live == 0 {
			delete(b.batches, lb)
		}
	}
}

// lastAcked returns when a message the book leased was last
// acknowledged, zero if none was.
func (b *leaseBook) lastAcked() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastAck
}

// leased returns how many messages the book keeps leased.
func (b *leaseBook) leased() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byAckID)
}

// keep renews the leases that are due, each for AckDeadline but never
// past AckExtension from its pull; drops those past AckExtension; and
// drops them all once the job has not used the book for idleLimit. It
// returns when nothing is leased.
func (b *leaseBook) keep() {
	tick := time.NewTicker(b.tick)
	defer tick.Stop()
	for range tick.C {
		now := time.Now()
		type renewal struct {
			r *reader
			d time.Duration
		}
		renew := map[renewal][]string{}
		expired, abandoned := 0, 0
		b.mu.Lock()
		for lb := range b.batches {
			gone := now.Sub(b.lastTouch) > lb.idleLimit
			switch {
			case gone || !now.Before(lb.expires):
				for _, id := range lb.ackIDs {
					if b.byAckID[id] == lb {
						delete(b.byAckID, id)
						if gone {
							abandoned++
						} else {
							expired++
						}
					}
				}
				delete(b.batches, lb)
			case !now.Before(lb.renewAt):
				d := min(lb.r.cfg.AckDeadline, lb.expires.Sub(now)).Truncate(time.Second)
				if d < time.Second {
					continue
				}
				k := renewal{lb.r, d}
				for _, id := range lb.ackIDs {
					if b.byAckID[id] == lb {
						renew[k] = append(renew[k], id)
					}
				}
				lb.renewAt = now.Add(d / 2)
			}
		}
		done := len(b.batches) == 0
		if done {
			b.keeping = false
		}
		b.mu.Unlock()

		sub := b.subscription
		if expired > 0 {
			slog.Warn("pubsub messages not acknowledged within the ack extension; Pub/Sub will deliver them again",
				"subscription", sub, "messages", expired)
		}
		if abandoned > 0 {
			slog.Info("pubsub job no longer runs here; letting the leases of what it did not acknowledge lapse",
				"subscription", sub, "messages", abandoned)
		}
		for k, ids := range renew {
			ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
			if err := k.r.modifyDeadline(ctx, ids, k.d); err != nil {
				slog.Warn("pubsub ack deadline renewal failed; the messages may be delivered again",
					"subscription", sub, "messages", len(ids), "error", err)
			}
			cancel()
		}
		if done {
			return
		}
	}
}
