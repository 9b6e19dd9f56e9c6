package replayjob

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/serving"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/decode"
	"github.com/railyard/railyard/transforms/lake"
)

func TestMain(m *testing.M) { ptest.Main(m) }

const day = "2026-11-01"

// strictLimit is the record size limit of the "earlier contract" the test
// dead-letters its lake under: records over it are too_large then, and
// pass under the contract's own 1 MiB.
const strictLimit = 400

func event(id, source string, pad int) string {
	src := ""
	if source != "" {
		src = fmt.Sprintf(`,"source":%q`, source)
	}
	return fmt.Sprintf(`{"event_id":%q,"event_type":"page.view","event_time":"2026-11-01T10:%02d:00Z"%s,"user_id":"u1","properties":{"pad":%q}}`,
		id, len(id), src, strings.Repeat("x", pad))
}

// lakeLines are one hour of the lake: valid events, events larger than
// the strict limit (two bare lines, one archived Pub/Sub message),
// events without source, and a line that is not JSON.
func lakeLines(t *testing.T) []string {
	envelope, err := schemas.MarshalEnvelope(schemas.Record{Data: []byte(event("big-3", "shop", 500)), MessageID: "m-big-3",
		PublishTime: time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC).UnixMicro(), Attributes: map[string]string{"origin": "app"}})
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		event("ok-1", "shop", 0), event("ok-2", "shop", 0), event("ok-3", "app", 0),
		event("big-1", "shop", 500), event("big-2", "app", 600), string(envelope),
		event("nosrc-1", "", 0), event("nosrc-2", "", 0),
		`{"event_id":"broken-1",`,
	}
}

var bigIDs = []string{"big-1", "big-2", "big-3"}

type fixture struct {
	te      *testenv.Env
	db      testenv.Dataset
	dest    config.Destination
	lake    string
	bucket  string
	gcs     *storage.Client
	lakeDay string
}

// newFixture makes a bucket holding lakeLines under day's hour 10 and a
// dataset whose dead_letter holds what a batch run under the strict
// limit dead-letters from it.
func newFixture(t *testing.T, te *testenv.Env, bucket, dataset string) *fixture {
	t.Helper()
	te.Storage.CreateBucket(bucket)
	gcs, err := te.Storage.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	f := &fixture{te: te, db: te.Dataset(dataset), dest: config.Destination{Project: testenv.Project, Dataset: dataset},
		lake: "gs://" + bucket, bucket: bucket, gcs: gcs}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(strings.Join(lakeLines(t), "\n") + "\n"))
	zw.Close()
	f.put(t, "raw/dt="+day+"/hr=10/part-0.jsonl.gz", b.Bytes())

	// The batch layer's read, decode and dead-letter write, under the
	// strict limit.
	sink := f.dest.Sink("strict-1")
	client, err := serving.Prepare(t.Context(), sink)
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	p, s := beam.NewPipelineWithRoot()
	records, readDead, files := lake.Read(s, lake.ReadConfig{Globs: []string{config.DayGlob(f.lake, day)}})
	_, decodeDead := decode.Events(s, records, decode.Config{Layer: schemas.LayerBatch, MaxRecordBytes: strictLimit})
	bqsink.ReplaceDeadLetters(s, sink, beam.Flatten(s, readDead, decodeDead), files)
	if err := beamx.Run(t.Context(), p); err != nil {
		t.Fatalf("strict batch run: %v", err)
	}
	if got := f.db.Query(t, "SELECT reason, COUNT(*) FROM {ds}.dead_letter GROUP BY reason"); !slices.Equal(got, []string{"invalid_json|1", "missing_source|2", "too_large|3"}) {
		t.Fatalf("the strict run dead-lettered %v", got)
	}
	return f
}

