package bqsink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/railyard/railyard/schemas/metricnames"
)

// maxAppendRows bounds the rows of one AppendRows request; its bytes are
// bounded by the server's appendBytes.
const maxAppendRows = 50000

// rejectedRow is a row BigQuery refused, with its reason.
type rejectedRow struct {
	data []byte
	msg  string
}

// emulatorMu serializes this process's writes when they go to the
// emulator. Its REST server takes one request at a time but its gRPC
// server does not, and a stream commit that meets a REST job on its
// SQLite database fails with "sqlite3: database is locked", or holds the
// lock for a minute, while queued REST requests outlive the server's
// 15-second read timeout and fail with "googleapi: Error 400: EOF,
// invalid" (measured with 12 days written at once). BigQuery needs no
// such lock; the days are written in parallel there.
var emulatorMu sync.Mutex

// exclusive takes the emulator lock when writing to the emulator, and
// returns its release.
func exclusive(srv Server) func() {
	if !srv.OneWriter {
		return func() {}
	}
	emulatorMu.Lock()
	return emulatorMu.Unlock
}

// stager writes rows into staging tables through the Storage Write API.
type stager struct {
	bq      *bigquery.Client
	mw      *managedwriter.Client
	project string
	dataset string
	server  Server
	retry   retryPolicy
	// onRetry counts and logs a retried call.
	onRetry func(ctx context.Context, what string, err error)
}

// stagingName is the name of a staging table of table for one attempt:
// the prefix says what it is and which run made it, the random suffix
// keeps two attempts at the same work (a retry racing a slow original)
// from ever writing into each other's table.
func stagingName(table, part, runID string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("_railyard_stage_%s_%s_%s_%s", table, part, runID, hex.EncodeToString(b[:]))
	return strings.ReplaceAll(name, "-", "_")
}

// createStaging creates a staging table with the given schema that
// expires by itself.
func (w *stager) createStaging(ctx context.Context, name string, schema bigquery.Schema, expiration time.Duration) (*bigquery.Table, error) {
	tbl := w.bq.DatasetInProject(w.project, w.dataset).Table(name)
	md := &bigquery.TableMetadata{
		Schema:         schema,
		Description:    "Railyard staging table of a batch write; dropped when the write is done, expires if it is not.",
		ExpirationTime: time.Now().Add(expiration),
	}
	err := w.retry.do(ctx, w.retried(ctx, "create staging table"), func() error {
		err := tbl.Create(ctx, md)
		if err != nil && httpCode(err) == 409 { // an earlier try of this call created it
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create staging table %s: %w", name, err)
	}
	return tbl, nil
}

// dropStaging deletes a staging table; a failure is logged, since the
// table expires anyway. It runs even when ctx is done (a failed bundle).
func (w *stager) dropStaging(ctx context.Context, tbl *bigquery.Table) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := w.retry.do(ctx, w.retried(ctx, "drop staging table"), func() error {
		if err := tbl.Delete(ctx); err != nil && !isNotFound(err) {
			return err
		}
		return nil
	})
	if err != nil {
		slog.WarnContext(ctx, "staging table not dropped; it expires by itself", "table", tbl.FullyQualifiedName(), "error", err)
	}
}

// write appends rows to the staging table tbl through pending streams,
// then commits every stream at once. It returns how many rows were
// committed and the rows BigQuery rejected one by one. On error nothing
// of this call was committed, unless the commit itself failed halfway;
// either way the caller discards the staging table.
func (w *stager) write(ctx context.Context, tbl *bigquery.Table, desc *descriptorpb.DescriptorProto, rows iter.Seq[[]byte]) (int, []rejectedRow, error) {
	parent := managedwriter.TableParentFromParts(tbl.ProjectID, tbl.DatasetID, tbl.TableID)
	var (
		streams  []string
		rejected []rejectedRow
		written  int
	)
	srv := w.server
	oversize := func(row []byte) {
		rejected = append(rejected, rejectedRow{data: row, msg: fmt.Sprintf("row of %d bytes exceeds the %d-byte append limit", len(row), srv.AppendBytes)})
	}
	for group := range streamGroups(rows, srv.AppendBytes, maxAppendRows, srv.AppendsPerStream, oversize) {
		name, n, rej, err := w.writeStream(ctx, parent, desc, group)
		rejected = append(rejected, rej...)
		if err != nil {
			return 0, rejected, err
		}
		if name != "" {
			streams = append(streams, name)
			written += n
		}
	}
	for _, stream := range streams {
		if err := w.commit(ctx, parent, stream); err != nil {
			return 0, rejected, fmt.Errorf("commit %s: %w", tbl.TableID, err)
		}
	}
	return written, rejected, nil
}

// streamGroups cuts rows into appends of at most maxBytes and maxRows
// each, and the appends into groups of at most perStream, one group per
// write stream. A row larger than maxBytes goes to oversize instead.
// Only one group is held in memory at a time.
func streamGroups(rows iter.Seq[[]byte], maxBytes, maxRows, perStream int, oversize func([]byte)) iter.Seq[[][][]byte] {
	return func(yield func([][][]byte) bool) {
		var (
			group [][][]byte
			chunk [][]byte
			size  int
		)
		// flush closes the current append; with full, also the group.
		flush := func(full bool) bool {
			if len(chunk) > 0 {
				group = append(group, chunk)
				chunk, size = nil, 0
			}
			if len(group) > 0 && (full || len(group) >= perStream) {
				g := group
				group = nil
				return yield(g)
			}
			return true
		}
		for row := range rows {
			if len(row) > maxBytes {
				oversize(row)
				continue
			}
			if len(chunk) > 0 && (size+len(row) > maxBytes || len(chunk) >= maxRows) {
				if !flush(false) {
					return
				}
			}
			chunk = append(chunk, row)
			size += len(row)
		}
		flush(true)
	}
}

// commit commits one finalized stream, retrying transient failures.
//
// Streams are committed one by one rather than in one atomic
// BatchCommitWriteStreams: the staging table is private and is merged only
// once every stream is in, so atomicity across streams buys nothing, while
// a per-stream retry is exact everywhere. (BigQuery commits none of a batch
// that reports a stream error; the emulator commits each stream in its own
// transaction and, under concurrent writes, fails some with "database is
// locked" — retrying a whole batch there would duplicate the others.)
// A stream that an earlier, seemingly failed call did commit answers
// STREAM_ALREADY_COMMITTED: that is success.
func (w *stager) commit(ctx context.Context, parent, stream string) error {
	return w.retry.do(ctx, w.retried(ctx, "commit write stream"), func() error {
		resp, err := w.mw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{Parent: parent, WriteStreams: []string{stream}})
		if err != nil {
			return err
		}
		for _, e := range resp.GetStreamErrors() {
			if e.GetCode() == storagepb.StorageError_STREAM_ALREADY_COMMITTED {
				continue
			}
			return &commitError{code: e.GetCode(), msg: e.GetErrorMessage()}
		}
		return nil
	})
}

