package replayjob

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/api/googleapi"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/decode"
)

// Metadata keys of a replay's lake object.
const (
	metaDeadLetterID = "railyard-dead-letter-id"
	metaReplayRun    = "railyard-replay-run"
)

func init() {
	register.DoFn4x0[Input, func(schemas.Record), func(string, Input), func(string, schemas.DeadLetter)](&prepareFn{})
	register.DoFn3x0[schemas.Event, func(string, schemas.Event), func(string, schemas.DeadLetter)](&keyEventFn{})
	register.DoFn2x0[schemas.DeadLetter, func(string, schemas.DeadLetter)](&keyDeadLetterFn{})
	register.DoFn6x1[context.Context, string, func(*Input) bool, func(*schemas.Event) bool, func(*schemas.DeadLetter) bool, func(schemas.DeadLetterReplay), error](&outcomeFn{})
	register.DoFn3x1[context.Context, int, func(*schemas.DeadLetterReplay) bool, error](&recordFn{})
	register.DoFn2x1[int, func(*schemas.DeadLetterReplay) bool, error](&reportFn{})
	register.Emitter1[schemas.Record]()
	register.Emitter2[string, Input]()
	register.Emitter2[string, schemas.Event]()
	register.Emitter2[string, schemas.DeadLetter]()
	register.Emitter1[schemas.DeadLetterReplay]()
	register.Iter1[Input]()
	register.Iter1[schemas.Event]()
	register.Iter1[schemas.DeadLetter]()
	register.Iter1[schemas.DeadLetterReplay]()
}

// Build adds the replay of inputs to s. With cfg.DryRun it writes
// nothing and reports per reason to reportPath instead.
func Build(s beam.Scope, cfg Config, inputs []Input, replayedAt int64, reportPath string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(inputs) == 0 {
		return errors.New("replayjob: nothing to replay")
	}
	s = s.Scope("replayjob.Replay")
	in := beam.CreateList(s, inputs)
	// 1. The record each dead letter holds, as received.
	records, keyed, unreplayable := beam.ParDo3(s, &prepareFn{}, in)
	// 2. Decoded under the current contract by the jobs' own transform.
	events, decodeDead := decode.Events(s.Scope("DecodeEvents"), records, decode.Config{Layer: schemas.LayerBatch})
	keyedEvents, eventDead := beam.ParDo2(s, &keyEventFn{}, events)
	keyedDead := beam.ParDo(s, &keyDeadLetterFn{}, decodeDead)
	failures := beam.Flatten(s, unreplayable, keyedDead, eventDead)
	// 3. Per dead letter: what passes now goes to the lake.
	outcomes := beam.ParDo(s.Scope("WriteLake"), &outcomeFn{Lake: cfg.Lake, RunID: cfg.RunID, ReplayedAt: replayedAt, DryRun: cfg.DryRun},
		beam.CoGroupByKey(s, keyed, keyedEvents, failures))
	// 4. Only once every lake object is written (one group waits for all):
	// what each dead letter became.
	all := beam.GroupByKey(s, beam.AddFixedKey(s, outcomes))
	if cfg.DryRun {
		beam.ParDo0(s.Scope("Report"), &reportFn{Path: reportPath}, all)
		return nil
	}
	beam.ParDo0(s.Scope("RecordReplays"), &recordFn{Project: cfg.Project, Dataset: cfg.Dataset, RunID: cfg.RunID}, all)
	return nil
}

// prepareFn turns a selected dead letter into the record it holds,
// carrying the dead letter's id through decode in its source_uri; a dead
// letter that holds no record fails at once.
type prepareFn struct{}

func (*prepareFn) ProcessElement(in Input, emitRecord func(schemas.Record), emitKeyed func(string, Input), emitFailure func(string, schemas.DeadLetter)) {
	emitKeyed(in.ID, in)
	rec, err := recordOf(in.DeadLetter)
	if err != nil {
		emitFailure(in.ID, schemas.NewDeadLetter(rec, schemas.LayerBatch, in.DeadLetter.Stage, err, in.DeadLetter.FailedAt))
		return
	}
	rec.SourceURI = replayKeyPrefix + in.ID
	emitRecord(rec)
}

// keyEventFn keys a decoded event by its dead letter's id, and checks it
// against what BigQuery takes (the batch run writes it): an event the
// sink would refuse still fails.
type keyEventFn struct {
	enc *bqsink.Encoder
}

func (fn *keyEventFn) ProcessElement(ev schemas.Event, emit func(string, schemas.Event), emitFailure func(string, schemas.DeadLetter)) {
	id := strings.TrimPrefix(*ev.SourceURI, replayKeyPrefix)
	if fn.enc == nil {
		fn.enc, _ = bqsink.EncoderFor(schemas.MustLookupTable(schemas.TableEventsBatch).Row) // a fixed row type, covered by bqsink's tests
	}
	ev.SourceURI = nil
	if _, err := fn.enc.Encode(ev); err != nil {
		emitFailure(id, schemas.DeadLetter{Reason: schemas.ReasonWriteFailed, Error: fmt.Sprintf("BigQuery would refuse the event for %s: %v", schemas.TableEventsBatch, err)})
		return
	}
	emit(id, ev)
}

// keyDeadLetterFn keys a decode dead letter by its dead letter's id.
type keyDeadLetterFn struct{}

func (*keyDeadLetterFn) ProcessElement(dl schemas.DeadLetter, emit func(string, schemas.DeadLetter)) {
	emit(strings.TrimPrefix(*dl.SourceURI, replayKeyPrefix), dl)
}

