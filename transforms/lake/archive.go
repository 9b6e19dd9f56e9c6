package lake

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// Defaults applied by Archive to the zero fields of an ArchiveConfig.
const (
	DefaultArchiveShards = 4
	DefaultArchiveWindow = time.Minute
)

// ArchiveAllowedLateness is how long after its end an archive window
// still takes records. Records are stamped with the wall clock, which is
// ahead of the watermark, so none should ever be late; this covers clock
// skew between workers and a slow stage, and a record that is late
// nonetheless is written in a pane of its own (a new file), not dropped.
const ArchiveAllowedLateness = 10 * time.Minute

// Limits of an ArchiveConfig.
const (
	maxArchiveShards = 999 // three digits in the file name
	minArchiveWindow = time.Second
	maxArchiveWindow = time.Hour
	// maxLakePrefix leaves room in Cloud Storage's 1024-byte object names
	// for raw/dt=…/hr=…/ and the file name.
	maxLakePrefix = 900
)

// Retries of one object write: Cloud Storage's client retries transient
// failures (429, 5xx, broken connections) with backoff. The write only
// creates an object (a does-not-exist precondition) whose name carries a
// digest of its content, so a retry that finds the object stored by the
// attempt before it is done, not a conflict.
const (
	writeAttempts = 6
	writeTimeout  = 5 * time.Minute
)

func writeBackoff() gax.Backoff {
	return gax.Backoff{Initial: 250 * time.Millisecond, Max: 15 * time.Second, Multiplier: 2}
}

// wallClock is the archive's clock, a variable for the tests.
var wallClock = time.Now

// ArchiveConfig configures Archive.
type ArchiveConfig struct {
	// Lake is the lake root on Cloud Storage: gs://BUCKET[/prefix].
	Lake string
	// Shards is how many files each archive window writes per lake hour
	// folder, at most (default 4, at most 999). Records go to a shard by
	// a hash of their message id. A file's records are held in memory
	// while it is written: more shards, smaller files.
	Shards int
	// Window is the length of the ingest-time windows (default 1 minute,
	// 1s to 1h in whole seconds): each window writes its files when it
	// closes, so it bounds the delay before a record is archived.
	Window time.Duration
}

// Validate reports every problem of the configuration, joined, each
// prefixed "lake:". Archive calls it while the pipeline is built.
func (c ArchiveConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("lake: "+format, args...))
	}
	if err := validateLake(c.Lake); err != nil {
		errs = append(errs, err)
	}
	if c.Shards < 0 || c.Shards > maxArchiveShards {
		bad("Shards is %d; want 1 to %d (0 for the default, %d)", c.Shards, maxArchiveShards, DefaultArchiveShards)
	}
	switch {
	case c.Window == 0:
	case c.Window < minArchiveWindow || c.Window > maxArchiveWindow:
		bad("Window is %v; want %v to %v (0 for the default, %v)", c.Window, minArchiveWindow, maxArchiveWindow, DefaultArchiveWindow)
	case c.Window%time.Second != 0:
		bad("Window is %v; want whole seconds (file names carry the window start to the second)", c.Window)
	}
	return errors.Join(errs...)
}

