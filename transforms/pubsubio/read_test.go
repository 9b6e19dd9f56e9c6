package pubsubio_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/pubsubio"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// describeRecord flattens a Record into a comparable string.
func describeRecord(r schemas.Record) string {
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + r.Attributes[k]
	}
	return fmt.Sprintf("%s|%q|%s|%d|%d", r.MessageID, r.Data, strings.Join(attrs, ","), r.PublishTime, r.IngestTime)
}

// describeTimestamp is a record's message id and element timestamp.
func describeTimestamp(et beam.EventTime, r schemas.Record) string {
	return fmt.Sprintf("%s@%d", r.MessageID, int64(et))
}

func messageID(r schemas.Record) string { return r.MessageID }

// countOne keys every element alike, to count them per window.
func countOne(string) (string, int) { return "all", 1 }

// failOnFn fails its bundle when it sees the record whose data is Marker.
type failOnFn struct {
	Marker string
}

func (fn *failOnFn) ProcessElement(r schemas.Record) error {
	if string(r.Data) == fn.Marker {
		return fmt.Errorf("failing on purpose on message %s", r.MessageID)
	}
	return nil
}

// windows collects, per test, what reportFn sees; Prism runs the workers
// in this process.
var windows = struct {
	sync.Mutex
	seen map[string]chan string
}{seen: map[string]chan string{}}

// reportFn sends each element (with its window) to the test named Test.
type reportFn struct {
	Test string
}

func (fn *reportFn) ProcessElement(w beam.Window, _ string, n int) {
	windows.Lock()
	ch := windows.seen[fn.Test]
	windows.Unlock()
	ch <- fmt.Sprintf("%v:%d", w, n)
}

func init() {
	register.Function1x1(describeRecord)
	register.Function2x1(describeTimestamp)
	register.Function1x1(messageID)
	register.DoFn1x1[schemas.Record, error](&failOnFn{})
	register.Function1x2(countOne)
	register.DoFn3x0[beam.Window, string, int](&reportFn{})
}

func testMessages(n int) []*pubsub.Message {
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		msgs[i] = &pubsub.Message{
			Data:       []byte(fmt.Sprintf(`{"event_id":"e%05d"}`, i)),
			Attributes: map[string]string{"source": "test", "n": fmt.Sprint(i)},
		}
	}
	return msgs
}

// counters returns the pipeline's counters by name, summed over steps.
func counters(pr beam.PipelineResult) map[string]int64 {
	out := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		out[c.Name()] += c.Result()
	}
	return out
}

// checkAckedOnce fails the test unless every message was delivered
// deliveries times and acked exactly once.
func checkAckedOnce(t *testing.T, f *fixture, deliveries int) {
	t.Helper()
	for _, m := range f.messages() {
		if m.Acks != 1 || (deliveries > 0 && m.Deliveries != deliveries) {
			t.Errorf("message %s: acked %d times, delivered %d times; want 1 ack", m.ID, m.Acks, m.Deliveries)
		}
	}
}

// readAndAck reads with cfg and acknowledges every Record as soon as it
// is read (a job does once what the message must become is durable).
func readAndAck(s beam.Scope, cfg pubsubio.Config) beam.PCollection {
	recs := pubsubio.Read(s, cfg)
	pubsubio.Ack(s, cfg, beam.ParDo(s, ackID, recs))
	return recs
}

func TestReadsEveryMessageOnceAndThePipelineAcksIt(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	ids := f.publish(t, testMessages(300))

	var want []string
	for _, m := range f.messages() {
		pt := m.PublishTime.UnixMicro()
		want = append(want, describeRecord(schemas.Record{Data: m.Data, Attributes: m.Attributes, MessageID: m.ID, PublishTime: pt, IngestTime: pt}))
	}
	if len(want) != len(ids) {
		t.Fatalf("pstest holds %d messages, published %d", len(want), len(ids))
	}

	p, s := beam.NewPipelineWithRoot()
	recs := readAndAck(s, pubsubio.Config{
		Subscription:       f.sub,
		StopAfterIdle:      2 * time.Second,
		MaxMessagesPerPull: 50,
		MaxBundleMessages:  100, // several parts, several bundles
	})
	passert.Equals(s, beam.ParDo(s, describeRecord, recs), beam.CreateList(s, want))

	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	checkAckedOnce(t, f, 1)
	got := counters(pr)
	if got["pubsub_messages_read"] != int64(len(ids)) || got["pubsub_acks"] != int64(len(ids)) {
		t.Errorf("counters %v; want %d messages read and acked", got, len(ids))
	}
}

