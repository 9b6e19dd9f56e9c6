package pubsubio

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// leaseBook keeps the leases of the messages the Reads of a subscription
// have pulled and the pipeline has not acknowledged yet, in one worker
// process:
// each message's ack deadline is set to AckDeadline right after its Pull
// and renewed every half of it, until Ack acknowledges the message,
// AckExtension has passed since the pull, or the job that pulled it ends
// in this process (ReleaseLeases). So a message stays leased for as long
// as the pipeline works on it — however long a stalled sink keeps the
// reader from running — and a crashed worker's messages come back within
// AckDeadline, not AckExtension: its keeper dies with it.
//
// It is also the process's flow control, as the Pub/Sub client's
// ReceiveSettings.MaxOutstandingMessages and MaxOutstandingBytes are: the
// messages it keeps leased (pulled, not yet acknowledged, nacked or
// lapsed) are what the process holds of the subscription, and every
// shard asks it for room before it pulls (reserve). Room for messages is
// reserved before the Pull, so the count never exceeds
// MaxOutstandingMessages. Bytes are known only once pulled: a pull
// reserves the average size of the messages leased now (of the last pull
// when none is) for each message it may bring, so the bytes exceed
// MaxOutstandingBytes only by what messages larger than that bring, and
// before the first pull by one pull per shard. A book that holds nothing
// always lets one message through, however large. A backlog therefore
// enters memory at most a cap at a time.
//
// There is one book per subscription and process, the one registry of
// what the Reads and Acks of the subscription share in it: Ack finds it
// by the subscription's name, and it also keeps their readers (the Pub/Sub
// client, what the running parts hold; see readerFor). On a runner with several workers a message may be
// acked on another worker than the one that read it; that one then goes
// on renewing a lease Pub/Sub ignores (an acked message's modack is a
// no-op) until AckExtension, which costs requests and, until then, room
// under that worker's cap, never messages.
type leaseBook struct {
	subscription string
	tick         time.Duration // a variable for the tests

	readersMu sync.Mutex
	readers   map[string]*reader // by Read (or Ack) id

	mu        sync.Mutex
	byAckID   map[string]leased
	batches   map[*leaseBatch]struct{}
	bytes     int64         // the bytes of the messages in byAckID
	reserved  reservation   // room taken by pulls under way
	lastSize  int64         // the average size of the last pull's messages
	peak      int           // the most messages leased at once
	peakBytes int64         // the most bytes leased at once
	freed     chan struct{} // closed, and replaced, when room is freed
	lastAck   time.Time     // when a message of the book was last acknowledged
	keeping   bool          // the keeper runs
}

// leased is one message the book keeps leased.
type leased struct {
	batch *leaseBatch
	bytes int64
}

// leaseBatch is the messages of one pull still leased, with the reader
// that pulled them (its client and configuration: tests run several jobs
// on one subscription name in one process).
type leaseBatch struct {
	r       *reader
	ackIDs  []string
	live    int // how many of ackIDs are not yet acked
	renewAt time.Time
	expires time.Time
}

// flowLimits is the cap on what a process holds of a subscription.
type flowLimits struct {
	messages int
	bytes    int64
}

// reservation is room under the cap taken for a pull: messages, and the
// bytes they are expected to bring.
type reservation struct {
	messages int
	bytes    int64
}

// flowLimits returns the configuration's cap (withDefaults applied).
func (c Config) flowLimits() flowLimits {
	return flowLimits{messages: c.MaxOutstandingMessages, bytes: c.MaxOutstandingBytes}
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
		readers:      map[string]*reader{},
		byAckID:      map[string]leased{},
		batches:      map[*leaseBatch]struct{}{},
		freed:        make(chan struct{}),
	}
}

// readerFor returns the worker's state of the Read (or Ack) with the given
// id, creating it if it is the first to ask.
func (b *leaseBook) readerFor(id string, cfg Config) (r *reader, created bool) {
	b.readersMu.Lock()
	defer b.readersMu.Unlock()
	if r, ok := b.readers[id]; ok {
		return r, false
	}
	r = newReader(cfg)
	r.book = b
	b.readers[id] = r
	return r, true
}

