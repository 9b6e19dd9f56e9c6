package pubsubio

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/railyard/railyard/schemas/metricnames"
)

// injected fails the first Fail calls of one pstest method with Code
// (every call if Fail is negative), lets the others through, and records
// the number of ack ids of every call. pstest stays the server: this only
// puts a fault in front of it.
type injected struct {
	mu    sync.Mutex
	fail  int
	code  codes.Code
	sizes []int
}

func (in *injected) React(req any) (bool, any, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch r := req.(type) {
	case *pubsubpb.AcknowledgeRequest:
		in.sizes = append(in.sizes, len(r.AckIds))
	case *pubsubpb.ModifyAckDeadlineRequest:
		in.sizes = append(in.sizes, len(r.AckIds))
	}
	if in.fail == 0 {
		return false, nil, nil
	}
	if in.fail > 0 {
		in.fail--
	}
	return true, nil, status.Error(in.code, "injected by the test")
}

// calls returns the number of ack ids of each call seen.
func (in *injected) calls() []int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]int(nil), in.sizes...)
}

// faultyPubSub starts pstest with a fault in front of method, points
// PUBSUB_EMULATOR_HOST at it, publishes n messages to a new topic with a
// 10 s subscription, and returns the server, the subscription's name and
// a client.
func faultyPubSub(t *testing.T, method string, fault *injected, n int) (*pstest.Server, string, *pubsub.Client) {
	t.Helper()
	srv := pstest.NewServerWithAddress("127.0.0.1:0", pstest.ServerReactorOption{FuncName: method, Reactor: fault})
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
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
		srv.Publish(topic, []byte(fmt.Sprint(i)), nil)
	}
	return srv, sub, client
}

// pullAll pulls n messages and returns their ack ids.
func pullAll(t *testing.T, client *pubsub.Client, sub string, n int) []string {
	t.Helper()
	resp, err := client.SubscriptionAdminClient.Pull(context.Background(), &pubsubpb.PullRequest{Subscription: sub, MaxMessages: int32(n)})
	if err != nil || len(resp.ReceivedMessages) != n {
		t.Fatalf("pulled %d messages (%v), want %d", len(resp.GetReceivedMessages()), err, n)
	}
	ids := make([]string, n)
	for i, m := range resp.ReceivedMessages {
		ids[i] = m.AckId
	}
	return ids
}

func ackedTimes(srv *pstest.Server) map[int]int {
	out := map[int]int{}
	for _, m := range srv.Messages() {
		out[m.Acks]++
	}
	return out
}

