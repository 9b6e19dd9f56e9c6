package bqsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func init() {
	register.DoFn5x1[context.Context, beam.EventTime, beam.T, func(beam.EventTime, string), func(beam.EventTime, schemas.DeadLetter), error](&streamFn{})
	register.Emitter2[beam.EventTime, string]()
	register.Emitter2[beam.EventTime, schemas.DeadLetter]()
}

// Limits of one append to a default stream. A bundle's rows go out in
// appends of at most streamFlushBytes and streamFlushRows (BigQuery takes
// 10 MB per request); up to streamInflight appends of a DoFn instance
// are in flight at once.
const (
	streamFlushBytes = 5 << 20
	streamFlushRows  = 5000
	streamInflight   = 4
	// appendTimeout bounds the wait for one append's answer; an append
	// left unanswered that long is retried like a transient failure.
	appendTimeout = 2 * time.Minute
)

// streamTables are the tables Stream writes: the speed layer's and
// dead_letter. The batch tables are replaced whole by ReplacePartitions;
// at-least-once appends would double them.
var streamTables = map[string]bool{
	schemas.TableEventsSpeed:        true,
	schemas.TableMetricsMinuteSpeed: true,
	schemas.TableSessionsSpeed:      true,
	schemas.TableDeadLetter:         true,
}

// Stream appends rows to table through the table's default stream of the
// Storage Write API, for the streaming job: at least once, each row as
// soon as its bundle ends (the serving views remove the duplicates that
// a retried bundle leaves).
//
// rows is a PCollection of table.Row (schemas.Event for events_speed,
// schemas.MetricMinuteSpeed, schemas.SessionSpeed, schemas.DeadLetter for
// dead_letter), bounded or not, in any windowing. Rows are batched per
// bundle into appends of up to 5 MB or 5,000 rows, and a bundle ends only
// when BigQuery has confirmed every append of it. Transient failures
// retry with backoff (write_retries).
//
// written is a PCollection<string>: the message_id of every row confirmed
// written whose row type has that column (schemas.Event,
// schemas.DeadLetter), empty ones left out; nothing for other types.
// Acknowledge a Pub/Sub message once its id is in written.
//
// deadLetters is a PCollection<schemas.DeadLetter>: the rows BigQuery
// rejected, or that still failed after the retries, as speed-layer dead
// letters (stage write_<table>, reason write_failed, the row as JSON in
// payload, its message_id kept) — write them with Stream to dead_letter.
// It is always empty for dead_letter itself: a dead letter that cannot be
// written fails the bundle, so that the runner retries it, rather than
// being dropped.
//
// Both outputs are in the global window, each element at its row's
// timestamp. Every row of table.Row is counted in rows_written_<table>
// or write_failed.
//
// It panics when cfg is invalid, when table is not a speed-layer table
// or dead_letter, or when rows is not a PCollection of table.Row.
func Stream(s beam.Scope, cfg Config, table schemas.Table, rows beam.PCollection) (written, deadLetters beam.PCollection) {
	s = s.Scope("bqsink.Stream")
	cfg = cfg.withServer()
	if err := validateStream(cfg, table, rows); err != nil {
		panic(fmt.Sprintf("bqsink.Stream(%s): %v", table.Name, err))
	}
	// The outputs leave in FinishBundle, where the SDK puts every element
	// in the global window: take the rows there first, so that a windowed
	// PCollection's coder never meets a global-window element.
	rows = beam.WindowInto(s, window.NewGlobalWindows(), rows)
	return beam.ParDo2(s, &streamFn{Config: cfg, Table: table.Name}, rows)
}