// existingLeaseBook returns the process's book of the subscription, or nil
// if no Read of it ran in this process.
func existingLeaseBook(subscription string) *leaseBook {
	leaseBooks.Lock()
	defer leaseBooks.Unlock()
	return leaseBooks.m[subscription]
}

// minPullShare is the smallest pull a shard makes under the cap, as a
// share of the cap: a shard waits for room for cap/minPullShare messages
// (or for all it wants, if less) rather than pulling a few at a time as
// acks trickle in.
const minPullShare = 20

// reserve takes room for up to want messages under lim for a pull, and
// returns it: no messages when the process is at the cap. The caller
// pulls at most res.messages, then passes res to lease, or to unreserve
// if the pull brought nothing. freed is closed when room is next freed.
func (b *leaseBook) reserve(want int, lim flowLimits) (res reservation, freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := len(b.byAckID) + b.reserved.messages
	room, capacity := lim.messages-held, lim.messages
	avg := b.lastSize // 0 before the first pull
	if len(b.byAckID) > 0 {
		avg = max(1, b.bytes/int64(len(b.byAckID)))
	}
	if avg > 0 {
		room = min(room, int(max(0, lim.bytes-b.bytes-b.reserved.bytes)/avg))
		capacity = int(min(int64(capacity), lim.bytes/avg))
	} else if b.bytes >= lim.bytes {
		room = 0
	}
	need := min(want, max(1, capacity/minPullShare))
	if held == 0 {
		room, need = max(room, 1), 1
	}
	if room < need {
		return reservation{}, b.freed
	}
	res = reservation{messages: min(want, room)}
	res.bytes = int64(res.messages) * avg
	b.reserved.messages += res.messages
	b.reserved.bytes += res.bytes
	return res, b.freed
}

// awaitRoom reserves room as reserve does, waiting up to wait for the
// pipeline to free some while the process is at the cap. It returns 0 if
// none was freed in time, or ctx ended.
func (b *leaseBook) awaitRoom(ctx context.Context, want int, lim flowLimits, wait time.Duration) reservation {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		res, freed := b.reserve(want, lim)
		if res.messages > 0 {
			return res
		}
		select {
		case <-freed:
		case <-timer.C:
			return reservation{}
		case <-ctx.Done():
			return reservation{}
		}
	}
}

// unreserve gives back room a pull reserved and did not use.
func (b *leaseBook) unreserve(res reservation) {
	if res.messages <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved.messages -= res.messages
	b.reserved.bytes -= res.bytes
	b.signalFreed()
}

// signalFreed wakes the shards waiting for room. b.mu is held.
func (b *leaseBook) signalFreed() {
	close(b.freed)
	b.freed = make(chan struct{})
}

// outstanding returns how many messages and bytes the book keeps leased.
func (b *leaseBook) outstanding() (int, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byAckID), b.bytes
}

// highWater returns the most messages and bytes the book has kept leased
// at once.
func (b *leaseBook) highWater() (int, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak, b.peakBytes
}