func (f *fixture) put(t *testing.T, name string, data []byte) {
	t.Helper()
	w := f.gcs.Bucket(f.bucket).Object(name).NewWriter(t.Context())
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// killAtFirstReplayObject kills proc as soon as the lake holds an object
// a replay wrote, and waits for it. killed is false if the process
// exited first; err is then what it exited with.
func (f *fixture) killAtFirstReplayObject(t *testing.T, proc *os.Process, exited <-chan error) (killed bool, err error) {
	t.Helper()
	for {
		select {
		case err := <-exited:
			return false, err
		default:
		}
		if len(f.replayObjects(t)) > 0 {
			if err := proc.Kill(); err != nil {
				t.Logf("kill: %v", err) // it has just exited
			}
			return true, <-exited
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) config(runID string) Config {
	// failed_at is when the strict run dead-lettered them: today.
	today := time.Now().UTC().Format(schemas.DayLayout)
	return Config{Destination: f.dest, Lake: f.lake, From: today, To: today, Reasons: []string{"too_large", "missing_source"}, RunID: runID}
}

// objects lists the bucket's objects with their generations.
func (f *fixture) objects(t *testing.T) []string {
	t.Helper()
	var out []string
	it := f.gcs.Bucket(f.bucket).Objects(t.Context(), nil)
	for {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s@%d", a.Name, a.Generation))
	}
	return out
}

// replayObjects lists the replay objects among the bucket's objects.
func (f *fixture) replayObjects(t *testing.T) []string {
	t.Helper()
	var replays []string
	for _, o := range f.objects(t) {
		if strings.Contains(o, "/replay-") {
			replays = append(replays, o)
		}
	}
	return replays
}

func (f *fixture) read(t *testing.T, object string) string {
	t.Helper()
	name := strings.TrimPrefix(object, "gs://"+f.bucket+"/")
	r, err := f.gcs.Bucket(f.bucket).Object(name).NewReader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// state is what a replay may change: the replays table's rows (without
// run and time) and the lake's objects.
func (f *fixture) state(t *testing.T) []string {
	t.Helper()
	rows := f.db.Query(t, "SELECT dead_letter_id, outcome, IFNULL(reason, ''), IFNULL(lake_object, '') FROM {ds}.dead_letter_replays")
	return append(rows, f.objects(t)...)
}

func replay(t *testing.T, cfg Config) Result {
	t.Helper()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("replay %s: %v", cfg.RunID, err)
	}
	return res
}

func TestReplay(t *testing.T) {
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	f := newFixture(t, te, "lake", "replay_e2e")
	before := f.state(t)

	t.Run("a dry run reports per reason and changes nothing", func(t *testing.T) {
		cfg := f.config("dry-1")
		cfg.DryRun = true
		res := replay(t, cfg)
		if len(res.Report) != 2 {
			t.Fatalf("report %+v, want two reasons", res.Report)
		}
		large, nosrc := res.Report[1], res.Report[0]
		if large.Reason != "too_large" || large.WouldPass != 3 || large.Failing != 0 {
			t.Errorf("too_large: %+v, want 3 passing", large)
		}
		if nosrc.Reason != "missing_source" || nosrc.WouldPass != 0 || nosrc.Failing != 2 || !strings.Contains(nosrc.ExampleError, "missing_source: source is required") {
			t.Errorf("missing_source: %+v, want 2 failing with the contract's error", nosrc)
		}
		if after := f.state(t); !slices.Equal(before, after) {
			t.Errorf("the dry run changed the replays table or the lake:\nbefore %v\nafter  %v", before, after)
		}
	})

	var first Result
	t.Run("records that pass now go to the lake as envelopes named by their dead letters", func(t *testing.T) {
		first = replay(t, f.config("r1"))
		if first.Matched != 5 || len(first.Inputs) != 5 || first.Replayed != 3 || first.StillFailing != 2 {
			t.Fatalf("result: matched %d, inputs %d, replayed %d, still failing %d; want 5, 5, 3, 2", first.Matched, len(first.Inputs), first.Replayed, first.StillFailing)
		}
		if !slices.Equal(first.Days, []string{day}) {
			t.Errorf("days %v, want [%s]", first.Days, day)
		}
		rows := f.db.Rows(t, "SELECT r.*, d.payload_preview FROM {ds}.dead_letter_replays AS r JOIN {ds}.dead_letters AS d USING (dead_letter_id) ORDER BY r.dead_letter_reason, r.dead_letter_id")
		if len(rows) != 5 {
			t.Fatalf("dead_letter_replays joins %d dead letters, want 5: %v", len(rows), rows)
		}
		for _, r := range rows {
			id := r["dead_letter_id"].(string)
			switch r["dead_letter_reason"] {
			case "missing_source":
				if r["outcome"] != schemas.OutcomeStillFailing || r["reason"] != "missing_source" || r["lake_object"] != nil {
					t.Errorf("%s: %v", id, r)
				}
			case "too_large":
				want := fmt.Sprintf("gs://lake/raw/dt=%s/hr=10/replay-%s.jsonl.gz", day, id)
				if r["outcome"] != schemas.OutcomeReplayed || r["reason"] != nil || r["lake_object"] != want {
					t.Errorf("%s: %v, want replayed to %s", id, r, want)
					continue
				}
				line := strings.TrimSuffix(f.read(t, want), "\n")
				payload := r["payload_preview"].(string) // whole: every payload here is under 1 KiB
				if strings.Contains(payload, "m-big-3") || strings.Contains(line, `"envelope"`) {
					var env schemas.Envelope
					if err := json.Unmarshal([]byte(line), &env); err != nil {
						t.Fatalf("%s: %s is not an envelope: %v", id, want, err)
					}
					if env.MessageID != "m-big-3" || env.Attributes["origin"] != "app" || env.ReplayRun != "r1" || !env.PublishTime.Equal(time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC)) || string(env.Data) != payload {
						t.Errorf("%s: envelope %+v", id, env)
					}
				} else if line != payload {
					t.Errorf("%s: the lake holds %q, want the bare line %q", id, line, payload)
				}
			default:
				t.Errorf("replayed a dead letter of reason %v", r["dead_letter_reason"])
			}
		}
		if got := f.db.Query(t, "SELECT reason, replay_status, COUNT(*) FROM {ds}.dead_letters WHERE failed_at >= TIMESTAMP('2000-01-01') GROUP BY reason, replay_status"); !slices.Equal(got,
			[]string{"invalid_json|open|1", "missing_source|replayed_still_failing|2", "too_large|replayed|3"}) {
			t.Errorf("dead_letters by status: %v", got)
		}
	})

	t.Run("a second replay writes nothing and changes no table", func(t *testing.T) {
		mid := f.state(t)
		res := replay(t, f.config("r2"))
		if res.AlreadyReplayed != 3 || len(res.Inputs) != 2 || res.Replayed != 0 || res.StillFailing != 2 {
			t.Errorf("result: already replayed %d, inputs %d, replayed %d, still failing %d; want 3, 2, 0, 2", res.AlreadyReplayed, len(res.Inputs), res.Replayed, res.StillFailing)
		}
		if after := f.state(t); !slices.Equal(mid, after) {
			t.Errorf("the second replay changed something:\nbefore %v\nafter  %v", mid, after)
		}
	})

	t.Run("the batch run of the days written holds each replayed record once", func(t *testing.T) {
		if len(first.Days) == 0 {
			t.Fatal("the replay wrote to no day")
		}
		if _, err := batchjob.Run(t.Context(), batchjob.Config{Destination: f.dest, Lake: f.lake, From: first.Days[0], To: first.Days[len(first.Days)-1],
			SessionGap: batchjob.DefaultSessionGap, RunID: "rebuild-1"}); err != nil {
			t.Fatal(err)
		}
		got := f.db.Query(t, "SELECT event_id, COUNT(*) FROM {ds}.events WHERE event_time >= TIMESTAMP('2026-11-01') AND event_time < TIMESTAMP('2026-11-02') GROUP BY event_id")
		want := []string{"big-1|1", "big-2|1", "big-3|1", "ok-1|1", "ok-2|1", "ok-3|1"}
		if !slices.Equal(got, want) {
			t.Errorf("events: %v, want %v", got, want)
		}
		if got := f.db.One(t, "SELECT message_id FROM {ds}.events WHERE event_id = 'big-3' AND event_time >= TIMESTAMP('2026-11-01')"); got != "m-big-3" {
			t.Errorf("big-3 has message_id %s, want m-big-3", got)
		}
		// The batch run replaces the dead letters of the files it read:
		// what still fails under the current contract is there again,
		// with the same id, so its status stays.
		if got := f.db.Query(t, "SELECT reason, replay_status, COUNT(*) FROM {ds}.dead_letters WHERE failed_at >= TIMESTAMP('2000-01-01') GROUP BY reason, replay_status"); !slices.Equal(got,
			[]string{"invalid_json|open|1", "missing_source|replayed_still_failing|2"}) {
			t.Errorf("dead_letters by status after the batch run: %v", got)
		}
	})

	t.Run("a selection that matches nothing says so and runs nothing", func(t *testing.T) {
		cfg := f.config("r3")
		cfg.From, cfg.To = "2020-01-01", "2020-01-01"
		res := replay(t, cfg)
		if res.Matched != 0 || len(res.Inputs) != 0 {
			t.Errorf("result %+v", res.Selection)
		}
	})

	t.Run("a selection over --max_dead_letters stops before anything changes", func(t *testing.T) {
		mid := f.state(t)
		cfg := f.config("r4")
		cfg.Reasons, cfg.MaxDeadLetters = nil, 2
		_, err := Run(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), "more than --max_dead_letters=2") {
			t.Errorf("Run() = %v, want the limit named", err)
		}
		if after := f.state(t); !slices.Equal(mid, after) {
			t.Errorf("a refused selection changed something")
		}
	})
}

func TestReplayInterruptedConverges(t *testing.T) {
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	f := newFixture(t, te, "lake", "replay_kill")

	// A stray object under the name of one replay's lake object: the run
	// writes the others' objects and fails before recording anything.
	big2 := f.db.One(t, "SELECT dead_letter_id FROM {ds}.dead_letters WHERE STARTS_WITH(payload_preview, '{\"event_id\":\"big-2\"')")
	stray := fmt.Sprintf("raw/dt=%s/hr=10/replay-%s.jsonl.gz", day, big2)
	f.put(t, stray, []byte("not written by a replay"))
	_, err := Run(t.Context(), f.config("k1"))
	if err == nil || !strings.Contains(err.Error(), "was not written by a replay of this dead letter") {
		t.Fatalf("Run() = %v, want it to stop at the stray object", err)
	}
	if n := f.db.One(t, "SELECT COUNT(*) FROM {ds}.dead_letter_replays"); n != "0" {
		t.Errorf("the failed run recorded %s replays", n)
	}
	// The operator moves the stray away and runs the replay again.
	if err := f.gcs.Bucket(f.bucket).Object(stray).Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg := f.config("k2")
	cfg.RebuildDays = true
	res := replay(t, cfg)
	if res.Replayed != 3 || res.StillFailing != 2 || len(res.Rebuilt) != 1 {
		t.Errorf("rerun: replayed %d, still failing %d, batch runs %v; want 3, 2, one", res.Replayed, res.StillFailing, res.Rebuilt)
	}
	replays := f.replayObjects(t)
	if len(replays) != 3 {
		t.Errorf("the lake holds %d replay objects, want 3: %v", len(replays), replays)
	}
	if got := f.db.Query(t, "SELECT outcome, COUNT(*) FROM {ds}.dead_letter_replays GROUP BY outcome"); !slices.Equal(got, []string{"replayed|3", "still_failing|2"}) {
		t.Errorf("dead_letter_replays: %v", got)
	}
	got := f.db.Query(t, "SELECT event_id, COUNT(*) FROM {ds}.events WHERE event_time >= TIMESTAMP('2026-11-01') AND event_time < TIMESTAMP('2026-11-02') GROUP BY event_id")
	if want := []string{"big-1|1", "big-2|1", "big-3|1", "ok-1|1", "ok-2|1", "ok-3|1"}; !slices.Equal(got, want) {
		t.Errorf("events: %v, want %v", got, want)
	}
	// And once more: nothing changes.
	mid := f.state(t)
	replay(t, f.config("k3"))
	if after := f.state(t); !slices.Equal(mid, after) {
		t.Errorf("a replay after convergence changed something:\nbefore %v\nafter  %v", mid, after)
	}
}

// TestReplayWriteFailed replays rows BigQuery refused (write_events_speed
// dead letters made by the sink against the emulator): the row is
// re-validated, not decoded as a message, and a row BigQuery would refuse
// again stays failing, with the column named, and reaches no lake.
func TestReplayWriteFailed(t *testing.T) {
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	te.Storage.CreateBucket("lake")
	dest := config.Destination{Project: testenv.Project, Dataset: "replay_write"}
	db := te.Dataset(dest.Dataset)
	sink := dest.Sink("speed-1")
	client, err := serving.Prepare(t.Context(), sink)
	if err != nil {
		t.Fatal(err)
	}
	client.Close()

	row := func(id string) schemas.Event {
		at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
		mid := "m-" + id
		return schemas.Event{EventID: id, EventType: "page.view", EventTime: at, Source: "shop", IngestTime: at, Layer: schemas.LayerSpeed, MessageID: &mid}
	}
	tooBig, notJSON := row("s-big"), row("s-notjson")
	props, extra := `{"n":1e999}`, `{"a":`
	tooBig.Properties, notJSON.Extra = &props, &extra
	p, s := beam.NewPipelineWithRoot()
	_, dead := bqsink.Stream(s, sink, schemas.MustLookupTable(schemas.TableEventsSpeed), beam.CreateList(s, []schemas.Event{tooBig, notJSON}))
	bqsink.Stream(s.Scope("DeadLetters"), sink, schemas.MustLookupTable(schemas.TableDeadLetter), dead)
	if err := beamx.Run(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if n := db.One(t, "SELECT COUNT(*) FROM {ds}.dead_letter WHERE stage = 'write_events_speed'"); n != "2" {
		t.Fatalf("BigQuery refused %s rows, want 2", n)
	}

	today := time.Now().UTC().Format(schemas.DayLayout)
	res := replay(t, Config{Destination: dest, Lake: "gs://lake", From: today, To: today, Stage: "write_events_speed", RunID: "w1"})
	if res.Replayed != 0 || res.StillFailing != 2 {
		t.Errorf("replayed %d, still failing %d; want 0, 2", res.Replayed, res.StillFailing)
	}
	got := db.Rows(t, "SELECT d.message_id, r.outcome, r.reason, r.error, d.replay_status FROM {ds}.dead_letter_replays AS r JOIN {ds}.dead_letters AS d USING (dead_letter_id) ORDER BY d.message_id")
	want := map[string]string{"m-s-big": "column properties: not a JSON document BigQuery takes", "m-s-notjson": "column extra: not a JSON document BigQuery takes"}
	if len(got) != 2 {
		t.Fatalf("replays: %v", got)
	}
	for _, r := range got {
		id := r["message_id"].(string)
		if r["outcome"] != schemas.OutcomeStillFailing || r["reason"] != schemas.ReasonWriteFailed || r["replay_status"] != "replayed_still_failing" ||
			!strings.Contains(r["error"].(string), want[id]) {
			t.Errorf("%s: %v, want still failing with %q", id, r, want[id])
		}
	}
	gcs, err := te.Storage.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	if _, err := gcs.Bucket("lake").Objects(t.Context(), nil).Next(); err != iterator.Done {
		t.Errorf("the lake is not empty: %v", err)
	}
}

// killedRunEnv carries, to the process TestReplayKilledConverges kills,
// the replay's Config in JSON.
const killedRunEnv = "RAILYARD_REPLAY_KILLED_RUN"

// TestReplayKilledConverges kills a replay (its process, SIGKILL) as soon
// as its first lake object exists, before it records its replays, and
// runs it again: the end state is the one an uninterrupted run leaves.
// The killed run is this test binary run again with killedRunEnv set; it
// reaches the emulators through the environment testenv set. A process
// is what a lost launcher or worker is; cancelling the run's context in
// this process instead also trips a data race inside Beam's SDK harness
// (dataWriter.send calls Recv on the data stream while the channel's
// reader does), which the race detector reports as a failure of the
// test.
func TestReplayKilledConverges(t *testing.T) {
	if js := os.Getenv(killedRunEnv); js != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			t.Fatalf("%s: %v", killedRunEnv, err)
		}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		return
	}
	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	f := newFixture(t, te, "lake", "replay_cancel")

	js, err := json.Marshal(f.config("c1"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplayKilledConverges$", "-test.v")
	cmd.Env = append(os.Environ(), killedRunEnv+"="+string(js))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed, err := f.killAtFirstReplayObject(t, cmd.Process, exited)
	recorded := f.db.One(t, "SELECT COUNT(*) FROM {ds}.dead_letter_replays")
	switch {
	case killed:
		t.Logf("killed the run at its first replay object; %s replays recorded", recorded)
	case err == nil:
		t.Logf("the run finished before it was killed (%s replays recorded): the rerun below checks idempotence only", recorded)
	default:
		t.Fatalf("the run to kill failed on its own: %v\n%s", err, out.String())
	}

	res := replay(t, f.config("c2"))
	replays := f.replayObjects(t)
	if len(replays) != 3 {
		t.Errorf("the lake holds %d replay objects, want 3: %v", len(replays), replays)
	}
	if got := f.db.Query(t, "SELECT outcome, COUNT(DISTINCT dead_letter_id), COUNT(*) FROM {ds}.dead_letter_replays GROUP BY outcome"); !slices.Equal(got, []string{"replayed|3|3", "still_failing|2|2"}) {
		t.Errorf("dead_letter_replays (outcome, dead letters, rows): %v; rerun result %+v", got, res.Selection)
	}
	if got := f.db.Query(t, "SELECT reason, replay_status, COUNT(*) FROM {ds}.dead_letters WHERE failed_at >= TIMESTAMP('2000-01-01') GROUP BY reason, replay_status"); !slices.Equal(got,
		[]string{"invalid_json|open|1", "missing_source|replayed_still_failing|2", "too_large|replayed|3"}) {
		t.Errorf("dead_letters by status: %v", got)
	}
}