func validateStream(cfg Config, table schemas.Table, rows beam.PCollection) error {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := schemas.LookupTable(table.Name); err != nil {
		errs = append(errs, err)
	} else if !streamTables[table.Name] {
		errs = append(errs, errors.New("Stream writes the speed layer's tables and dead_letter only"))
	}
	if got := rows.Type().Type(); got != table.Row {
		errs = append(errs, fmt.Errorf("rows are %v, the table's rows are %v", got, table.Row))
	}
	if _, err := EncoderFor(table.Row); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// streamRow is an encoded row waiting for its append, with what its
// outputs need.
type streamRow struct {
	data      []byte
	messageID string
	ts        beam.EventTime
}

// failedRow is a row BigQuery did not take, and why.
type failedRow struct {
	row streamRow
	msg string
}

type stamped[T any] struct {
	ts beam.EventTime
	v  T
}

// streamFn appends a bundle's rows to one table's default stream and, once
// BigQuery has confirmed them, emits their message ids; the rows it could
// not write become dead letters.
type streamFn struct {
	Config Config
	Table  string

	table   schemas.Table
	enc     *Encoder
	dead    deadLetters
	written beam.Counter
	retries beam.Counter
	outages beam.Counter
	policy  retryPolicy
	w       appender // opened on first use, closed in Teardown

	// The bundle's state.
	batch      []streamRow
	batchBytes int
	inflight   []inflightAppend
	ids        []stamped[string]
	letters    []stamped[schemas.DeadLetter]
}

func (f *streamFn) Setup() error {
	var err error
	if f.table, f.enc, err = tableEncoder(f.Table); err != nil {
		return err
	}
	f.dead = newDeadLetters(f.table)
	f.dead.layer = schemas.LayerSpeed
	f.written = beam.NewCounter(metricnames.Namespace, metricnames.RowsWritten(f.Table))
	f.retries = beam.NewCounter(metricnames.Namespace, metricnames.WriteRetries)
	f.outages = beam.NewCounter(metricnames.Namespace, metricnames.SinkUnavailableRetries)
	f.policy = streamRetry()
	return nil
}

func (f *streamFn) Teardown() error {
	if f.w == nil {
		return nil
	}
	err := f.w.close()
	f.w = nil
	return err
}

func (f *streamFn) StartBundle(_ context.Context, _ func(beam.EventTime, string), _ func(beam.EventTime, schemas.DeadLetter)) {
	f.reset()
}

func (f *streamFn) ProcessElement(ctx context.Context, ts beam.EventTime, row beam.T, _ func(beam.EventTime, string), _ func(beam.EventTime, schemas.DeadLetter)) error {
	if f.Table == schemas.TableDeadLetter {
		v, err := f.enc.value(row)
		if err != nil {
			return fmt.Errorf("stream %s: %w", f.Table, err)
		}
		row = writableDeadLetter(v.Interface().(schemas.DeadLetter))
	}
	data, err := f.enc.Encode(row)
	var rerr *RowError
	if errors.As(err, &rerr) {
		if f.Table == schemas.TableDeadLetter {
			f.dead.failed.Inc(ctx, 1)
			return fmt.Errorf("stream %s: a dead letter BigQuery would refuse: %w", f.Table, err)
		}
		f.letters = append(f.letters, stamped[schemas.DeadLetter]{ts, f.dead.ofRow(ctx, f.enc, row, rerr.Error())})
		return nil
	}
	if err != nil {
		return fmt.Errorf("encode %s row: %w", f.Table, err)
	}
	r := streamRow{data: data, ts: ts}
	if id := f.enc.String(row, "message_id"); id != nil {
		r.messageID = *id
	}
	if limit := f.Config.Server.AppendBytes; len(data) > limit {
		return f.failed(ctx, []failedRow{{r, fmt.Sprintf("row of %d bytes exceeds the %d-byte append limit", len(data), limit)}})
	}
	if len(f.batch) > 0 && f.batchBytes+len(data) > min(streamFlushBytes, f.Config.Server.AppendBytes) {
		if err := f.flush(ctx); err != nil {
			return err
		}
	}
	f.batch = append(f.batch, r)
	f.batchBytes += len(data)
	if len(f.batch) >= streamFlushRows {
		return f.flush(ctx)
	}
	return nil
}

// FinishBundle sends the last batch, waits for every append of the bundle
// and only then emits: a message id leaves once its row is written.
func (f *streamFn) FinishBundle(ctx context.Context, emitWritten func(beam.EventTime, string), emitDead func(beam.EventTime, schemas.DeadLetter)) error {
	defer f.reset()
	if err := f.flush(ctx); err != nil {
		return err
	}
	for len(f.inflight) > 0 {
		if err := f.settleOldest(ctx); err != nil {
			return err
		}
	}
	for _, id := range f.ids {
		emitWritten(id.ts, id.v)
	}
	for _, dl := range f.letters {
		emitDead(dl.ts, dl.v)
	}
	return nil
}

func (f *streamFn) reset() {
	f.batch, f.batchBytes, f.inflight, f.ids, f.letters = nil, 0, nil, nil, nil
}

// flush sends the batch as one append, leaving it in flight; with
// streamInflight appends in flight it first waits for the oldest.
func (f *streamFn) flush(ctx context.Context) error {
	if len(f.batch) == 0 {
		return nil
	}
	rows := f.batch
	f.batch, f.batchBytes = nil, 0
	if f.w == nil {
		w, err := f.open(ctx)
		if err != nil {
			return err
		}
		f.w = w
	}
	for len(f.inflight) >= streamInflight {
		if err := f.settleOldest(ctx); err != nil {
			return err
		}
	}
	f.inflight = append(f.inflight, inflightAppend{rows: rows, wait: f.w.send(ctx, dataOf(rows))})
	return nil
}

// open connects to the table's default stream, retrying transient
// failures. A table that does not exist fails the bundle: Ensure creates
// the tables before the job starts.
func (f *streamFn) open(ctx context.Context) (appender, error) {
	b, outage := f.policy.backoff, f.policy.outage
	var since time.Time
	for attempt, down := 1, 0; ; {
		w, err := openDefaultStream(f.Config, f.Table, f.enc.Descriptor())
		if err == nil {
			return w, nil
		}
		var pause time.Duration
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("stream %s: %w", f.Table, errors.Join(err, ctx.Err()))
		case blame(err, f.Config.Server) == faultSink:
			if down == 0 {
				since = time.Now()
			}
			down++
			f.onOutage(ctx)(err, time.Since(since), down)
			pause = outage.Pause()
		case !transient(err) || attempt >= f.policy.attempts:
			return nil, fmt.Errorf("stream %s: %w", f.Table, err)
		default:
			f.onRetry(ctx, "open the default stream")(err)
			pause = b.Pause()
			attempt++
		}
		if serr := gax.Sleep(ctx, pause); serr != nil {
			return nil, fmt.Errorf("stream %s: %w", f.Table, errors.Join(err, serr))
		}
	}
}

