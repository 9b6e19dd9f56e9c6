package pubsubio_test

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/pubsubio"
)

// backlog is the size of TestBacklogEntersMemoryACapAtATime's backlog.
// The default runs in about a minute under -race on 2 cores; the
// reliability figure is 300,000, without -race:
//
//	go test -count=1 -run TestBacklogEntersMemoryACapAtATime -v ./transforms/pubsubio/ -args -backlog=300000
var backlog = flag.Int("backlog", 30_000, "messages in the flow-control backlog test")

// seen records, per test, how many times the pipeline read each message
// id (Prism runs the workers in this process).
var seen = struct {
	sync.Mutex
	byTest map[string]map[string]int
}{byTest: map[string]map[string]int{}}

func startSeeing(t *testing.T) map[string]int {
	seen.Lock()
	defer seen.Unlock()
	m := map[string]int{}
	seen.byTest[t.Name()] = m
	t.Cleanup(func() {
		seen.Lock()
		defer seen.Unlock()
		delete(seen.byTest, t.Name())
	})
	return m
}

// seeFn notes each record it sees for the test named Test, and keys its
// ack id by one of Keys keys, for a GroupByKey.
type seeFn struct {
	Test string
	Keys int
}

func (fn *seeFn) ProcessElement(r schemas.Record, emit func(int, string)) {
	seen.Lock()
	seen.byTest[fn.Test][r.MessageID]++
	seen.Unlock()
	h := fnv.New32a()
	h.Write([]byte(r.MessageID))
	emit(int(h.Sum32()%uint32(fn.Keys)), r.AckID)
}

// releaseFn emits the ack ids of a window once it has fired: as the
// streaming job acknowledges a message once its archive window is
// written.
func releaseFn(_ int, ackIDs func(*string) bool, emit func(string)) {
	var id string
	for ackIDs(&id) {
		emit(id)
	}
}

func init() {
	register.DoFn2x0[schemas.Record, func(int, string)](&seeFn{})
	register.Emitter2[int, string]()
	register.Function3x0(releaseFn)
	register.Iter1[string]()
}

// readAndAckPerWindow is a job that reads with cfg and acknowledges each
// message once the event-time window of its record has fired (windows of
// a second, late records taken for an hour): acknowledgements wait for
// the watermark, as the streaming job's wait for its archive windows.
func readAndAckPerWindow(t *testing.T, cfg pubsubio.Config) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	recs := pubsubio.Read(s, cfg)
	keyed := beam.ParDo(s, &seeFn{Test: t.Name(), Keys: 8}, recs)
	windowed := beam.WindowInto(s, window.NewFixedWindows(time.Second), keyed, beam.AllowedLateness(time.Hour))
	acks := beam.ParDo(s, releaseFn, beam.GroupByKey(s, windowed))
	pubsubio.Ack(s, cfg, acks)
	return p
}

