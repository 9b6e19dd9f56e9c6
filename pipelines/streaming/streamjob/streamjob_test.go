package streamjob

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

func lag(m sample.Message) (time.Duration, error) {
	ev, err := schemas.ParseEvent(m.Data)
	if err != nil {
		return 0, fmt.Errorf("event %s of the sample does not parse: %w", m.EventID, err)
	}
	return time.Duration(m.PublishTime-ev.EventTime) * time.Microsecond, nil
}

// The columns an event keeps from one layer to the other: all but layer
// and source_uri, which say where it was read, and message_id and
// ingest_time, which say which copy won. The batch layer keeps the copy
// published first; the stream the copy that reached dedup first, and
// copies pulled in one batch reach it in any order (dedup.Streaming).
const eventColumns = `event_id, event_type, event_time, source, platform, user_id, session_id, country, value,
	TO_JSON_STRING(properties), TO_JSON_STRING(extra)`

// speedMetricsSQL is the final answer of the speed layer per window: the
// latest pane, as the metrics_minute view picks it.
const speedMetricsSQL = `SELECT window_start, event_type, source, platform, country, events, users, value_sum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, event_type, source, platform, country
                               ORDER BY processed_at DESC, pane_index DESC) AS latest
  FROM {ds}.metrics_minute_speed) WHERE latest = 1 AND window_start >= TIMESTAMP_MICROS(%d)`

const batchMetricsSQL = `SELECT window_start, event_type, source, platform, country, events, users, value_sum
  FROM {ds}.metrics_minute_batch WHERE window_start >= TIMESTAMP_MICROS(%d)`

// checkStream checks what a stream of msgs became in the speed tables:
// every valid event in events_speed (once, or at least once with
// atLeastOnce), every bad record in dead_letter with its bytes.
func checkStream(t *testing.T, e *env, msgs []sample.Message, tr truth, atLeastOnce bool) {
	t.Helper()
	ids := e.db.Query(t, "SELECT event_id, COUNT(*) FROM {ds}.events_speed GROUP BY event_id")
	seen := map[string]bool{}
	for _, row := range ids {
		id, n, _ := strings.Cut(row, "|")
		seen[id] = true
		if !tr.events[id] {
			t.Errorf("events_speed holds %s, which is not a valid event of the stream", id)
		}
		if n != "1" && !atLeastOnce {
			t.Errorf("events_speed holds event %s %s times, want once", id, n)
		}
	}
	for id := range tr.events {
		if !seen[id] {
			t.Errorf("event %s of the stream is not in events_speed", id)
		}
	}
	dead := e.db.Query(t, "SELECT reason, payload FROM {ds}.dead_letter WHERE layer = 'speed'")
	if atLeastOnce {
		dead = slices.Compact(dead)
	}
	if !slices.Equal(dead, tr.bad) {
		t.Errorf("dead_letter holds %d speed rows, want the stream's %d bad records with their raw bytes", len(dead), len(tr.bad))
	}
	if got := e.db.One(t, "SELECT COUNT(*) FROM (SELECT DISTINCT event_id FROM {ds}.events)"); got != fmt.Sprint(len(tr.events)) {
		t.Errorf("the events view holds %s event ids, want %d", got, len(tr.events))
	}
	if got := e.db.One(t, "SELECT COUNT(*) FROM {ds}.events"); got != fmt.Sprint(len(tr.events)) {
		t.Errorf("the events view holds %s rows, want one per event, %d", got, len(tr.events))
	}
}