// settleOldest waits for the oldest append in flight and completes it:
// retries, dead letters, counters and message ids.
func (f *streamFn) settleOldest(ctx context.Context) error {
	a := f.inflight[0]
	f.inflight = f.inflight[1:]
	resp, err := a.wait(ctx)
	written, failed, err := deliver(ctx, f.policy, f.Config.Server, f.w.append, a.rows, resp, err, retryHooks{onRetry: f.onRetry(ctx, "append"), onOutage: f.onOutage(ctx)})
	if err != nil {
		return fmt.Errorf("stream %s: %w", f.Table, err)
	}
	f.written.Inc(ctx, int64(len(written)))
	for _, r := range written {
		if r.messageID != "" {
			f.ids = append(f.ids, stamped[string]{r.ts, r.messageID})
		}
	}
	return f.failed(ctx, failed)
}

// failed turns rows BigQuery did not take into dead letters; for
// dead_letter itself, it fails the bundle instead.
func (f *streamFn) failed(ctx context.Context, rows []failedRow) error {
	if len(rows) == 0 {
		return nil
	}
	if f.Table == schemas.TableDeadLetter {
		f.dead.failed.Inc(ctx, int64(len(rows)))
		return fmt.Errorf("stream %s: BigQuery did not take %d dead letters; the bundle fails so that they are retried, never dropped. The first: %s", f.Table, len(rows), rows[0].msg)
	}
	for _, r := range rows {
		dl := f.dead.ofData(ctx, f.enc, r.row.data, r.msg)
		f.letters = append(f.letters, stamped[schemas.DeadLetter]{r.row.ts, dl})
	}
	slog.ErrorContext(ctx, "rows not written, sent to dead letters", "table", f.Table, "rows", len(rows), "first", rows[0].msg)
	return nil
}

