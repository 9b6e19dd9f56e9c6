package streamjob

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/transforms/bqsink"
)

// TestStreamingWaitsOutABigQueryOutage takes BigQuery away for 30 s in
// the middle of a stream — a proxy between the job and both of the
// emulator's servers refuses connections and has closed the open ones;
// the emulator keeps its data — and brings it back. The job holds what
// it could not write, acknowledges nothing of it meanwhile, and once
// BigQuery is back writes every event once, with no write_failed dead
// letter, and acknowledges every message. The messages stay leased
// through the outage, though Prism does not run the reader meanwhile:
// none is delivered twice.
func TestStreamingWaitsOutABigQueryOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a streaming job for about a minute and a half")
	}
	e := startEnv(t, "stream_outage")
	rest := emulators.StartProxyForTest(t, os.Getenv(bqsink.EnvEmulatorHost))
	grpc := emulators.StartProxyForTest(t, os.Getenv(bqsink.EnvStorageEmulatorHost))
	t.Setenv(bqsink.EnvEmulatorHost, rest.Addr)
	t.Setenv(bqsink.EnvStorageEmulatorHost, grpc.Addr)

	msgs := live(900, 30, 7) // 30 s of stream
	tr := truthOf(t, msgs)
	sent := e.publishPaced(t, msgs)

	const outageAfter, outage = 8 * time.Second, 30 * time.Second
	var ackedDuringOutage int
	cut := time.AfterFunc(outageAfter, func() {
		rest.Down()
		grpc.Down()
		time.Sleep(2 * time.Second) // appends already answered may still be acknowledged
		before := acked(e)
		time.Sleep(outage - 2*time.Second)
		ackedDuringOutage = acked(e) - before
		if err := rest.Up(); err != nil {
			t.Error(err)
		}
		if err := grpc.Up(); err != nil {
			t.Error(err)
		}
	})
	defer cut.Stop()

	res, err := Run(context.Background(), e.config("stream-outage"))
	if err != nil {
		t.Fatalf("streaming job: %v", err)
	}
	sent()
	c := testenv.Counters(res)
	t.Logf("counters: %v", c)

	if ackedDuringOutage != 0 {
		t.Errorf("%d messages were acknowledged while BigQuery was away", ackedDuringOutage)
	}
	if c["write_failed"] != 0 {
		t.Errorf("write_failed = %d: the outage turned rows into dead letters", c["write_failed"])
	}
	if c["sink_unavailable_retries"] == 0 {
		t.Error("sink_unavailable_retries = 0: the outage was not counted")
	}
	checkStream(t, e, msgs, tr, false)
	if n := e.db.One(t, "SELECT COUNT(*) FROM {ds}.dead_letter WHERE reason = 'write_failed'"); n != "0" {
		t.Errorf("dead_letter holds %s write_failed rows", n)
	}
	for _, m := range e.ps.Server.Messages() {
		if m.Acks != 1 || m.Deliveries != 1 {
			t.Errorf("message %s was delivered %d times and acknowledged %d times, want once each: its lease must outlast the outage", m.ID, m.Deliveries, m.Acks)
		}
	}
}

// acked counts the messages pstest has seen acknowledged.
func acked(e *env) int {
	n := 0
	for _, m := range e.ps.Server.Messages() {
		if m.Acks > 0 {
			n++
		}
	}
	return n
}