// validateLake checks a lake root gs://BUCKET[/prefix].
func validateLake(lake string) error {
	rest, ok := strings.CutPrefix(lake, "gs://")
	switch {
	case lake == "":
		return errors.New("lake: Lake is required: gs://BUCKET[/prefix]")
	case !ok:
		return fmt.Errorf("lake: Lake %q is not a Cloud Storage location gs://BUCKET[/prefix] (the archive writes to Cloud Storage only)", lake)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	switch {
	case !schemas.ValidBucket(bucket):
		return fmt.Errorf("lake: Lake %q: %q is not a Cloud Storage bucket name", lake, bucket)
	case strings.ContainsAny(prefix, "*?[]"):
		return fmt.Errorf("lake: Lake %q: the prefix holds a glob character (*?[]), which the batch job's globs would misread", lake)
	case strings.ContainsFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("lake: Lake %q: the prefix holds a control character", lake)
	case len(prefix) > maxLakePrefix:
		return fmt.Errorf("lake: Lake %q: the prefix is %d bytes; at most %d leave room for the file names", lake, len(prefix), maxLakePrefix)
	}
	if prefix != "" && slices.ContainsFunc(strings.Split(prefix, "/"), func(f string) bool { return f == "" || f == "." || f == ".." }) {
		return fmt.Errorf("lake: Lake %q: the prefix has an empty, . or .. folder", lake)
	}
	return nil
}

// withDefaults returns the configuration with its zero fields set.
func (c ArchiveConfig) withDefaults() ArchiveConfig {
	if c.Shards == 0 {
		c.Shards = DefaultArchiveShards
	}
	if c.Window == 0 {
		c.Window = DefaultArchiveWindow
	}
	return c
}

// Archived is a record Archive has written to the lake: it is durable
// there, and its Pub/Sub message may be acknowledged (with AckID) as far
// as the archive is concerned.
type Archived struct {
	MessageID string
	AckID     string
}

// archiveKey groups the records of one file: the lake hour folder and a
// shard.
type archiveKey struct {
	// Hour is the start of the UTC hour of the records' schemas.ArchiveTime,
	// in microseconds.
	Hour  int64
	Shard int
}

func init() {
	beam.RegisterType(reflect.TypeOf((*Archived)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*archiveKey)(nil)).Elem())
	register.DoFn2x0[schemas.Record, func(beam.EventTime, archiveKey, schemas.Record)](&keyForArchiveFn{})
	register.DoFn6x1[context.Context, beam.PaneInfo, beam.Window, archiveKey, func(*schemas.Record) bool, func(Archived), error](&writeArchiveFn{})
	register.Emitter3[beam.EventTime, archiveKey, schemas.Record]()
	register.Emitter1[Archived]()
	register.Iter1[schemas.Record]()
}

// Archive writes every record to the lake as received, one archive
// envelope (schemas.MarshalEnvelope) per line, under
// <lake>/raw/dt=YYYY-MM-DD/hr=HH/ of its schemas.ArchiveTime — the event
// time when the record holds a readable one, else the publish time — so
// that the batch job's lake.Read gives back exactly the records received.
//
// It takes the PCollection<schemas.Record> of the Pub/Sub reader and
// returns a PCollection<Archived>, one per record, emitted once the file
// holding it is written: what the pipeline may acknowledge.
//
// # Windows in ingest time
//
// Each record is restamped with the wall clock when this step sees it
// (its ingest moment) and windowed into fixed windows of cfg.Window over
// that time. The reader's watermark stays behind the wall clock, so the
// stamp is ahead of it: no record is late, and each window closes about
// cfg.Window after its records arrived, whatever their event times. With
// event-time windows, a late event would be dropped or hold a window open
// for as long as the allowed lateness, and a record without an event time
// would have none to go by. A late event still lands in its old event
// hour's folder, in a new file: the file name carries the ingest window.
//
// # Files
//
// Per window, hour folder and shard (a stable hash of the message id mod
// cfg.Shards), one gzip file of JSON lines:
//
//	<lake>/raw/dt=YYYY-MM-DD/hr=HH/stream-<window start, 20060102T150405Z>-<shard>-of-<shards>-p<pane>-<digest>.jsonl.gz
//
// Lines are sorted by message id, then publish time, a line identical to
// the one before it (a redelivery of the same message) is written once,
// and the gzip header holds no name or time. The digest is the first 16
// hex digits of the SHA-256 of the file's lines (uncompressed): the same
// records give the same name, other records another name.
//
// # Nothing is replaced
//
// A file is only ever created, never overwritten: it is written with a
// does-not-exist precondition. Two writers of one window, shard and pane
// with different records — two streaming jobs on one subscription (a
// blue/green start, a drain overlapping its successor), or a restored
// job that fires a window again with only what came after its checkpoint
// — write files of different names, so neither removes a message the
// other stored; the batch job removes the duplicate lines by event_id. A
// retried bundle, or a second writer of the same records, finds its file
// already there (412 Precondition Failed): the object is checked to hold
// the same lines (the digest in its metadata, else its content) and the
// write counts as done, without a second file. An object of that name
// with other lines (never written by Archive) fails the write rather than
// being replaced. A write is retried while it fails transiently; if it
// still fails, the bundle fails and the runner retries it. Nothing is
// dropped.
//
// # Trigger
//
// Beam's default trigger — fire when the watermark passes the window's
// end, then once per late record — with ArchiveAllowedLateness and
// discarding panes, so a late pane writes only its new records, to a file
// of its own (-p1, -p2, …). No processing-time trigger: Prism v2.77.0
// crashes when a window's state is collected while such a timer is
// pending, and Flink's Go SDK has no processing-time timers. In ingest
// time the watermark already follows the wall clock, so the default
// trigger fires promptly.
//
// It panics if cfg is invalid (see ArchiveConfig.Validate).
func Archive(s beam.Scope, cfg ArchiveConfig, records beam.PCollection) beam.PCollection {
	s = s.Scope("lake.Archive")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	keyed := beam.ParDo(s.Scope("StampAndKey"), &keyForArchiveFn{Shards: cfg.Shards}, records)
	windowed := beam.WindowInto(s.Scope("IngestWindows"), window.NewFixedWindows(cfg.Window), keyed,
		beam.Trigger(trigger.Default()),
		beam.AllowedLateness(ArchiveAllowedLateness),
		beam.PanesDiscard())
	files := beam.GroupByKey(s.Scope("GroupFiles"), windowed)
	return beam.ParDo(s.Scope("WriteFiles"), &writeArchiveFn{Lake: cfg.Lake, Shards: cfg.Shards}, files)
}