// outageAlarm is how long an outage holds a bundle before its log lines
// turn from warnings into errors.
const outageAlarm = 5 * time.Minute

// onOutage counts and logs a retry while BigQuery is unavailable.
func (f *streamFn) onOutage(ctx context.Context) func(error, time.Duration, int) {
	return func(err error, waited time.Duration, attempt int) {
		f.outages.Inc(ctx, 1)
		level := slog.LevelWarn
		if waited >= outageAlarm {
			level = slog.LevelError
		}
		slog.Log(ctx, level, "BigQuery unavailable: the bundle waits and retries; nothing it holds is acknowledged",
			"table", f.Table, "waited", waited.Round(time.Second).String(), "attempt", attempt, "error", err)
	}
}

func (f *streamFn) onRetry(ctx context.Context, what string) func(error) {
	return func(err error) {
		f.retries.Inc(ctx, 1)
		slog.WarnContext(ctx, "retrying a BigQuery call", "call", what, "table", f.Table, "error", err)
	}
}

func dataOf(rows []streamRow) [][]byte {
	data := make([][]byte, len(rows))
	for i, r := range rows {
		data[i] = r.data
	}
	return data
}

// streamRetry is the retry policy of an append. A request BigQuery
// refuses is tried six times, 100 ms doubling to 5 s between tries (about
// 6 s in all); an unavailable sink is retried for as long as it is down,
// 100 ms doubling to 10 s between tries.
func streamRetry() retryPolicy {
	return retryPolicy{
		attempts: 6,
		backoff:  gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2},
		outage:   gax.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2},
	}
}

// fault is who a failed append blames.
type fault int

const (
	// faultSink: BigQuery cannot be reached or does not serve this caller
	// now (unavailable, deadline, quota, aborted, internal, not found,
	// permission, authentication, a closed connection). No row is at
	// fault: the bundle waits and retries until the sink is back, and
	// nothing it holds is acknowledged meanwhile.
	faultSink fault = iota
	// faultRequest: BigQuery refused the request itself (invalid
	// argument, failed precondition, out of range…) without naming rows.
	// Retried a few times; then the rows are sent in halves until the
	// row that is refused alone is found, and it becomes a dead letter.
	faultRequest
)

// blame classifies a failed append for srv. A server that reports a row
// it cannot store with Internal (the emulator) has Internal blame the
// request; against BigQuery, Internal is BigQuery's own trouble.
//
// Unknown is the sink's: the emulator ends a connection with it after a
// failed append, and an append sent before the client noticed gets that
// other append's failure.
func blame(err error, srv Server) fault {
	if errors.Is(err, io.EOF) {
		return faultSink
	}
	st, ok := status.FromError(err)
	if !ok {
		if transient(err) {
			return faultSink
		}
		return faultRequest
	}
	switch st.Code() {
	case codes.Internal:
		if srv.InternalIsRowFault {
			return faultRequest
		}
		return faultSink
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists,
		codes.Unimplemented, codes.DataLoss:
		return faultRequest
	default: // Unavailable, DeadlineExceeded, ResourceExhausted, Aborted, NotFound, PermissionDenied, Unauthenticated, Canceled, Unknown
		return faultSink
	}
}

// appendFunc sends rows as one append and waits for BigQuery's answer.
type appendFunc func(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error)

// retryHooks tell an operator about retries: onRetry before each retry of
// a refused request, onOutage before each retry while the sink is
// unavailable, with how long the rows have waited.
type retryHooks struct {
	onRetry  func(err error)
	onOutage func(err error, waited time.Duration, attempt int)
}