func TestEventTimeFromAttributeElsePublishTime(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	rfc := time.Date(2026, 11, 1, 10, 0, 0, 123_000_000, time.UTC)
	ms := time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC)
	cases := []struct {
		attr string // "-" for none
		want func(publish time.Time) time.Time
	}{
		{rfc.Format(time.RFC3339Nano), func(time.Time) time.Time { return rfc }},
		{"2026-11-01T11:00:00.123+01:00", func(time.Time) time.Time { return rfc }},
		{fmt.Sprint(ms.UnixMilli()), func(time.Time) time.Time { return ms }},
		{"yesterday", func(p time.Time) time.Time { return p }},
		{"1999-12-31T23:59:59Z", func(p time.Time) time.Time { return p }}, // outside the contract's years
		{"", func(p time.Time) time.Time { return p }},
		{"-", func(p time.Time) time.Time { return p }},
	}
	msgs := make([]*pubsub.Message, len(cases))
	for i, c := range cases {
		msgs[i] = &pubsub.Message{Data: []byte(fmt.Sprint(i)), Attributes: map[string]string{"other": "x"}}
		if c.attr != "-" {
			msgs[i].Attributes["event_time"] = c.attr
		}
	}
	ids := f.publish(t, msgs)
	held := f.messages()
	var want []string
	for i, id := range ids {
		ts := cases[i].want(held[id].PublishTime)
		want = append(want, fmt.Sprintf("%s@%d", id, int64(mtime.FromTime(ts))))
	}

	p, s := beam.NewPipelineWithRoot()
	recs := pubsubio.Read(s, pubsubio.Config{
		Subscription:       f.sub,
		EventTimeAttribute: "event_time",
		StopAfterIdle:      time.Second,
	})
	passert.Equals(s, beam.ParDo(s, describeTimestamp, recs), beam.CreateList(s, want))
	if err := ptest.Run(p); err != nil {
		t.Fatal(err)
	}
}

func TestShardsShareTheLoadWithoutDuplicates(t *testing.T) {
	const n, shards = 3000, 4
	f := newFixture(t, 10*time.Second)
	ids := f.publish(t, testMessages(n))

	p, s := beam.NewPipelineWithRoot()
	recs := readAndAck(s, pubsubio.Config{
		Subscription:       f.sub,
		Shards:             shards,
		MaxMessagesPerPull: 100,
		MaxBundleMessages:  200,
		StopAfterIdle:      2 * time.Second,
	})
	passert.Equals(s, beam.ParDo(s, messageID, recs), beam.CreateList(s, ids))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	got := counters(pr)
	busy := 0
	for i := range shards {
		if got[fmt.Sprintf("pubsub_messages_read_shard_%02d", i)] > 0 {
			busy++
		}
	}
	t.Logf("counters: %v", got)
	if busy < 2 {
		t.Errorf("%d of %d shards read messages; want at least 2", busy, shards)
	}
	checkAckedOnce(t, f, 1)
}

