package streamjob

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/testenv"
)

var (
	soak     = flag.Duration("soak", 0, "run TestStreamingSoak for this long (at least 10m to prove the job's Prism configuration); 0 skips it")
	soakRate = flag.Int("soak_rate", 300, "messages a second TestStreamingSoak publishes")
)

// TestStreamingSoak runs the streaming job with its default windowing
// (1 s early firings, 2 minutes of allowed lateness, one-minute windows
// collected every minute from the third on) against a live stream for
// -soak, and checks it neither fails (Prism's early-firing crash, see
// TestPrismEarlyFiringCrash) nor loses or doubles a record:
//
//	go test ./pipelines/streaming/streamjob -run TestStreamingSoak -soak=10m -timeout=30m -v
func TestStreamingSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("a soak run; give -soak=10m")
	}
	e := startEnv(t, "stream_soak")
	msgs := live(int(soak.Seconds())*(*soakRate), *soakRate, 3)
	tr := truthOf(t, msgs)
	sent := e.publishPaced(t, msgs)
	cfg := e.config("stream-soak")
	cfg.ReadShards = DefaultReadShards
	cfg.ArchiveWindow = DefaultArchiveWindow
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("the streaming job failed after %v: %v", time.Since(start).Round(time.Second), err)
	}
	s := sent()
	c := testenv.Counters(res)
	t.Logf("ran %v; %d messages at %d/s, publisher at most %v behind; counters: %v",
		time.Since(start).Round(time.Second), len(msgs), *soakRate, s.Behind, c)
	if c["records_in"] != int64(len(msgs)) {
		t.Errorf("records_in = %d, want the %d messages published", c["records_in"], len(msgs))
	}
	// What landed, read back (the counters of the last bundles may be
	// missing from the result Prism returns when the job stops idle).
	if got := e.db.One(t, "SELECT COUNT(DISTINCT event_id) FROM {ds}.events_speed"); got != fmt.Sprint(len(tr.events)) {
		t.Errorf("events_speed holds %s distinct events, want the %d unique events", got, len(tr.events))
	}
	for _, m := range e.ps.Server.Messages() {
		if m.Acks == 0 {
			t.Errorf("message %s was never acknowledged", m.ID)
			break
		}
	}
}
