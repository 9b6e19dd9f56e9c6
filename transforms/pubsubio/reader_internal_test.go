package pubsubio

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/internal/emulators"
)

// pulled starts pstest, publishes n messages and pulls them: the reader
// under test then holds their ack ids.
func pulled(t *testing.T, n int) (*emulators.PubSub, *reader, []string) {
	t.Helper()
	ps := emulators.StartPubSub()
	t.Cleanup(func() { _ = ps.Close() })
	for k, v := range ps.Env() {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "railyard-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	topic, sub := "projects/railyard-test/topics/events", "projects/railyard-test/subscriptions/speed"
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ps.Server.Publish(topic, []byte(fmt.Sprint(i)), nil)
	}
	resp, err := client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: int32(n)})
	if err != nil || len(resp.ReceivedMessages) != n {
		t.Fatalf("pulled %d messages (%v), want %d", len(resp.GetReceivedMessages()), err, n)
	}
	var ids []string
	for _, m := range resp.ReceivedMessages {
		ids = append(ids, m.AckId)
	}
	r := newReader(Config{Subscription: sub}.withDefaults())
	return ps, r, ids
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5s", what)
		}
	}
}

// modacks returns the deadlines of the ModifyAckDeadline calls pstest saw.
func modacks(ps *emulators.PubSub) []int32 {
	var out []int32
	for _, m := range ps.Server.Messages() {
		for _, ma := range m.Modacks {
			out = append(out, ma.AckDeadline)
		}
	}
	return out
}

func TestReaderHolds(t *testing.T) {
	t.Run("the oldest held timestamp floors the watermark until it is released", func(t *testing.T) {
		_, r, ids := pulled(t, 2)
		old, young := time.Now().Add(-time.Hour), time.Now()
		a := r.hold(ids[:1], young, time.Now())
		b := r.hold(ids[1:], old, time.Now())
		if got := r.oldestHeld(); !got.Equal(old) {
			t.Errorf("oldestHeld = %v, want %v", got, old)
		}
		r.release([]uint64{b})
		if got := r.oldestHeld(); !got.Equal(young) {
			t.Errorf("oldestHeld after release = %v, want %v", got, young)
		}
		if err := r.nackAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		_, ok := r.held[a]
		r.mu.Unlock()
		if ok || !r.oldestHeld().IsZero() {
			t.Error("nackAll left a batch held")
		}
	})

	t.Run("a failing part gives back at once what it holds, and its leases are no longer renewed", func(t *testing.T) {
		ps, r, ids := pulled(t, 3)
		r.cfg.AckDeadline, r.cfg.AckExtension = 10*time.Second, time.Minute
		book := newLeaseBook(r.cfg.Subscription)
		book.tick = 50 * time.Millisecond
		r.book = book
		book.lease(context.Background(), r, ids, make([]int64, len(ids)), time.Now(), reservation{})
		r.hold(ids[:2], time.Now(), time.Now()) // the part running now
		if err := r.nackAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := book.leased(); got != 1 {
			t.Errorf("%d messages leased after the give-back, want the 1 no part holds", got)
		}
		nacks := 0
		for _, d := range modacks(ps) {
			if d == 0 {
				nacks++
			}
		}
		if nacks != 2 {
			t.Errorf("%d messages nacked, want the 2 held", nacks)
		}
		if n := redelivered(t, r); n != 2 {
			t.Errorf("%d messages delivered again at once, want 2", n)
		}
		book.release(context.Background())
	})
}
