package pubsubio_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/pubsubio"
)

func ackID(r schemas.Record) string { return r.AckID }

// withAckID is the record's message id, marked when it has no ack id.
func withAckID(r schemas.Record) string {
	if r.AckID == "" {
		return r.MessageID + " without an ack id"
	}
	return r.MessageID
}

func init() {
	register.Function1x1(ackID)
	register.Function1x1(withAckID)
}

// shiftClock moves pstest's clock (deadlines and redeliveries) d ahead
// of the wall clock.
func shiftClock(f *fixture, d time.Duration) {
	f.ps.Server.SetTimeNowFunc(func() time.Time { return time.Now().Add(d) })
}

// pullNow pulls what the subscription would deliver now, without waiting.
func pullNow(t *testing.T, f *fixture) []*pubsubpb.ReceivedMessage {
	t.Helper()
	resp, err := f.client.SubscriptionAdminClient.Pull(context.Background(),
		&pubsubpb.PullRequest{Subscription: f.sub, MaxMessages: 1000, ReturnImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetReceivedMessages()
}

// TestReadLeavesAcksToThePipeline: the reader acks nothing and extends
// each message's deadline at once; Ack acks them. pstest's clock is moved
// forward instead of the test sleeping through the deadlines.
func TestReadLeavesAcksToThePipeline(t *testing.T) {
	const n = 60
	f := newFixture(t, 10*time.Second)
	ids := f.publish(t, testMessages(n))
	cfg := pubsubio.Config{
		Subscription:       f.sub,
		AckExtension:       time.Minute,
		MaxMessagesPerPull: 25, // three pulls, three extensions
		StopAfterIdle:      2 * time.Second,
	}

	// Run 1 reads every message, with its ack id, and acks none.
	p, s := beam.NewPipelineWithRoot()
	recs := pubsubio.Read(s, cfg)
	passert.Equals(s, beam.ParDo(s, withAckID, recs), beam.CreateList(s, ids))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := counters(pr); got["pubsub_messages_read"] != n || got["pubsub_acks"] != 0 {
		t.Errorf("counters %v; want %d messages read and no acks", got, n)
	}
	for _, m := range f.messages() {
		var deadlines []int32
		for _, ma := range m.Modacks {
			deadlines = append(deadlines, ma.AckDeadline)
		}
		if m.Acks != 0 || m.Deliveries != 1 || len(deadlines) != 1 || deadlines[0] != 60 {
			t.Errorf("message %s: %d acks, %d deliveries, deadlines set %v; want no ack, 1 delivery, one extension to 60s",
				m.ID, m.Acks, m.Deliveries, deadlines)
		}
	}

	t.Run("nothing comes back once the subscription's own deadline has passed", func(t *testing.T) {
		shiftClock(f, 11*time.Second)
		if got := pullNow(t, f); len(got) != 0 {
			t.Errorf("%d messages came back after 11s; the extension to 60s should hold them", len(got))
		}
	})

	// Past the extension every message comes back: the reader never acked
	// it. Run 2 reads them again and acks them with Ack.
	t.Run("Ack acknowledges what comes back after the extension", func(t *testing.T) {
		shiftClock(f, 61*time.Second)
		p, s := beam.NewPipelineWithRoot()
		recs := pubsubio.Read(s, cfg)
		passert.Equals(s, beam.ParDo(s, messageID, recs), beam.CreateList(s, ids))
		pubsubio.Ack(s, cfg, beam.ParDo(s, ackID, recs))
		pr, err := ptest.RunWithMetrics(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := counters(pr); got["pubsub_acks"] != n || got["pubsub_ack_failures"] != 0 {
			t.Errorf("counters %v; want %d acks and no failures", got, n)
		}
		checkAckedOnce(t, f, 2)
		shiftClock(f, 5*time.Minute)
		if got := pullNow(t, f); len(got) != 0 {
			t.Errorf("%d acked messages came back", len(got))
		}
	})
}