// delivery writes one append's rows to the end: only a row BigQuery
// refuses becomes a failed row.
type delivery struct {
	p     retryPolicy
	srv   Server
	send  appendFunc
	hooks retryHooks
}

// deliver completes the write of rows, whose first append answered resp
// and err. Rows BigQuery rejects one by one (row errors: no row of that
// request was written) leave at once and the others are sent again. An
// unavailable sink is retried with backoff for as long as it lasts; a
// refused request p.attempts times, then in halves, down to the row that
// BigQuery refuses alone. It returns the rows written and the rows
// BigQuery refused, with the reason; an error only when ctx ends first.
func deliver(ctx context.Context, p retryPolicy, srv Server, send appendFunc, rows []streamRow, resp *storagepb.AppendRowsResponse, err error, hooks retryHooks) (written []streamRow, failed []failedRow, _ error) {
	d := delivery{p: p, srv: srv, send: send, hooks: hooks}
	return d.rows(ctx, rows, resp, err, p.attempts)
}

// rows delivers rows with up to attempts tries of a refused request.
func (d delivery) rows(ctx context.Context, rows []streamRow, resp *storagepb.AppendRowsResponse, err error, attempts int) (written []streamRow, failed []failedRow, _ error) {
	b, outage := d.p.backoff, d.p.outage
	var (
		answered  error // the last failure that was an answer, not a closed connection
		refused   int   // tries of this request that BigQuery refused
		down      int   // retries while the sink was unavailable
		downSince time.Time
	)
	for {
		if err == nil {
			return rows, failed, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, failed, errors.Join(err, cerr)
		}
		if !errors.Is(err, io.EOF) {
			answered = err
		}
		if rowErrs := rowErrorsOf(resp, 0, len(rows)); len(rowErrs) > 0 {
			kept := rows[:0:0]
			for i, r := range rows {
				if msg, bad := rowErrs[rowKey{0, i}]; bad {
					failed = append(failed, failedRow{r, msg})
				} else {
					kept = append(kept, r)
				}
			}
			if rows = kept; len(rows) == 0 {
				return nil, failed, nil
			}
			resp, err = d.send(ctx, dataOf(rows))
			continue
		}
		var pause time.Duration
		switch blame(err, d.srv) {
		case faultSink:
			if down == 0 {
				downSince = time.Now()
			}
			down++
			if d.hooks.onOutage != nil {
				d.hooks.onOutage(err, time.Since(downSince), down)
			}
			pause = outage.Pause()
		case faultRequest:
			refused++
			down = 0
			outage = d.p.outage
			if refused >= attempts {
				return d.isolate(ctx, rows, err, answered, refused, failed)
			}
			if d.hooks.onRetry != nil {
				d.hooks.onRetry(err)
			}
			pause = b.Pause()
		}
		if serr := gax.Sleep(ctx, pause); serr != nil {
			return nil, failed, errors.Join(err, serr)
		}
		resp, err = d.send(ctx, dataOf(rows))
	}
}

// isolate handles rows whose request BigQuery kept refusing: a single row
// fails with the error; more rows are sent again in two halves, each
// tried once before it is halved again, so that only the rows BigQuery
// refuses alone fail.
func (d delivery) isolate(ctx context.Context, rows []streamRow, err, answered error, tries int, failed []failedRow) ([]streamRow, []failedRow, error) {
	if len(rows) == 1 {
		msg := fmt.Sprintf("append failed: %v", err)
		if tries > 1 {
			msg = fmt.Sprintf("%d attempts failed, the last: %v", tries, err)
		}
		if answered != nil && answered != err {
			msg += fmt.Sprintf(" (the last answer: %v)", answered)
		}
		return nil, append(failed, failedRow{rows[0], msg}), nil
	}
	var written []streamRow
	half := len(rows) / 2
	for _, part := range [][]streamRow{rows[:half], rows[half:]} {
		resp, err := d.send(ctx, dataOf(part))
		w, f, err := d.rows(ctx, part, resp, err, 1)
		written = append(written, w...)
		failed = append(failed, f...)
		if err != nil {
			return nil, failed, err
		}
	}
	return written, failed, nil
}