// checkParity runs the batch job over the archive and checks it reads
// every message the stream read, and gets the same events and the same
// final metrics as the stream, for the windows from `from` on (earlier
// ones hold the events that came hours late, which only the batch layer
// counts).
func checkParity(t *testing.T, e *env, msgs []sample.Message, tr truth, speedMetrics []string, from time.Time) {
	t.Helper()
	got := e.runBatch(t, "batch-parity")
	if got["lake_lines_read"] < int64(len(msgs)) {
		t.Errorf("the batch job read %d lines from the archive, want at least the %d messages", got["lake_lines_read"], len(msgs))
	}
	speedEvents := e.db.Query(t, "SELECT "+eventColumns+" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingest_time) AS n FROM {ds}.events_speed) WHERE n = 1")
	batchEvents := e.db.Query(t, "SELECT "+eventColumns+" FROM {ds}.events_batch")
	if len(batchEvents) != len(tr.events) {
		t.Errorf("events_batch holds %d events, want %d", len(batchEvents), len(tr.events))
	}
	if diff := symmetricDiff(speedEvents, batchEvents); len(diff) > 0 {
		t.Errorf("the batch job over the archive and the stream disagree on %d events, first: %v", len(diff), diff[:min(3, len(diff))])
	}
	batchMetrics := e.db.Query(t, fmt.Sprintf(batchMetricsSQL, from.UnixMicro()))
	if len(batchMetrics) == 0 {
		t.Fatal("the batch job computed no metrics from the archive")
	}
	if diff := symmetricDiff(speedMetrics, batchMetrics); len(diff) > 0 {
		t.Errorf("final speed metrics and batch metrics over the archive differ in %d rows, first: %v", len(diff), diff[:min(3, len(diff))])
	}
}

// symmetricDiff returns the rows of a or b that the other lacks, marked.
func symmetricDiff(a, b []string) []string {
	var out []string
	for _, r := range a {
		if _, ok := slices.BinarySearch(b, r); !ok {
			out = append(out, "speed only: "+r)
		}
	}
	for _, r := range b {
		if _, ok := slices.BinarySearch(a, r); !ok {
			out = append(out, "batch only: "+r)
		}
	}
	return out
}

func TestStreamingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a streaming job for about a minute")
	}
	e := startEnv(t, "stream_e2e")
	msgs := live(1200, 60, 1)
	tr := truthOf(t, msgs)
	from := time.UnixMicro(msgs[0].PublishTime).Add(-3 * time.Minute)
	sent := e.publishPaced(t, msgs)

	res, err := Run(context.Background(), e.config("stream-e2e"))
	if err != nil {
		t.Fatalf("streaming job: %v", err)
	}
	if s := sent(); s.Behind > 2*time.Second {
		t.Logf("the publisher fell %v behind the stream's clock", s.Behind)
	}
	c := testenv.Counters(res)
	t.Logf("counters: %v", c)

	t.Run("reconciles exactly", func(t *testing.T) {
		if c["records_in"] != int64(len(msgs)) {
			t.Errorf("records_in = %d, want the %d messages published", c["records_in"], len(msgs))
		}
		if got, want := c["events_valid"]-c["duplicates"], int64(len(tr.events)); got != want {
			t.Errorf("events_valid - duplicates = %d, want %d unique events", got, want)
		}
		if c["duplicates"] != int64(tr.duplicates) || c["dead_letters"] != int64(len(tr.bad)) {
			t.Errorf("duplicates = %d, dead_letters = %d; want %d and %d", c["duplicates"], c["dead_letters"], tr.duplicates, len(tr.bad))
		}
		if in, out := c["records_in"], c["events_valid"]+c["dead_letters"]; in != out {
			t.Errorf("records_in %d != events_valid + dead_letters %d", in, out)
		}
		checkStream(t, e, msgs, tr, false)
	})
	t.Run("acknowledges every message once it is archived and written", func(t *testing.T) {
		unacked := 0
		for _, m := range e.ps.Server.Messages() {
			if m.Acks == 0 {
				unacked++
			}
		}
		if unacked > 0 {
			t.Errorf("%d of %d messages were never acknowledged", unacked, len(msgs))
		}
		// That each was archived is checked by the batch job reading the
		// archive back (checkParity). Counters of the last bundles may be
		// missing from the result Prism returns when the job stops idle,
		// so only counters of the early steps are asserted.
	})
	t.Run("late events revise their window, too late ones are counted", func(t *testing.T) {
		timings := e.db.Query(t, "SELECT DISTINCT pane_timing FROM {ds}.metrics_minute_speed")
		for _, want := range []string{"EARLY", "ON_TIME", "LATE"} {
			if !slices.Contains(timings, want) {
				t.Errorf("metrics_minute_speed has panes %v, none %s", timings, want)
			}
		}
		if c["too_late_metrics"] != int64(tr.tooLate) {
			t.Errorf("too_late_metrics = %d, want the %d events published hours late", c["too_late_metrics"], tr.tooLate)
		}
		if c["late_events_metrics"] <= c["too_late_metrics"] {
			t.Errorf("late_events_metrics = %d: no event came late within the allowed lateness", c["late_events_metrics"])
		}
		// The late events' windows close at least 35 s after they are
		// published; only a job more than 25 s behind reaches the close
		// margin, and then its final panes miss them (the parity check
		// below would fail for that reason).
		if n := c["window_closing_metrics"]; n != 0 {
			t.Errorf("window_closing_metrics = %d: the job fell more than 25 s behind the stream and left late events out of the metrics on Prism", n)
		}
	})
	speedMetrics := e.db.Query(t, fmt.Sprintf(speedMetricsSQL, from.UnixMicro()))
	t.Run("the batch job over the archive agrees with the stream", func(t *testing.T) {
		checkParity(t, e, msgs, tr, speedMetrics, from)
	})
}

func TestStreamingKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a streaming job twice for about a minute")
	}
	bin := buildStreaming(t)
	e := startEnv(t, "stream_restart")
	msgs := live(1500, 50, 2)
	tr := truthOf(t, msgs)
	from := time.UnixMicro(msgs[0].PublishTime).Add(-3 * time.Minute)
	// A kill between a Pull and the first renewal of its leases leaves
	// the messages pulled leased for the subscription's own deadline
	// (600 s here); the second run waits out the job's AckDeadline only,
	// so the subscription gets the same deadline, as a deployment should.
	if _, err := e.pub.SubscriptionAdminClient.UpdateSubscription(t.Context(), &pubsubpb.UpdateSubscriptionRequest{
		Subscription: &pubsubpb.Subscription{Name: e.sub, AckDeadlineSeconds: int32(e.config("").AckDeadline / time.Second)},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds"}},
	}); err != nil {
		t.Fatal(err)
	}
	sent := e.publishPaced(t, msgs)

	// The first run is a process of its own, killed mid-stream: every
	// element in flight is lost with it.
	cmd := exec.Command(bin, e.flags("stream-first")...)
	cmd.Env = os.Environ() // the emulators' variables, set by startEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(25 * time.Second)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the first run: %v", err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the first run ended by itself before it was killed:\n%s", logs.String())
	}
	sent()
	acked := 0
	for _, m := range e.ps.Server.Messages() {
		if m.Acks > 0 {
			acked++
		}
	}
	t.Logf("first run: %d of %d messages acknowledged before it was killed", acked, len(msgs))
	if acked == 0 || acked == len(msgs) {
		t.Errorf("the first run acknowledged %d of %d messages: the kill did not fall mid-stream", acked, len(msgs))
	}

	// The second run outlasts the first one's leases, so the messages it
	// read and never acknowledged come back.
	cfg := e.config("stream-second")
	cfg.StopAfterIdle = cfg.AckDeadline + 5*time.Second
	second, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	c2 := testenv.Counters(second)
	t.Logf("second run counters: %v", c2)
	if c2["recovered_events"] == 0 {
		t.Error("the second run recovered no event of the first run's open windows")
	}
	t.Run("loses nothing and counts each event once", func(t *testing.T) {
		checkStream(t, e, msgs, tr, true)
		for _, m := range e.ps.Server.Messages() {
			if m.Acks == 0 {
				t.Errorf("message %s was never acknowledged", m.ID)
				break
			}
		}
	})
	speedMetrics := e.db.Query(t, fmt.Sprintf(speedMetricsSQL, from.UnixMicro()))
	t.Run("final panes equal the batch job's metrics over the archive", func(t *testing.T) {
		checkParity(t, e, msgs, tr, speedMetrics, from)
	})
}

// buildStreaming builds the streaming job's command.
func buildStreaming(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streaming")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/railyard/railyard/pipelines/streaming").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./pipelines/streaming: %v\n%s", err, out)
	}
	return bin
}

// flags are the command line of e.config(runID).
func (e *env) flags(runID string) []string {
	c := e.config(runID)
	return []string{
		"--project=" + c.Project, "--dataset=" + c.Dataset, "--subscription=" + c.Subscription, "--lake=" + c.Lake,
		"--read_shards=" + fmt.Sprint(c.ReadShards), "--archive_window=" + c.ArchiveWindow.String(),
		"--stop_after_idle=" + c.StopAfterIdle.String(), "--ack_deadline=" + c.AckDeadline.String(), "--run_id=" + runID,
	}
}