func TestFailedBundleIsNotAckedAndTheNextRunReadsIt(t *testing.T) {
	const before, after = 300, 100
	f := newFixture(t, 10*time.Second)
	msgs := testMessages(before + after)
	marker := string(msgs[before+after/2].Data)
	// One shard in run 1: no other bundle is in flight when it fails (the
	// SDK harness races when it shuts down under running bundles, see
	// cancel_test.go).
	cfg := pubsubio.Config{
		Subscription:       f.sub,
		Shards:             1,
		MaxMessagesPerPull: 20,
		MaxBundleMessages:  40,
		PollInterval:       200 * time.Millisecond,
	}

	// Run 1 reads and acks the first messages, then fails on the marker,
	// published later. Prism does not retry a failed bundle: the job fails.
	f.publish(t, msgs[:before])
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &failOnFn{Marker: marker}, readAndAck(s, cfg))
	done := make(chan error, 1)
	go func() {
		_, err := run(context.Background(), p)
		done <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for f.ackCounts()[1] < before {
		if time.Now().After(deadline) {
			t.Fatalf("run 1 acked %v within 15s, want %d", f.ackCounts(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.publish(t, msgs[before:])
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "failing on purpose") {
			t.Fatalf("run 1: got error %v, want the marker's failure", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run 1 did not fail within 15s")
	}
	// The job gives back what its pipeline still leased when it ended.
	pubsubio.ReleaseLeases(context.Background(), f.sub)
	var left []string
	for _, m := range f.messages() {
		switch {
		case m.Acks == 0:
			left = append(left, m.ID)
		case string(m.Data) == marker:
			t.Fatalf("run 1 acked the marker, whose bundle failed")
		}
	}
	t.Logf("run 1 acked %d of %d messages before it failed", before+after-len(left), before+after)

	// Run 2 reads exactly what run 1 did not ack, the marker among it, at
	// once: run 1 gave it back when it failed.
	cfg.StopAfterIdle, cfg.Shards = 2*time.Second, 4
	p, s = beam.NewPipelineWithRoot()
	passert.Equals(s, beam.ParDo(s, messageID, readAndAck(s, cfg)), beam.CreateList(s, left))
	start := time.Now()
	if err := ptest.Run(p); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	t.Logf("run 2 read them in %v", time.Since(start))
	checkAckedOnce(t, f, 0)
}

// TestRunsUntilStoppedWithoutStopAfterIdle stops the job by deleting its
// subscription rather than by cancelling it: cancelling a running job is a
// data race in the SDK harness (see cancel_test.go).
func TestRunsUntilStoppedWithoutStopAfterIdle(t *testing.T) {
	const n = 100
	f := newFixture(t, 10*time.Second)
	f.publish(t, testMessages(n))

	p, s := beam.NewPipelineWithRoot()
	readAndAck(s, pubsubio.Config{Subscription: f.sub, Shards: 1, PollInterval: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := run(context.Background(), p)
		done <- err
	}()
	waitAcked(t, f, n, done)

	// Idle well past any StopAfterIdle the other tests use: still running.
	select {
	case err := <-done:
		t.Fatalf("the pipeline ended on its own while idle: %v", err)
	case <-time.After(3 * time.Second):
	}
	ctx := context.Background()
	if err := f.client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: f.sub}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "NotFound") || !strings.Contains(err.Error(), f.sub) {
			t.Errorf("the job ended with %v; want the pull's NotFound for %s", err, f.sub)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pipeline did not end within 10s of the subscription's deletion")
	}
	checkAckedOnce(t, f, 1)
}

// waitAcked waits up to 15 s for n messages to be acked once, failing if
// the pipeline ends first.
func waitAcked(t *testing.T, f *fixture, n int, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for f.ackCounts()[1] < n {
		if time.Now().After(deadline) {
			t.Fatalf("acks after 15s: %v", f.ackCounts())
		}
		select {
		case err := <-done:
			t.Fatalf("the pipeline ended before everything was read: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestWatermarkAdvancesWhileIdle(t *testing.T) {
	const n = 20
	f := newFixture(t, 10*time.Second)
	f.publish(t, testMessages(n))
	ch := make(chan string, 100)
	windows.Lock()
	windows.seen[t.Name()] = ch
	windows.Unlock()

	// One-second windows fire once the watermark passes their end. At the
	// end of the job it goes to the end of time; before, only the idle
	// watermark (now − lag) can move it there. One shard: an idle shard's
	// estimate can pass messages another shard has emitted in a bundle
	// Prism has not committed yet, which then arrive late (see the
	// reader's held batches).
	p, s := beam.NewPipelineWithRoot()
	recs := pubsubio.Read(s, pubsubio.Config{
		Subscription:     f.sub,
		Shards:           1,
		PollInterval:     200 * time.Millisecond,
		IdleWatermarkLag: 500 * time.Millisecond,
		StopAfterIdle:    5 * time.Second,
	})
	ids := beam.ParDo(s, messageID, beam.WindowInto(s, window.NewFixedWindows(time.Second), recs))
	beam.ParDo0(s, &reportFn{Test: t.Name()}, stats.SumPerKey(s, beam.ParDo(s, countOne, ids)))
	done := make(chan error, 1)
	go func() {
		_, err := run(context.Background(), p)
		done <- err
	}()

	total := 0
	for total < n {
		select {
		case got := <-ch:
			_, count, _ := strings.Cut(got, ":")
			var c int
			if _, err := fmt.Sscan(count, &c); err != nil {
				t.Fatalf("bad report %q: %v", got, err)
			}
			total += c
		case err := <-done:
			t.Fatalf("the job ended (%v) before the windows of %d of %d messages fired", err, n-total, n)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