// keyForArchiveFn stamps each record with its ingest moment and keys it
// by its hour folder and shard.
type keyForArchiveFn struct {
	Shards int
}

func (fn *keyForArchiveFn) ProcessElement(rec schemas.Record, emit func(beam.EventTime, archiveKey, schemas.Record)) {
	hour := time.UnixMicro(schemas.ArchiveTime(rec.Data, rec.PublishTime)).UTC().Truncate(time.Hour).UnixMicro()
	emit(mtime.FromTime(wallClock()), archiveKey{Hour: hour, Shard: shardOf(rec.MessageID, fn.Shards)}, rec)
}

// shardOf is a hash of the message id mod shards, the same in every
// process (FNV-1a, unlike Go's seeded map hash).
func shardOf(messageID string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(messageID))
	return int(h.Sum32() % uint32(shards))
}

// digestLen is how many hex digits of the content's SHA-256 a file name
// carries: 64 bits, so two different sets of records of one window,
// shard and pane never share a name in practice (and if they did, the
// write would fail rather than replace the file: see put).
const digestLen = 16

// metaDigest is the object metadata key holding the full SHA-256 (hex) of
// an archive file's lines, which tells a retry that the object of its
// name holds its lines without downloading it.
const metaDigest = "railyard-lines-sha256"

// fileName is the archive file of one window, shard and pane, holding the
// lines of digest (the hex SHA-256 of the uncompressed lines).
func fileName(windowStart time.Time, shard, shards int, pane int64, digest string) string {
	return fmt.Sprintf("stream-%s-%03d-of-%03d-p%d-%s.jsonl.gz", windowStart.UTC().Format("20060102T150405Z"), shard, shards, pane, digest[:digestLen])
}

// writeArchiveFn writes the records of one window, hour and shard to
// their file, then emits them as Archived.
type writeArchiveFn struct {
	Lake   string
	Shards int

	bucket, prefix string
	client         *storage.Client
	files, records beam.Counter
}

func (fn *writeArchiveFn) Setup(ctx context.Context) error {
	rest := strings.TrimPrefix(fn.Lake, "gs://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	fn.bucket = bucket
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		fn.prefix = prefix + "/"
	}
	// Honours STORAGE_EMULATOR_HOST.
	client, err := storage.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("lake: Cloud Storage client: %w", err)
	}
	fn.client = client
	fn.files = beam.NewCounter(metricnames.Namespace, metricnames.LakeFilesWritten)
	fn.records = beam.NewCounter(metricnames.Namespace, metricnames.LakeRecordsArchived)
	return nil
}

func (fn *writeArchiveFn) Teardown() error {
	if fn.client == nil {
		return nil
	}
	return fn.client.Close()
}

// archiveLine is one record's line, with what sorts it.
type archiveLine struct {
	messageID   string
	publishTime int64
	line        []byte
}

