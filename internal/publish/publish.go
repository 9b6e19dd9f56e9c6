// Package publish sends sample messages to a Pub/Sub topic through the
// real Go client, either as fast as it goes or in real time, keeping to
// each message's publish time. The local runner, the streaming job's
// tests and its benchmark use it against pstest.
package publish

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/internal/sample"
)

// Setup creates topic and a subscription to it, with the longest ack
// deadline Pub/Sub allows (the streaming job extends it itself too).
func Setup(ctx context.Context, client *pubsub.Client, topic, subscription string) error {
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: subscription, Topic: topic, AckDeadlineSeconds: 600,
	}); err != nil {
		return fmt.Errorf("create subscription %s: %w", subscription, err)
	}
	return nil
}

// Sent is what Messages did.
type Sent struct {
	// IDs are the message ids Pub/Sub gave, in the order of the messages.
	IDs []string
	// Behind is how far the publisher fell behind the messages' publish
	// times at worst (paced runs only).
	Behind time.Duration
}

// Messages publishes msgs to topic in order. With paced set, message i is
// sent no earlier than start + (its PublishTime − the first one's): the
// stream is replayed in real time. It returns once every message is
// acknowledged by Pub/Sub, or at the first error.
func Messages(ctx context.Context, client *pubsub.Client, topic string, msgs []sample.Message, paced bool) (Sent, error) {
	p := client.Publisher(topic)
	// One publishing goroutine keeps the messages in order: the first of
	// two duplicates is published, and so delivered, first.
	p.PublishSettings.NumGoroutines = 1
	defer p.Stop()
	results := make([]*pubsub.PublishResult, len(msgs))
	var sent Sent
	start := time.Now()
	for i, m := range msgs {
		if paced {
			due := start.Add(time.Duration(m.PublishTime-msgs[0].PublishTime) * time.Microsecond)
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return sent, ctx.Err()
				}
			} else {
				sent.Behind = max(sent.Behind, -wait)
			}
		}
		results[i] = p.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: m.Attributes})
	}
	sent.IDs = make([]string, len(msgs))
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			return sent, fmt.Errorf("publish message %d: %w", i, err)
		}
		sent.IDs[i] = id
	}
	return sent, nil
}
