package streamjob

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// env is one test's emulators and clients: pstest, fake-gcs-server and
// the BigQuery emulator, with the process pointed at them.
type env struct {
	dest  config.Destination
	db    testenv.Dataset
	ps    *emulators.PubSub
	pub   *pubsub.Client
	topic string
	sub   string
	lake  string
}

func startEnv(t *testing.T, dataset string) *env {
	t.Helper()
	te := testenv.Start(t, testenv.Emulators{Storage: true, PubSub: true, BigQuery: true})
	te.Storage.CreateBucket("lake")
	pub, err := pubsub.NewClient(t.Context(), testenv.Project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	e := &env{
		dest:  config.Destination{Project: testenv.Project, Dataset: dataset},
		db:    te.Dataset(dataset),
		ps:    te.PubSub,
		pub:   pub,
		topic: "projects/" + testenv.Project + "/topics/events",
		sub:   "projects/" + testenv.Project + "/subscriptions/railyard-speed",
		lake:  "gs://lake",
	}
	if err := publish.Setup(t.Context(), pub, e.topic, e.sub); err != nil {
		t.Fatal(err)
	}
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
	return testenv.Counters(res)
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