// publishFast publishes n small messages with the client, in large
// batches, with the attributes attrs(i) (nil for none).
func publishFast(t *testing.T, f *fixture, n, size int, attrs func(i int) map[string]string) {
	t.Helper()
	ctx := context.Background()
	pub := f.client.Publisher(f.topic)
	pub.PublishSettings.CountThreshold = 1000
	pub.PublishSettings.DelayThreshold = 50 * time.Millisecond
	defer pub.Stop()
	pad := strings.Repeat("x", max(0, size-30))
	results := make([]*pubsub.PublishResult, n)
	for i := range n {
		m := &pubsub.Message{Data: fmt.Appendf(nil, `{"event_id":"e%07d","p":"%s"}`, i, pad)}
		if attrs != nil {
			m.Attributes = attrs(i)
		}
		results[i] = pub.Publish(ctx, m)
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReadOnce fails the test unless the job read every message of the
// subscription once, and pstest delivered each once and saw it acked
// once: nothing the job held was delivered again.
func checkReadOnce(t *testing.T, f *fixture, n int, reads map[string]int) {
	t.Helper()
	seen.Lock()
	defer seen.Unlock()
	if len(reads) != n {
		t.Errorf("the job read %d distinct messages; want %d", len(reads), n)
	}
	twice := 0
	for _, c := range reads {
		if c > 1 {
			twice++
		}
	}
	delivered, acked := map[int]int{}, map[int]int{}
	for _, m := range f.ps.Server.Messages() {
		delivered[m.Deliveries]++
		acked[m.Acks]++
	}
	if twice > 0 || len(delivered) != 1 || delivered[1] != n || len(acked) != 1 || acked[1] != n {
		t.Errorf("%d messages read more than once; pstest delivery counts %v and ack counts %v (count: messages); want all %d delivered and acked once",
			twice, delivered, acked, n)
	}
}

// peakRSS returns the test process's peak resident set (VmHWM).
func peakRSS(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestBacklogEntersMemoryACapAtATime: a backlog many times the cap drains
// through a job whose acknowledgements wait for windows to fire, with
// never more than the cap pulled and not yet acknowledged (the lease
// book's own high-water mark), every message read and delivered once.
func TestBacklogEntersMemoryACapAtATime(t *testing.T) {
	n := *backlog
	limit := max(1000, n/10)
	f := newFixture(t, 10*time.Second)
	start := time.Now()
	publishFast(t, f, n, 60, nil)
	t.Logf("published %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	reads := startSeeing(t)
	pubsubio.LeaseHighWater(f.sub) // from this test on
	cfg := pubsubio.Config{
		Subscription:           f.sub,
		AckDeadline:            20 * time.Second,
		AckExtension:           10 * time.Minute,
		StopAfterIdle:          3 * time.Second,
		MaxOutstandingMessages: limit,
		// pstest scans every message it holds on each Pull, and every 10 ms
		// besides: with 300,000 a Pull can take over a second, and one cut
		// short counts as empty (idle), and its messages come back later.
		PullTimeout: 10 * time.Second,
	}
	start = time.Now()
	pr, err := ptest.RunWithMetrics(readAndAckPerWindow(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	peak, peakBytes := pubsubio.LeaseHighWater(f.sub)
	c := counters(pr)
	t.Logf("drained %d messages in %v (%.0f/s) under a cap of %d: at most %d messages (%d bytes) outstanding; %d waits at the cap; peak RSS of the test process %s",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), limit, peak, peakBytes, c["pubsub_flow_control_waits"], peakRSS(t))
	if peak > limit {
		t.Errorf("%d messages were outstanding at once; the cap is %d", peak, limit)
	}
	if peak < limit/2 {
		t.Errorf("at most %d messages were outstanding, under half the cap of %d: the test did not reach it", peak, limit)
	}
	if c["pubsub_messages_read"] != int64(n) || c["pubsub_acks"] != int64(n) {
		t.Errorf("counters %v; want %d messages read and acked", c, n)
	}
	checkReadOnce(t, f, n, reads)
}

// TestOutstandingBytesAreCapped: with large messages the byte cap binds
// first. A pull reserves the average message size for each message it may
// bring; the messages here are all of one size, so the bytes held stay
// within a few messages of the cap (without the average, four shards'
// pulls under way could bring 800 KB more).
func TestOutstandingBytesAreCapped(t *testing.T) {
	const (
		n, size  = 4000, 2000
		limit    = 1 << 20 // about 500 messages
		pullSize = 100
		shards   = 4
	)
	f := newFixture(t, 10*time.Second)
	publishFast(t, f, n, size, nil)
	reads := startSeeing(t)
	pubsubio.LeaseHighWater(f.sub)
	cfg := pubsubio.Config{
		Subscription:        f.sub,
		Shards:              shards,
		MaxMessagesPerPull:  pullSize,
		StopAfterIdle:       3 * time.Second,
		MaxOutstandingBytes: limit,
	}
	if _, err := ptest.RunWithMetrics(readAndAckPerWindow(t, cfg)); err != nil {
		t.Fatal(err)
	}
	peak, peakBytes := pubsubio.LeaseHighWater(f.sub)
	t.Logf("at most %d messages, %d bytes outstanding under a cap of %d bytes", peak, peakBytes, limit)
	if over := int64(shards * (size + 100)); peakBytes > limit+over {
		t.Errorf("%d bytes were outstanding at once; the cap is %d, plus at most %d for the pulls under way", peakBytes, limit, over)
	}
	if peakBytes < limit/2 {
		t.Errorf("at most %d bytes were outstanding, under half the cap of %d: the test did not reach it", peakBytes, limit)
	}
	checkReadOnce(t, f, n, reads)
}

// TestRenewalsKeepUpAtTheCap: with 10 s leases and the cap full of
// messages the job holds for about four deadlines (their event times lie
// 35 s after their publication, and their windows wait for the
// watermark), every lease is renewed in time: no message is delivered
// twice, and pstest saw no lease go longer than 8 s without a renewal.
// The shards at the cap are not idle: the job does not stop (it has
// StopAfterIdle 3 s) before it has read the messages beyond the cap.
func TestRenewalsKeepUpAtTheCap(t *testing.T) {
	const (
		n     = 7500
		limit = 5000 // two ModifyAckDeadline requests per renewal round
		hold  = 35 * time.Second
	)
	deadline := 10 * time.Second
	f := newFixture(t, deadline)
	eventTime := time.Now().Add(hold).Format(time.RFC3339Nano)
	publishFast(t, f, n, 60, func(int) map[string]string { return map[string]string{"ts": eventTime} })
	reads := startSeeing(t)
	pubsubio.LeaseHighWater(f.sub)
	cfg := pubsubio.Config{
		Subscription:           f.sub,
		AckDeadline:            deadline,
		AckExtension:           5 * time.Minute,
		EventTimeAttribute:     "ts",
		StopAfterIdle:          3 * time.Second,
		MaxOutstandingMessages: limit,
	}
	pr, err := ptest.RunWithMetrics(readAndAckPerWindow(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := pubsubio.LeaseHighWater(f.sub)
	c := counters(pr)
	if peak > limit || peak < limit*9/10 {
		t.Errorf("at most %d messages were outstanding at once; want the cap of %d full, never over", peak, limit)
	}
	if c["pubsub_flow_control_waits"] == 0 {
		t.Errorf("no shard waited at the cap")
	}
	var longestGap, longestHeld time.Duration
	for _, m := range f.ps.Server.Messages() {
		var at []time.Time
		for _, ma := range m.Modacks {
			at = append(at, ma.ReceivedAt)
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(at); i++ {
			longestGap = max(longestGap, at[i].Sub(at[i-1]))
		}
		if len(at) > 0 {
			longestHeld = max(longestHeld, at[len(at)-1].Sub(at[0]))
		}
	}
	t.Logf("longest lease without a renewal %v, longest renewed %v, %d waits at the cap", longestGap, longestHeld, c["pubsub_flow_control_waits"])
	if longestHeld < 2*deadline {
		t.Errorf("the job renewed a lease for at most %v; the test wants it to hold messages past several deadlines of %v", longestHeld, deadline)
	}
	if longestGap > deadline*8/10 {
		t.Errorf("a lease went %v without a renewal; the deadline is %v", longestGap, deadline)
	}
	checkReadOnce(t, f, n, reads)
}
