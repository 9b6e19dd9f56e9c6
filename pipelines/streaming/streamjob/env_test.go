package streamjob

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/transforms/bqsink"
)

func TestMain(m *testing.M) { ptest.Main(m) }

const testProject = "railyard-test"

// env is one test's emulators and clients: pstest, fake-gcs-server and
// the BigQuery emulator, with the process pointed at them.
type env struct {
	dest  config.Destination
	bq    *bigquery.Client
	ps    *emulators.PubSub
	pub   *pubsub.Client
	topic string
	sub   string
	lake  string
}

func startEnv(t *testing.T, dataset string) *env {
	t.Helper()
	ctx := context.Background()
	gcs, err := emulators.StartStorage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	bq := emulators.StartBigQueryForTest(t, testProject)
	for _, e := range []map[string]string{gcs.Env(), ps.Env(), bq.Env()} {
		for k, v := range e {
			t.Setenv(k, v)
		}
	}
	gcs.CreateBucket("lake")
	pub, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	e := &env{
		dest:  config.Destination{Project: testProject, Dataset: dataset},
		ps:    ps,
		pub:   pub,
		topic: "projects/" + testProject + "/topics/events",
		sub:   "projects/" + testProject + "/subscriptions/railyard-speed",
		lake:  "gs://lake",
	}
	if err := publish.Setup(ctx, pub, e.topic, e.sub); err != nil {
		t.Fatal(err)
	}
	if e.bq, err = bqsink.NewClient(ctx, testProject); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.bq.Close() })
	return e
}

// config is the job the tests run: the defaults, with one read shard (so
// the first of two duplicates published is the first to arrive, as the
// batch layer's rule has it), short archive windows (so messages are
// acknowledged while the test runs) and a stop once idle.
func (e *env) config(runID string) Config {
	cfg := DefaultConfig()
	cfg.Destination = e.dest
	cfg.Subscription = e.sub
	cfg.Lake = e.lake
	cfg.ReadShards = 1
	cfg.ArchiveWindow = 5 * time.Second
	cfg.StopAfterIdle = 10 * time.Second
	// A killed run's messages come back within this.
	cfg.AckDeadline = 15 * time.Second
	cfg.RunID = runID
	return cfg
}

// live returns n messages of a live stream starting now.
func live(n, rate int, seed int64) []sample.Message {
	var msgs []sample.Message
	for m := range sample.Live(sample.LiveConfig{Seed: seed, Start: time.Now(), Rate: rate}, n) {
		msgs = append(msgs, m)
	}
	return msgs
}

// publishPaced publishes msgs in real time in the background; wait
// returns what was sent.
func (e *env) publishPaced(t *testing.T, msgs []sample.Message) (wait func() publish.Sent) {
	t.Helper()
	done := make(chan struct{})
	var sent publish.Sent
	var err error
	go func() {
		defer close(done)
		sent, err = publish.Messages(context.Background(), e.pub, e.topic, msgs, true)
	}()
	return func() publish.Sent {
		<-done
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return sent
	}
}

// runBatch runs the batch job over everything the stream archived.
func (e *env) runBatch(t *testing.T, runID string) map[string]int64 {
	t.Helper()
	res, err := batchjob.Run(context.Background(), batchjob.Config{
		Destination: e.dest, Inputs: []string{e.lake + "/raw/**"}, SessionGap: batchjob.DefaultSessionGap, RunID: runID,
	})
	if err != nil {
		t.Fatalf("batch job over the archive: %v", err)
	}
	return counters(res)
}

func counters(res beam.PipelineResult) map[string]int64 {
	out := map[string]int64{}
	if res == nil {
		return out
	}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == "railyard" {
			out[c.Key.Name] += c.Result()
		}
	}
	return out
}

// tableRef is how test queries name a table: {ds}.events_speed. The
// emulator needs names quoted whole.
var tableRef = regexp.MustCompile(`\{ds\}\.(\w+)`)

// query returns each row of sql as one string of its columns, sorted.
func (e *env) query(t *testing.T, sql string) []string {
	t.Helper()
	sql = tableRef.ReplaceAllString(sql, fmt.Sprintf("`%s.%s.$1`", e.dest.Project, e.dest.Dataset))
	it, err := e.bq.Query(sql).Read(context.Background())
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	var rows []string
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("query %s: %v", sql, err)
		}
		cols := make([]string, len(row))
		for i, v := range row {
			cols[i] = formatValue(v)
		}
		rows = append(rows, strings.Join(cols, "|"))
	}
	slices.Sort(rows)
	return rows
}

func formatValue(v bigquery.Value) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case float64:
		return fmt.Sprintf("%.6f", v)
	}
	return fmt.Sprint(v)
}

// one returns the single value of a one-row, one-column query.
func (e *env) one(t *testing.T, sql string) string {
	t.Helper()
	rows := e.query(t, sql)
	if len(rows) != 1 {
		t.Fatalf("query %s: %d rows, want 1", sql, len(rows))
	}
	return rows[0]
}

// truth is what the generator says a stream must become.
type truth struct {
	events     map[string]bool // event_ids of the valid unique events
	duplicates int
	bad        []string // reason|base64(payload), sorted
	tooLate    int      // unique events published an hour or more after their event time
}

func truthOf(t *testing.T, msgs []sample.Message) truth {
	t.Helper()
	tr := truth{events: map[string]bool{}}
	for _, m := range msgs {
		switch m.Kind {
		case sample.KindEvent:
			tr.events[m.EventID] = true
			if late, err := lag(m); err != nil {
				t.Fatal(err)
			} else if late >= time.Hour {
				tr.tooLate++
			}
		case sample.KindDuplicate:
			tr.duplicates++
		case sample.KindBad:
			tr.bad = append(tr.bad, m.Reason+"|"+base64.StdEncoding.EncodeToString(m.Data))
		}
	}
	slices.Sort(tr.bad)
	return tr
}