// lease sets the deadline of messages just pulled to AckDeadline and
// keeps them leased from then on, in the room res reserved for the pull
// (reserve; none for messages pulled without). sizes are the messages' sizes, in the order of ackIDs. A
// failed request is logged, not returned: the messages then come back
// after the subscription's own deadline, and dedup removes them; the
// keeper tries again at the next renewal.
func (b *leaseBook) lease(ctx context.Context, r *reader, ackIDs []string, sizes []int64, pulledAt time.Time, res reservation) {
	deadline := r.cfg.AckDeadline
	ectx, cancel := context.WithTimeout(ctx, extendTimeout)
	defer cancel()
	if err := r.modifyDeadline(ectx, ackIDs, deadline); err != nil {
		slog.WarnContext(ctx, "pubsub ack deadline extension failed; the messages may come back after the subscription's deadline",
			"subscription", b.subscription, "messages", len(ackIDs), "error", err)
	}
	lb := &leaseBatch{
		r:       r,
		ackIDs:  ackIDs,
		live:    len(ackIDs),
		renewAt: pulledAt.Add(deadline / 2),
		expires: pulledAt.Add(r.cfg.AckExtension),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var pulled int64
	for i, id := range ackIDs {
		if old, ok := b.byAckID[id]; ok { // not from Pub/Sub: an ack id is new with each delivery
			b.drop(id, old)
		}
		b.byAckID[id] = leased{batch: lb, bytes: sizes[i]}
		b.bytes += sizes[i]
		pulled += sizes[i]
	}
	if len(ackIDs) > 0 {
		b.lastSize = max(1, pulled/int64(len(ackIDs)))
	}
	b.peak = max(b.peak, len(b.byAckID))
	b.peakBytes = max(b.peakBytes, b.bytes)
	b.batches[lb] = struct{}{}
	b.reserved.messages -= res.messages
	b.reserved.bytes -= res.bytes
	if res.messages > len(ackIDs) {
		b.signalFreed()
	}
	if !b.keeping {
		b.keeping = true
		go b.keep()
	}
}

// forget stops renewing the leases of acknowledged (or nacked) messages,
// which frees their room under the cap.
func (b *leaseBook) forget(ackIDs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, id := range ackIDs {
		l, ok := b.byAckID[id]
		if !ok {
			continue
		}
		n++
		b.drop(id, l)
	}
	if n > 0 {
		b.lastAck = time.Now()
		b.signalFreed()
	}
}

// drop removes one lease. b.mu is held.
func (b *leaseBook) drop(id string, l leased) {
	delete(b.byAckID, id)
	b.bytes -= l.bytes
	if l.batch.live--; l.batch.live <= 0 {
		delete(b.batches, l.batch)
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
// past AckExtension from its pull, and drops those past AckExtension. It
// returns when nothing is leased.
//
// It does not guess from the reader's silence that the job has ended: a
// sink that waits out an outage keeps the runner from calling the reader
// for as long as the outage lasts, and its messages must stay leased
// (an earlier rule that let leases lapse after a few quiet seconds had a
// 30 s BigQuery outage redeliver a fifth of a stream). The job says when
// it ends (ReleaseLeases).
//
// Renewals go out in requests within Pub/Sub's limits (modackIDsPerRequest
// ids, maxAckRequestBytes), several at a time (modackConcurrency), so
// that a full cap is renewed in a fraction of the half deadline it has.
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
		expired := 0
		b.mu.Lock()
		for lb := range b.batches {
			switch {
			case !now.Before(lb.expires):
				for _, id := range lb.ackIDs {
					if l, ok := b.byAckID[id]; ok && l.batch == lb {
						b.drop(id, l)
						expired++
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
					if l, ok := b.byAckID[id]; ok && l.batch == lb {
						renew[k] = append(renew[k], id)
					}
				}
				lb.renewAt = now.Add(d / 2)
			}
		}
		if expired > 0 {
			b.signalFreed()
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

// ReleaseLeases gives back every message this process keeps leased of the
// subscription (its full name, as Config.Subscription) for its Reads:
// Pub/Sub delivers them again at once, to whichever job reads
// the subscription next. A job calls it when its pipeline has ended in
// this process — returned, failed or cancelled — since nothing it still
// holds will be acknowledged. It returns how many messages it gave back.
//
// Without it, the leases of an ended job are renewed until AckExtension
// (10 minutes by default) before Pub/Sub delivers the messages again. Two
// jobs of one subscription in one process share the leases: one that
// ends gives back the other's too, which that one then reads again
// (duplicates that dedup removes, nothing lost).
func ReleaseLeases(ctx context.Context, subscription string) int {
	b := existingLeaseBook(subscription)
	if b == nil {
		return 0
	}
	return b.release(ctx)
}

// release nacks every message the book leases and forgets them.
func (b *leaseBook) release(ctx context.Context) int {
	give := map[*reader][]string{}
	b.mu.Lock()
	for id, l := range b.byAckID {
		give[l.batch.r] = append(give[l.batch.r], id)
		b.drop(id, l)
	}
	clear(b.batches)
	b.reserved = reservation{}
	b.signalFreed()
	b.mu.Unlock()
	n := 0
	for r, ids := range give {
		n += len(ids)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
		if err := r.modifyDeadline(rctx, ids, 0); err != nil {
			slog.WarnContext(ctx, "pubsub nack failed; the messages come back when their deadline ends",
				"subscription", b.subscription, "messages", len(ids), "error", err)
		}
		cancel()
	}
	if n > 0 {
		slog.InfoContext(ctx, "pubsub job ended; gave back what it had not acknowledged",
			"subscription", b.subscription, "messages", n)
	}
	return n
}