func TestAcknowledge(t *testing.T) {
	t.Run("retries a request that fails transiently", func(t *testing.T) {
		fault := &injected{fail: 2, code: codes.Unavailable}
		srv, sub, client := faultyPubSub(t, "Acknowledge", fault, 3)
		ids := pullAll(t, client, sub, 3)
		r := newReader(Config{Subscription: sub}.withDefaults())
		n, err := r.acknowledge(context.Background(), ids)
		if n != 3 || err != nil {
			t.Fatalf("acknowledge = %d, %v; want 3 acked", n, err)
		}
		if got := fault.calls(); len(got) != 3 {
			t.Errorf("Acknowledge called %d times, want 3 (two failures, then success)", len(got))
		}
		if got := ackedTimes(srv); got[1] != 3 {
			t.Errorf("messages by acks: %v; want 3 acked once", got)
		}
	})

	t.Run("gives up after a few tries", func(t *testing.T) {
		fault := &injected{fail: -1, code: codes.Unavailable}
		srv, sub, client := faultyPubSub(t, "Acknowledge", fault, 2)
		ids := pullAll(t, client, sub, 2)
		r := newReader(Config{Subscription: sub}.withDefaults())
		n, err := r.acknowledge(context.Background(), ids)
		if n != 0 || err == nil || !strings.Contains(err.Error(), "injected by the test") {
			t.Fatalf("acknowledge = %d, %v; want 0 and the injected error", n, err)
		}
		if got := len(fault.calls()); got != ackAttempts {
			t.Errorf("Acknowledge called %d times, want %d", got, ackAttempts)
		}
		if got := ackedTimes(srv); got[0] != 2 {
			t.Errorf("messages by acks: %v; want 2 not acked", got)
		}
	})

	t.Run("does not retry a permanent failure", func(t *testing.T) {
		fault := &injected{fail: -1, code: codes.PermissionDenied}
		_, sub, client := faultyPubSub(t, "Acknowledge", fault, 1)
		ids := pullAll(t, client, sub, 1)
		r := newReader(Config{Subscription: sub}.withDefaults())
		if n, err := r.acknowledge(context.Background(), ids); n != 0 || status.Code(err) != codes.PermissionDenied {
			t.Fatalf("acknowledge = %d, %v; want 0 and PermissionDenied", n, err)
		}
		if got := len(fault.calls()); got != 1 {
			t.Errorf("Acknowledge called %d times, want 1", got)
		}
	})

	t.Run("sends at most 1000 ids a request", func(t *testing.T) {
		fault := &injected{}
		_, sub, _ := faultyPubSub(t, "Acknowledge", fault, 0)
		ids := make([]string, 2500)
		for i := range ids {
			ids[i] = fmt.Sprintf("unknown-%d:1", i) // pstest ignores unknown ack ids, as Pub/Sub does expired ones
		}
		r := newReader(Config{Subscription: sub}.withDefaults())
		if n, err := r.acknowledge(context.Background(), ids); n != 2500 || err != nil {
			t.Fatalf("acknowledge = %d, %v; want 2500", n, err)
		}
		if got := fault.calls(); fmt.Sprint(got) != "[1000 1000 500]" {
			t.Errorf("request sizes %v, want [1000 1000 500]", got)
		}
	})
}

// TestAckNeverFailsTheBundle runs Ack against a Pub/Sub that refuses
// every ack: the pipeline succeeds and counts the failures.
func TestAckNeverFailsTheBundle(t *testing.T) {
	fault := &injected{fail: -1, code: codes.Unavailable}
	srv, sub, client := faultyPubSub(t, "Acknowledge", fault, 5)
	ids := pullAll(t, client, sub, 5)

	p, s := beam.NewPipelineWithRoot()
	Ack(s, Config{Subscription: sub}, beam.CreateList(s, append(ids, "")))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("the pipeline failed on a failing ack: %v", err)
	}
	got := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		got[c.Name()] += c.Result()
	}
	if got[metricnames.PubsubAckFailures] != 5 || got[metricnames.PubsubAcks] != 0 {
		t.Errorf("counters %v; want 5 ack failures and no acks", got)
	}
	if got := ackedTimes(srv); got[0] != 5 {
		t.Errorf("messages by acks: %v; want 5 not acked", got)
	}
}

// TestReadGoesOnWhenTheLeaseFails reads from a Pub/Sub that refuses every
// ModifyAckDeadline: every message is still read, once, and none is acked
// by the reader.
func TestReadGoesOnWhenTheLeaseFails(t *testing.T) {
	const n = 30
	fault := &injected{fail: -1, code: codes.PermissionDenied}
	srv, sub, _ := faultyPubSub(t, "ModifyAckDeadline", fault, n)

	p, s := beam.NewPipelineWithRoot()
	recs := Read(s, Config{Subscription: sub, StopAfterIdle: time.Second, Shards: 1})
	passert.Count(s, recs, "records", n)
	if err := ptest.Run(p); err != nil {
		t.Fatal(err)
	}
	if got := len(fault.calls()); got == 0 {
		t.Error("the reader never tried to extend the deadlines")
	}
	for _, m := range srv.Messages() {
		if m.Deliveries != 1 || m.Acks != 0 {
			t.Errorf("message %s: delivered %d times, acked %d times; want 1 delivery and no ack", m.ID, m.Deliveries, m.Acks)
		}
	}
}