// commitError is a stream error of a commit. An unspecified code is
// worth a retry; the specific ones (stream not found, schema mismatch…)
// are not.
type commitError struct {
	code storagepb.StorageError_StorageErrorCode
	msg  string
}

func (e *commitError) Error() string { return fmt.Sprintf("commit failed: %s: %s", e.code, e.msg) }

func (e *commitError) transient() bool {
	return e.code == storagepb.StorageError_STORAGE_ERROR_CODE_UNSPECIFIED
}

// writeStream appends the chunks of one group to a new pending stream
// and finalizes it. A stream is all or nothing: when an append fails, the
// stream is abandoned (never committed) and the group is written again on
// a new stream — without the rows BigQuery rejected, or after a backoff
// for a transient error. It returns the stream's name ("" when every row
// was rejected), the rows committed to it, and the rejected rows.
func (w *stager) writeStream(ctx context.Context, parent string, desc *descriptorpb.DescriptorProto, group [][][]byte) (string, int, []rejectedRow, error) {
	var rejected []rejectedRow
	b := w.retry.backoff
	for attempt := 1; ; {
		n := 0
		for _, c := range group {
			n += len(c)
		}
		if n == 0 {
			return "", 0, rejected, nil
		}
		name, rowErrs, err := w.tryStream(ctx, parent, desc, group)
		switch {
		case err == nil:
			return name, n, rejected, nil
		case len(rowErrs) > 0:
			// No row of a request with row errors is written: drop the bad
			// ones and write the rest again at once.
			kept, rej := splitRejected(group, rowErrs)
			rejected = append(rejected, rej...)
			group = kept
			continue
		case !transient(err) || attempt >= w.retry.attempts:
			return "", 0, rejected, err
		}
		w.retried(ctx, "write stream")(err)
		if serr := gax.Sleep(ctx, b.Pause()); serr != nil {
			return "", 0, rejected, errors.Join(err, serr)
		}
		attempt++
	}
}

// rowKey is a row of a group: which append and which row of it.
type rowKey struct{ chunk, row int }

