package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/sample"
)

// TestSendThroughEdge sends a live stream through the collection edge:
// every message's data is in Pub/Sub byte for byte, once, and the edge's
// answers add up to the stream.
func TestSendThroughEdge(t *testing.T) {
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Host)
	ctx := context.Background()
	o := opts
	o.project = "railyard-test"
	client, err := pubsub.NewClient(ctx, o.project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := publish.Setup(ctx, client, o.topic(), o.subscription()); err != nil {
		t.Fatal(err)
	}
	ed, err := startEdge(&env{ps: ps, psClient: client}, o)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []sample.Message
	var want []string
	bad := 0
	for m := range sample.Live(sample.LiveConfig{Seed: 3, Start: time.Now(), Rate: 2000}, 1000) {
		msgs = append(msgs, m)
		want = append(want, string(m.Data))
		if m.Kind == sample.KindBad {
			bad++
		}
	}
	sent, err := sendThroughEdge(ctx, ed.url, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if err := ed.Close(); err != nil {
		t.Fatal(err)
	}
	if sent.records != len(msgs) || sent.accepted+sent.rejected != len(msgs) || sent.rejected != bad || sent.requests >= len(msgs)/2 {
		t.Errorf("sent %+v: want %d records in batches, %d of them rejected", sent, len(msgs), bad)
	}
	var got []string
	for _, m := range ps.Server.Messages() {
		got = append(got, string(m.Data))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Pub/Sub holds %d messages, want the %d sent, byte for byte", len(got), len(want))
	}
}
