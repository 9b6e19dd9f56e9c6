package pubsubio_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/transforms/pubsubio"
)

const testProject = "railyard-test"

// fixture is a pstest server with one topic and one subscription, reached
// through the real Go client.
type fixture struct {
	ps     *emulators.PubSub
	client *pubsub.Client
	topic  string
	sub    string
}

// newFixture starts pstest and points PUBSUB_EMULATOR_HOST at it, for the
// test and for the pipeline's workers (Prism runs them in this process).
// At the end of the test it gives back what the test's jobs still lease,
// as the streaming job does when it ends, before pstest stops.
func newFixture(t testing.TB, ackDeadline time.Duration) *fixture {
	t.Helper()
	ps := emulators.StartPubSub()
	t.Cleanup(func() { _ = ps.Close() })
	for k, v := range ps.Env() {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	f := &fixture{
		ps:     ps,
		client: client,
		topic:  fmt.Sprintf("projects/%s/topics/events", testProject),
		sub:    fmt.Sprintf("projects/%s/subscriptions/railyard-speed", testProject),
	}
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: f.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: f.sub, Topic: f.topic, AckDeadlineSeconds: int32(ackDeadline / time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pubsubio.ReleaseLeases(ctx, f.sub) })
	return f
}

// publish publishes the messages and returns their ids, in order.
func (f *fixture) publish(t testing.TB, msgs []*pubsub.Message) []string {
	t.Helper()
	ctx := context.Background()
	p := f.client.Publisher(f.topic)
	defer p.Stop()
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.Publish(ctx, m)
	}
	ids := make([]string, len(msgs))
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// messages returns what pstest holds, by message id.
func (f *fixture) messages() map[string]*pstest.Message {
	out := map[string]*pstest.Message{}
	for _, m := range f.ps.Server.Messages() {
		out[m.ID] = m
	}
	return out
}

// ackCounts returns how many messages were acked 0, 1, 2… times.
func (f *fixture) ackCounts() map[int]int {
	out := map[int]int{}
	for _, m := range f.ps.Server.Messages() {
		out[m.Acks]++
	}
	return out
}

// run runs the pipeline on the test runner under ctx.
func run(ctx context.Context, p *beam.Pipeline) (beam.PipelineResult, error) {
	runner := *ptest.Runner
	if runner == "" {
		runner = ptest.DefaultRunner()
	}
	return beam.Run(ctx, runner, p)
}