// outcomeFn decides what became of one dead letter, writes the record
// that passes now to the lake, and emits the dead_letter_replays row
// unless an earlier run recorded the same outcome.
type outcomeFn struct {
	Lake       string
	RunID      string
	ReplayedAt int64
	DryRun     bool

	client                            *storage.Client
	replayed, stillFailing, inLakeYet beam.Counter
}

func (fn *outcomeFn) Setup(ctx context.Context) error {
	fn.replayed = beam.NewCounter(metricnames.Namespace, metricnames.ReplayReplayed)
	fn.stillFailing = beam.NewCounter(metricnames.Namespace, metricnames.ReplayStillFailing)
	fn.inLakeYet = beam.NewCounter(metricnames.Namespace, metricnames.ReplayAlreadyInLake)
	if fn.DryRun {
		return nil
	}
	var err error
	fn.client, err = storage.NewClient(ctx)
	return err
}

func (fn *outcomeFn) Teardown() error {
	if fn.client != nil {
		return fn.client.Close()
	}
	return nil
}

func (fn *outcomeFn) ProcessElement(ctx context.Context, id string, inputs func(*Input) bool, events func(*schemas.Event) bool, failures func(*schemas.DeadLetter) bool, emit func(schemas.DeadLetterReplay)) error {
	var in Input
	if !inputs(&in) {
		return fmt.Errorf("replay: dead letter %s: decode returned a record that was not selected", id)
	}
	row := schemas.DeadLetterReplay{DeadLetterID: id, RunID: fn.RunID, ReplayedAt: fn.ReplayedAt,
		FailedAt: in.DeadLetter.FailedAt, DeadLetterReason: in.DeadLetter.Reason}
	var ev schemas.Event
	var dl schemas.DeadLetter
	switch {
	case failures(&dl):
		fn.stillFailing.Inc(ctx, 1)
		reason, msg := dl.Reason, dl.Error
		row.Outcome, row.Reason, row.Error = schemas.OutcomeStillFailing, &reason, &msg
		if !fn.DryRun && slices.Contains(in.Recorded, reason) {
			return nil // recorded by an earlier run
		}
	case events(&ev):
		object, err := fn.write(ctx, in, ev)
		if err != nil {
			return fmt.Errorf("replay: dead letter %s: write to the lake: %w", id, err)
		}
		fn.replayed.Inc(ctx, 1)
		row.Outcome, row.LakeObject = schemas.OutcomeReplayed, &object
	default:
		return fmt.Errorf("replay: dead letter %s: decode returned neither an event nor a dead letter", id)
	}
	emit(row)
	return nil
}

// write creates the record's lake object under its event hour, named by
// the dead letter's id, and returns its address. It never overwrites: an
// object of that name written by an earlier run of the same dead letter
// is taken as done.
func (fn *outcomeFn) write(ctx context.Context, in Input, ev schemas.Event) (string, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(fn.Lake, "gs://"), "/")
	if prefix != "" {
		prefix = strings.TrimSuffix(prefix, "/") + "/"
	}
	name := prefix + schemas.LakeHourPath(ev.EventTime) + "replay-" + in.ID + ".jsonl.gz"
	address := "gs://" + bucket + "/" + name
	if fn.DryRun {
		return address, nil
	}
	rec, err := recordOf(in.DeadLetter)
	if err != nil {
		return "", err // recordOf passed in prepareFn; it is deterministic
	}
	line, err := lakeLine(rec, fn.RunID)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b) // no name, no time: the same bytes every run
	zw.Write(append(line, '\n'))
	if err := zw.Close(); err != nil {
		return "", err
	}
	obj := fn.client.Bucket(bucket).Object(name).Retryer(storage.WithPolicy(storage.RetryAlways))
	w := obj.If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/gzip"
	w.Metadata = map[string]string{metaDeadLetterID: in.ID, metaReplayRun: fn.RunID}
	if _, err := w.Write(b.Bytes()); err != nil {
		_ = w.Close()
		return "", err
	}
	err = w.Close()
	var gerr *googleapi.Error
	if err == nil || !errors.As(err, &gerr) || gerr.Code != http.StatusPreconditionFailed {
		return address, err
	}
	attrs, aerr := obj.Attrs(ctx)
	if aerr != nil {
		return "", fmt.Errorf("%s exists already; reading its metadata: %w", address, aerr)
	}
	if attrs.Metadata[metaDeadLetterID] != in.ID {
		return "", fmt.Errorf("%s exists already and was not written by a replay of this dead letter; it is not replaced (move it away and run the replay again)", address)
	}
	fn.inLakeYet.Inc(ctx, 1)
	return address, nil
}

// reportFn writes the dry run's report: per dead-letter reason, how many
// would pass now and how many still fail, with one error each.
type reportFn struct {
	Path string
}

type reasonReport struct {
	pass, fail int
	example    string
}

func (fn *reportFn) ProcessElement(_ int, rows func(*schemas.DeadLetterReplay) bool) error {
	byReason := map[string]*reasonReport{}
	var row schemas.DeadLetterReplay
	for rows(&row) {
		r := byReason[row.DeadLetterReason]
		if r == nil {
			r = &reasonReport{}
			byReason[row.DeadLetterReason] = r
		}
		if row.Outcome == schemas.OutcomeReplayed {
			r.pass++
			continue
		}
		r.fail++
		if e := *row.Error; r.example == "" || e < r.example {
			r.example = e // the least, so the report is the same every run
		}
	}
	reasons := make([]string, 0, len(byReason))
	for reason := range byReason {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	var b strings.Builder
	for _, reason := range reasons {
		r := byReason[reason]
		fmt.Fprintf(&b, "%s\t%d\t%d\t%s\n", reason, r.pass, r.fail, oneLine(r.example))
	}
	return os.WriteFile(fn.Path, []byte(b.String()), 0o600)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