// tryStream makes one attempt at writing a group to a new pending stream.
// Row errors come back as a map from row to message.
func (w *stager) tryStream(ctx context.Context, parent string, desc *descriptorpb.DescriptorProto, group [][][]byte) (string, map[rowKey]string, error) {
	ms, err := w.mw.NewManagedStream(ctx,
		managedwriter.WithDestinationTable(parent),
		managedwriter.WithType(managedwriter.PendingStream),
		managedwriter.WithSchemaDescriptor(desc),
	)
	if err != nil {
		return "", nil, fmt.Errorf("open write stream on %s: %w", parent, err)
	}
	defer ms.Close()
	var offset int64
	for i, chunk := range group {
		res, err := ms.AppendRows(ctx, chunk, managedwriter.WithOffset(offset))
		if err != nil {
			return "", nil, fmt.Errorf("append to %s: %w", ms.StreamName(), err)
		}
		resp, err := res.FullResponse(ctx)
		if rowErrs := rowErrorsOf(resp, i, len(chunk)); len(rowErrs) > 0 {
			return "", rowErrs, fmt.Errorf("append to %s: %d rows rejected", ms.StreamName(), len(rowErrs))
		}
		if err != nil {
			return "", nil, fmt.Errorf("append to %s: %w", ms.StreamName(), err)
		}
		offset += int64(len(chunk))
	}
	if _, err := ms.Finalize(ctx); err != nil {
		return "", nil, fmt.Errorf("finalize %s: %w", ms.StreamName(), err)
	}
	return ms.StreamName(), nil, nil
}

// rowErrorsOf returns the row errors of an append response for the
// append at position chunk of its group, which held n rows. Indexes out
// of range are ignored: they name no row that could be removed.
func rowErrorsOf(resp *storagepb.AppendRowsResponse, chunk, n int) map[rowKey]string {
	var out map[rowKey]string
	for _, re := range resp.GetRowErrors() {
		i := int(re.GetIndex())
		if i < 0 || i >= n {
			continue
		}
		if out == nil {
			out = map[rowKey]string{}
		}
		out[rowKey{chunk, i}] = fmt.Sprintf("%s: %s", re.GetCode(), re.GetMessage())
	}
	return out
}

// splitRejected removes the rejected rows from group.
func splitRejected(group [][][]byte, rowErrs map[rowKey]string) ([][][]byte, []rejectedRow) {
	var rejected []rejectedRow
	kept := make([][][]byte, 0, len(group))
	for ci, chunk := range group {
		var k [][]byte
		for ri, row := range chunk {
			if msg, bad := rowErrs[rowKey{ci, ri}]; bad {
				rejected = append(rejected, rejectedRow{data: row, msg: msg})
				continue
			}
			k = append(k, row)
		}
		if len(k) > 0 {
			kept = append(kept, k)
		}
	}
	return kept, rejected
}

// runDML runs one DML statement as a query job, retrying transient
// failures. Railyard's statements are idempotent (a MERGE that replaces),
// so running one again after an unknown outcome is harmless.
func (w *stager) runDML(ctx context.Context, sql string) error {
	return w.retry.do(ctx, w.retried(ctx, "run statement"), func() error {
		job, err := w.bq.Query(sql).Run(ctx)
		if err != nil {
			return err
		}
		st, err := job.Wait(ctx)
		if err != nil {
			return err
		}
		return st.Err()
	})
}

func (w *stager) retried(ctx context.Context, what string) func(error) {
	return func(err error) {
		if w.onRetry != nil {
			w.onRetry(ctx, what, err)
		}
	}
}

// newStager connects to BigQuery for one DoFn instance. The clients live
// as long as the instance, so they do not take the Setup context.
func newStager(cfg Config) (*stager, error) {
	ctx := context.Background()
	bq, err := NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, err
	}
	mw, err := NewWriteClient(ctx, cfg.Project)
	if err != nil {
		bq.Close()
		return nil, err
	}
	retries := beam.NewCounter(metricnames.Namespace, metricnames.WriteRetries)
	return &stager{
		bq: bq, mw: mw, project: cfg.Project, dataset: cfg.Dataset, server: cfg.Server, retry: defaultRetry(),
		onRetry: func(ctx context.Context, what string, err error) {
			retries.Inc(ctx, 1)
			slog.WarnContext(ctx, "retrying a BigQuery call", "call", what, "error", err)
		},
	}, nil
}

func (w *stager) close() error { return errors.Join(w.mw.Close(), w.bq.Close()) }