func (fn *writeArchiveFn) ProcessElement(ctx context.Context, pane beam.PaneInfo, w beam.Window, key archiveKey,
	recs func(*schemas.Record) bool, emit func(Archived)) error {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return fmt.Errorf("lake: archive window %v is not a fixed window", w)
	}
	folder := fn.prefix + schemas.LakeHourPath(key.Hour)

	var lines []archiveLine
	var done []Archived
	var rec schemas.Record
	for recs(&rec) {
		line, err := schemas.MarshalEnvelope(rec)
		if err != nil {
			return fmt.Errorf("lake: archive message %s to gs://%s/%s: %w", rec.MessageID, fn.bucket, folder, err)
		}
		lines = append(lines, archiveLine{messageID: rec.MessageID, publishTime: rec.PublishTime, line: line})
		done = append(done, Archived{MessageID: rec.MessageID, AckID: rec.AckID})
	}
	data, digest, err := gzipLines(lines)
	if err != nil {
		return fmt.Errorf("lake: archive to gs://%s/%s: %w", fn.bucket, folder, err)
	}
	object := folder + fileName(iw.Start.ToTime(), key.Shard, fn.Shards, pane.Index, digest)
	if err := fn.put(ctx, object, data, digest); err != nil {
		return fmt.Errorf("lake: write gs://%s/%s: %w", fn.bucket, object, err)
	}
	fn.files.Inc(ctx, 1)
	fn.records.Inc(ctx, int64(len(done)))
	for _, a := range done {
		emit(a)
	}
	return nil
}

// gzipLines sorts the lines (message id, publish time, bytes), drops
// repeats of a line, and gzips them, each ending in a newline, with no
// name or time in the header: the same lines give the same bytes. digest
// is the hex SHA-256 of the uncompressed lines.
func gzipLines(lines []archiveLine) (data []byte, digest string, err error) {
	slices.SortFunc(lines, func(a, b archiveLine) int {
		return cmp.Or(strings.Compare(a.messageID, b.messageID), cmp.Compare(a.publishTime, b.publishTime), bytes.Compare(a.line, b.line))
	})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	h := sha256.New()
	w := io.MultiWriter(zw, h)
	for i, l := range lines {
		if i > 0 && bytes.Equal(l.line, lines[i-1].line) {
			continue
		}
		if _, err := w.Write(l.line); err != nil {
			return nil, "", err
		}
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return nil, "", err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), hex.EncodeToString(h.Sum(nil)), nil
}

// put creates one object holding data, whose lines have the hex SHA-256
// digest. It never overwrites: if the object exists already (an earlier
// attempt of the same bundle, or another writer of the same records), it
// is done once the object is known to hold the same lines, and fails if
// it holds other ones.
func (fn *writeArchiveFn) put(ctx context.Context, object string, data []byte, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	obj := fn.client.Bucket(fn.bucket).Object(object).Retryer(
		storage.WithPolicy(storage.RetryAlways),
		storage.WithBackoff(writeBackoff()),
		storage.WithMaxAttempts(writeAttempts),
	)
	w := obj.If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/gzip"
	w.Metadata = map[string]string{metaDigest: digest}
	if _, err := w.Write(data); err != nil {
		cancel() // abandons the upload
		_ = w.Close()
		return err
	}
	err := w.Close()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != http.StatusPreconditionFailed {
		return err
	}
	same, err := holdsLines(ctx, obj, digest)
	if err != nil {
		return fmt.Errorf("the object exists already; checking that it holds the same lines: %w", err)
	}
	if !same {
		return fmt.Errorf("the object exists already with other lines than its name's digest %s; it is not replaced (it was not written by the archive: move it away, and the runner's retry writes the file)", digest[:digestLen])
	}
	return nil
}

// holdsLines reports whether the existing object obj holds lines of the
// hex SHA-256 digest: by the digest in its metadata, else by its content.
func holdsLines(ctx context.Context, obj *storage.ObjectHandle, digest string) (bool, error) {
	attrs, err := obj.Attrs(ctx)
	if err != nil {
		return false, err
	}
	if got, ok := attrs.Metadata[metaDigest]; ok {
		return got == digest, nil
	}
	r, err := obj.NewReader(ctx)
	if err != nil {
		return false, err
	}
	defer r.Close()
	src := &sourceReader{r: r}
	h := sha256.New()
	zr, err := gzip.NewReader(src)
	if err == nil {
		_, err = io.Copy(h, zr)
	}
	switch {
	case src.err != nil:
		return false, src.err // a read failure: the caller fails and is retried
	case err != nil:
		return false, nil // not a whole gzip stream: not the same lines
	}
	return hex.EncodeToString(h.Sum(nil)) == digest, nil
}
