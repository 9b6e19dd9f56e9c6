package pubsubio

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/internal/emulators"
)

// leasing starts pstest with n messages pulled by r, and a lease book on
// fast timings: 2s leases, renewed every second, checked every 50ms.
func leasing(t *testing.T, n int, extension time.Duration) (*emulators.PubSub, *reader, *leaseBook, []string) {
	t.Helper()
	ps, r, ids := pulled(t, n)
	r.cfg.AckDeadline, r.cfg.AckExtension = 2*time.Second, extension
	b := newLeaseBook(r.cfg.Subscription)
	b.tick = 50 * time.Millisecond
	b.lease(context.Background(), r, ids, make([]int64, len(ids)), time.Now(), reservation{})
	return ps, r, b, ids
}

// redelivered pulls what the subscription would deliver now.
func redelivered(t *testing.T, r *reader) int {
	t.Helper()
	sub, err := r.subscriber()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sub.Pull(context.Background(), &pubsubpb.PullRequest{Subscription: r.cfg.Subscription, MaxMessages: 100, ReturnImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetReceivedMessages())
}

func keeping(b *leaseBook) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keeping
}

func TestLeaseBook(t *testing.T) {
	t.Run("renews the leases until Ack, however long the reader is quiet", func(t *testing.T) {
		ps, r, b, ids := leasing(t, 3, time.Minute)
		// Nothing reads or acknowledges meanwhile, as when a sink waits
		// out an outage: the leases are still renewed.
		time.Sleep(4500 * time.Millisecond) // past two leases of 2s
		if n := redelivered(t, r); n != 0 {
			t.Errorf("%d leased messages were delivered again after 4.5s of 2s leases", n)
		}
		if b.leased() != len(ids) {
			t.Errorf("%d of %d messages leased after 4.5s without a read", b.leased(), len(ids))
		}
		renewals := len(modacks(ps)) - len(ids)
		if renewals < 2*len(ids) {
			t.Errorf("%d renewals in 3.5s, want at least two per message", renewals)
		}
		if !b.lastAcked().IsZero() {
			t.Errorf("last acknowledged at %v before any Ack", b.lastAcked())
		}
		b.forget([]string{"not-of-this-book"})
		if !b.lastAcked().IsZero() {
			t.Errorf("an ack id the book did not lease counts as an acknowledgement")
		}
		ackedAt := time.Now()
		b.forget(ids)
		if b.leased() != 0 {
			t.Errorf("%d messages still leased after they were forgotten", b.leased())
		}
		// A reader with StopAfterIdle counts acknowledgements as activity.
		if got := b.lastAcked(); got.Before(ackedAt) || time.Since(got) > time.Second {
			t.Errorf("last acknowledged at %v, want the Ack at %v", got, ackedAt)
		}
		waitFor(t, "keeper stop", func() bool { return !keeping(b) })
		before := len(modacks(ps))
		time.Sleep(time.Second)
		if after := len(modacks(ps)); after != before {
			t.Errorf("%d renewals after Ack", after-before)
		}
	})

	t.Run("gives the leases back when the job ends", func(t *testing.T) {
		_, r, b, ids := leasing(t, 2, time.Minute)
		if got := b.release(context.Background()); got != len(ids) {
			t.Errorf("released %d messages, want %d", got, len(ids))
		}
		if b.leased() != 0 {
			t.Errorf("%d messages still leased after the release", b.leased())
		}
		// Given back at once, not at the end of the 2s lease.
		deadline := time.Now().Add(time.Second)
		for got := 0; got < len(ids); got += redelivered(t, r) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d messages came back within 1s of the release", got, len(ids))
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitFor(t, "keeper stop", func() bool { return !keeping(b) })
	})

	t.Run("stops renewing at the ack extension", func(t *testing.T) {
		ps, r, b, ids := leasing(t, 2, 3*time.Second)
		waitFor(t, "the leases dropped", func() bool { return b.leased() == 0 })
		for _, d := range modacks(ps) {
			if d > 2 {
				t.Errorf("a lease of %ds, longer than the 2s deadline", d)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for got := 0; got < len(ids); got += redelivered(t, r) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d messages came back within 5s of the extension's end", got, len(ids))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