// appender appends rows to one table's default stream.
type appender interface {
	// send starts an append; wait returns its answer.
	send(ctx context.Context, rows [][]byte) (wait appendWait)
	// append sends an append and waits for its answer.
	append(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error)
	close() error
}

// appendWait waits for the answer to an append.
type appendWait func(ctx context.Context) (*storagepb.AppendRowsResponse, error)

// inflightAppend is an append sent and not yet settled.
type inflightAppend struct {
	rows []streamRow
	wait appendWait
}

// defaultStream is a managed writer on a table's default stream, with a
// client of its own: one per DoFn instance and table. It lives as long as
// the instance, so it does not take a bundle's context.
type defaultStream struct {
	client *managedwriter.Client
	ms     *managedwriter.ManagedStream
	cancel context.CancelFunc
	server Server
}

// openDefaultStream opens a managed writer on table's default stream.
//
// The client multiplexes, which has every request name its stream. The
// emulator needs that: without it, the client names the stream in a
// connection's first request only, and the emulator sends an unnamed
// append to any stream of any table. The emulator also decodes every
// request of a connection with the first request's descriptor, so a
// client must not write two tables: hence one client per writer.
func openDefaultStream(cfg Config, table string, desc *descriptorpb.DescriptorProto) (*defaultStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer exclusive(cfg.Server)()
	client, err := NewWriteClient(ctx, cfg.Project, managedwriter.WithMultiplexing())
	if err != nil {
		cancel()
		return nil, err
	}
	ms, err := client.NewManagedStream(ctx,
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(cfg.Project, cfg.Dataset, table)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(desc),
	)
	if err != nil {
		client.Close()
		cancel()
		return nil, fmt.Errorf("open the default stream of %s.%s: %w", cfg.Dataset, table, err)
	}
	return &defaultStream{client: client, ms: ms, cancel: cancel, server: cfg.Server}, nil
}

// send starts an append. Against BigQuery it returns at once and the
// append's answer comes later. Against the emulator it waits for the
// answer, holding the emulator lock: the emulator's SQLite fails
// ("database is locked") or stalls for a minute when appends of several
// writers meet (measured: three writers of 10 appends each took 183 s,
// one after another 3 s).
func (d *defaultStream) send(ctx context.Context, rows [][]byte) appendWait {
	if d.server.OneWriter {
		resp, err := d.append(ctx, rows)
		return func(context.Context) (*storagepb.AppendRowsResponse, error) { return resp, err }
	}
	res, err := d.ms.AppendRows(ctx, rows)
	if err != nil {
		return func(context.Context) (*storagepb.AppendRowsResponse, error) { return nil, err }
	}
	return func(ctx context.Context) (*storagepb.AppendRowsResponse, error) { return waitAppend(ctx, res) }
}

func (d *defaultStream) append(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error) {
	defer exclusive(d.server)()
	res, err := d.ms.AppendRows(ctx, rows)
	if err != nil {
		return nil, err
	}
	return waitAppend(ctx, res)
}

// waitAppend waits for an append's answer, at most appendTimeout: an
// answer that does not come is a DeadlineExceeded, retried.
func waitAppend(ctx context.Context, res *managedwriter.AppendResult) (*storagepb.AppendRowsResponse, error) {
	wctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	resp, err := res.FullResponse(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = status.Errorf(codes.DeadlineExceeded, "no answer to an append within %v", appendTimeout)
	}
	return resp, err
}

func (d *defaultStream) close() error {
	defer d.cancel()
	err := d.ms.Close()
	if errors.Is(err, io.EOF) { // the normal state of a closed writer
		err = nil
	}
	return errors.Join(err, d.client.Close())
}
