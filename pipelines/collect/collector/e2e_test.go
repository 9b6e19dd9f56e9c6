package collector

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
	"github.com/railyard/railyard/schemas"
)

// TestEndToEnd posts events to the edge, as NDJSON and as a JSON array,
// and runs the streaming job on Prism over the topic, taking the event
// time from the edge's attribute: every valid event is a row of
// events_speed, and every record the edge rejected is a row of
// dead_letter with its raw bytes and the reason the edge answered.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the streaming job on Prism with the BigQuery emulator")
	}
	env := testenv.Start(t, testenv.Emulators{Storage: true, PubSub: true, BigQuery: true})
	env.Storage.CreateBucket("lake")
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, testenv.Project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	topic := "projects/" + testenv.Project + "/topics/events"
	sub := "projects/" + testenv.Project + "/subscriptions/railyard-speed"
	if err := publish.Setup(ctx, client, topic, sub); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Topic = topic
	edge, err := New(cfg, client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- edge.Serve(sctx, ln) }()
	f := &fixture{t: t, url: "http://" + ln.Addr().String()}

	now := time.Now().UTC()
	var valid, lines []string
	for i := range 40 {
		id := fmt.Sprintf("e2e-%02d", i)
		valid = append(valid, id)
		lines = append(lines, fmt.Sprintf(`{"event_id":%q,"event_type":"page.view","event_time":%q,"source":"web-shop","user_id":"u%d"}`,
			id, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano), i%5))
	}
	bad := map[string]string{ // raw record → the reason the edge and the job give it
		`{"event_id":"e2e-bad-1","event_type":"page.view","event_time":"2026-11-01T10:00:00Z"}`:   schemas.ReasonMissingSource,
		`{"event_id":"e2e-bad-2","event_type":`:                                                   schemas.ReasonInvalidJSON,
		`{"event_id":"e2e-bad-3","event_type":"page.view","event_time":"yesterday","source":"s"}`: schemas.ReasonBadTime,
		"{\"event_id\":\"e2e-bad-4\",\"source\":\"M\xfcnchen\"}":                                  schemas.ReasonInvalidUTF8,
	}
	ndjson := strings.Join(lines[:30], "\n")
	for raw := range bad {
		ndjson += "\n" + raw
	}
	a := f.post("application/x-ndjson", "", strings.NewReader(ndjson), nil)
	if a.status != 200 || a.resp.Accepted != 30 || a.resp.Rejected != len(bad) {
		t.Fatalf("NDJSON: %d %s", a.status, a.body)
	}
	for _, r := range a.resp.Records[30:] {
		raw := strings.Split(ndjson, "\n")[r.Index]
		if r.Reason != bad[raw] {
			t.Errorf("record %d %q: reason %q, want %q", r.Index, raw, r.Reason, bad[raw])
		}
	}
	// A client retrying a batch it already sent: dedup keeps one of each.
	array := "[" + strings.Join(lines[25:], ",") + "]"
	if a := f.post("application/json", "", strings.NewReader(array), nil); a.status != 200 || a.resp.Accepted != 15 {
		t.Fatalf("array: %d %s", a.status, a.body)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	jcfg := streamjob.DefaultConfig()
	jcfg.Destination = config.Destination{Project: testenv.Project, Dataset: "collect_e2e"}
	jcfg.Subscription = sub
	jcfg.Lake = "gs://lake"
	jcfg.ReadShards = 1
	jcfg.ArchiveWindow = 5 * time.Second
	jcfg.StopAfterIdle = 10 * time.Second
	jcfg.AckDeadline = 15 * time.Second
	jcfg.TimestampAttribute = AttrEventTime
	jcfg.RunID = "collect-e2e"
	res, err := streamjob.Run(ctx, jcfg)
	if err != nil {
		t.Fatalf("streaming job: %v", err)
	}
	c := testenv.Counters(res)
	if c["records_in"] != 45+int64(len(bad)) || c["dead_letters"] != int64(len(bad)) || c["duplicates"] != 5 {
		t.Errorf("counters records_in %d dead_letters %d duplicates %d; want %d, %d, 5", c["records_in"], c["dead_letters"], c["duplicates"], 45+len(bad), len(bad))
	}

	ds := env.Dataset("collect_e2e")
	got := ds.Query(t, "SELECT DISTINCT event_id FROM {ds}.events_speed")
	if !slices.Equal(got, valid) {
		t.Errorf("events_speed holds %d events %v, want the %d valid ones", len(got), got, len(valid))
	}
	var want []string
	for raw, reason := range bad {
		want = append(want, reason+"|"+base64.StdEncoding.EncodeToString([]byte(raw))+"|true")
	}
	slices.Sort(want)
	dead := ds.Query(t, "SELECT reason, payload, JSON_VALUE(attributes, '$."+AttrEdgeReason+"') = reason FROM {ds}.dead_letter WHERE layer = 'speed'")
	if !slices.Equal(dead, want) {
		t.Errorf("dead_letter (speed):\n%s\nwant each rejected record with its raw bytes and the edge's reason:\n%s", strings.Join(dead, "\n"), strings.Join(want, "\n"))
	}
}
