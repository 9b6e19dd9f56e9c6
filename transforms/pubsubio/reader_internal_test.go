package pubsubio

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/runners/emulators"
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
	r.firstExtension, r.leaseTick, r.leaseExtension, r.aliveWithin = 200*time.Millisecond, 50*time.Millisecond, 30*time.Second, time.Second
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

func TestReaderLeases(t *testing.T) {
	t.Run("extends what it holds while alive, then acks it once", func(t *testing.T) {
		ps, r, ids := pulled(t, 3)
		r.begin()
		defer r.end()
		b := r.hold(ids, time.Now(), time.Now())
		waitFor(t, "extension", func() bool { return len(modacks(ps)) >= 3 })
		for _, d := range modacks(ps) {
			if d != 30 {
				t.Errorf("extended to %ds, want 30s", d)
			}
		}
		n, err := r.ack(context.Background(), []uint64{b, b})
		if err != nil || n != 3 {
			t.Fatalf("ack = %d, %v; want 3 acks", n, err)
		}
		if n, _ := r.ack(context.Background(), []uint64{b}); n != 0 {
			t.Errorf("a second ack of the batch acked %d messages", n)
		}
		for _, m := range ps.Server.Messages() {
			if m.Acks != 1 {
				t.Errorf("message %s acked %d times", m.ID, m.Acks)
			}
		}
		waitFor(t, "keeper stop", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return !r.keeping })
	})

	t.Run("gives back what it holds once it is dead", func(t *testing.T) {
		ps, r, ids := pulled(t, 2)
		r.begin()
		r.hold(ids, time.Now(), time.Now())
		r.end() // no shard part runs from here on
		waitFor(t, "nack", func() bool {
			for _, d := range modacks(ps) {
				if d == 0 {
					return true
				}
			}
			return false
		})
		if !r.oldestHeld().IsZero() {
			t.Error("still holding after the give-back")
		}
	})

	t.Run("the oldest held timestamp floors the watermark", func(t *testing.T) {
		_, r, ids := pulled(t, 2)
		r.begin()
		defer r.end()
		old, young := time.Now().Add(-time.Hour), time.Now()
		a := r.hold(ids[:1], young, time.Now())
		b := r.hold(ids[1:], old, time.Now())
		if got := r.oldestHeld(); !got.Equal(old) {
			t.Errorf("oldestHeld = %v, want %v", got, old)
		}
		if _, err := r.ack(context.Background(), []uint64{b}); err != nil {
			t.Fatal(err)
		}
		if got := r.oldestHeld(); !got.Equal(young) {
			t.Errorf("oldestHeld after ack = %v, want %v", got, young)
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
}
