// Package lake reads and writes Railyard's raw data lake: files of one JSON
// record per line, plain or gzip, laid out as
// <lake>/raw/dt=YYYY-MM-DD/hr=HH/<file>.jsonl.gz by the event time's UTC
// date and hour. Read reads it on Cloud Storage (gs://) or local disk, for
// the batch job; Archive writes the streaming job's raw messages to it on
// Cloud Storage, as Read gives them back.
package lake

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"   // gs:// paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// ReadConfig configures Read.
type ReadConfig struct {
	// Globs are the file patterns to read: local paths or gs://bucket/…;
	// on gs:// "**" matches across folders.
	Globs []string
	// AllowEmpty lets a glob match no file (a lake day with no data);
	// otherwise a glob that matches nothing fails the job at its start.
	AllowEmpty bool
}

// Read reads every line of every file the globs match; a file whose name
// ends in .gz is gunzipped.
//
// It returns PCollection<schemas.Record>, one per line (archive envelopes
// restored to the message they hold, bare events as they are), each with
// its source_uri "<file>#L<line>"; PCollection<schemas.DeadLetter> for
// lines and files that cannot be read; and PCollection<string>, the URIs
// of the files read.
//
// # Broken files
//
// A file that can be read but not decoded costs one dead letter, not the
// run: a .gz file of 0 bytes (reason empty_file), one that is not gzip
// (not_gzip), and a gzip stream that breaks (corrupt_gzip: truncated, a
// bad checksum, corrupt data, garbage after the last member).
// The lines decoded before the break are records as usual; the rest of the
// file, from the line the break falls in, is the dead letter, with
// source_uri "<file>#L<that line>" and as payload the file's raw bytes as
// stored (compressed), up to schemas.MaxRecordBytes. Compressed bytes from
// the break on could not be decoded on their own (deflate refers back to
// the 32 KiB before), so the payload is the object from its start, which
// gzip tools can decode up to the break. The dead letter counts as one
// line read (lake_lines_read), so the job's counters still reconcile. A
// failure to read the file (the storage server unavailable, a dropped
// connection, bytes damaged on the way, which Cloud Storage's CRC32C
// check catches) is not a broken file: it fails the bundle, and the runner
// retries it.
func Read(s beam.Scope, cfg ReadConfig) (records, deadLetters, files beam.PCollection) {
	s = s.Scope("lake.Read")
	if len(cfg.Globs) == 0 {
		panic("lake.Read: no globs to read")
	}
	opt := fileio.MatchEmptyDisallow()
	if cfg.AllowEmpty {
		opt = fileio.MatchEmptyAllow()
	}
	matches := fileio.MatchAll(s, beam.CreateList(s, cfg.Globs), opt)
	matches = beam.Reshuffle(s, matches) // spread files over workers
	// Uncompressed: readLinesFn gunzips .gz files itself, to tell a broken
	// file from a failed read.
	readable := fileio.ReadMatches(s, matches, fileio.ReadUncompressed(), fileio.ReadDirectorySkip())
	return beam.ParDo3(s, &readLinesFn{}, readable)
}

// lineSuffix separates a file URI from its line number in source_uri.
const lineSuffix = "#L"

// SourceURI returns the source_uri of line n (1-based) of file.
func SourceURI(file string, n int) string { return fmt.Sprintf("%s%s%d", file, lineSuffix, n) }

// FileOf returns the file part of a source_uri.
func FileOf(sourceURI string) string {
	if i := strings.LastIndex(sourceURI, lineSuffix); i >= 0 {
		return sourceURI[:i]
	}
	return sourceURI
}

type readLinesFn struct {
	files, lines beam.Counter
}

func (fn *readLinesFn) Setup() {
	fn.files = beam.NewCounter(metricnames.Namespace, metricnames.LakeFilesRead)
	fn.lines = beam.NewCounter(metricnames.Namespace, metricnames.LakeLinesRead)
}

func (fn *readLinesFn) ProcessElement(ctx context.Context, f fileio.ReadableFile, emit func(schemas.Record), emitDead func(schemas.DeadLetter), emitFile func(string)) error {
	uri := f.Metadata.Path
	fileTime := f.Metadata.LastModified.UnixMicro()
	rc, err := f.Open(ctx)
	if err != nil {
		// The file matched but cannot be opened: a transient failure is
		// retried by the runner; the error names the file.
		return fmt.Errorf("lake: open %s: %w", uri, err)
	}
	defer rc.Close()
	fn.files.Inc(ctx, 1)
	emitFile(uri)

	raw := &sourceReader{r: rc, keep: schemas.MaxRecordBytes}
	// broken emits the rest of the file from line n on as one dead letter
	// with the file's raw bytes, or fails the bundle if the cause is a
	// failed read rather than broken content.
	broken := func(n int, reason string, cause error) error {
		// Read the file to its end: the payload keeps its first bytes, and
		// Cloud Storage's reader checks the object's CRC32C at the end, so
		// bytes damaged on their way here fail the read (and the bundle)
		// rather than passing for a broken file.
		_, _ = io.Copy(io.Discard, raw)
		if raw.err != nil {
			return fmt.Errorf("lake: read %s: %w", uri, raw.err)
		}
		fn.lines.Inc(ctx, 1)
		msg := fmt.Sprintf("file unreadable from line %d on (%d lines read before): %v; payload: the file as stored, %s",
			n, n-1, cause, payloadNote(len(raw.head), max(raw.n, f.Metadata.Size)))
		rec := schemas.Record{Data: raw.head, SourceURI: SourceURI(uri, n), IngestTime: fileTime}
		emitDead(schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead, &schemas.ContractError{Reason: reason, Msg: msg}, now()))
		return nil
	}

	var in io.Reader = raw
	gzipped := path.Ext(uri) == ".gz"
	if gzipped {
		zr, err := gzip.NewReader(raw)
		switch {
		case raw.err != nil:
			return fmt.Errorf("lake: read %s: %w", uri, raw.err)
		case err != nil && raw.n == 0:
			return broken(1, schemas.ReasonEmptyFile, errors.New("a .gz file of 0 bytes"))
		case err != nil && !bytes.HasPrefix(raw.head, gzipMagic):
			return broken(1, schemas.ReasonNotGzip, fmt.Errorf("not a gzip file: %w", err))
		case err != nil:
			return broken(1, schemas.ReasonCorruptGzip, fmt.Errorf("gzip header broken: %w", err))
		}
		defer zr.Close()
		in = zr
	}

	r := bufio.NewReaderSize(in, 256<<10)
	for n := 1; ; n++ {
		line, size, err := readLine(r, schemas.MaxDeadLetterPayload)
		if err != nil && !errors.Is(err, io.EOF) {
			// A failed read, not broken content: the runner retries the
			// bundle.
			if raw.err != nil {
				return fmt.Errorf("lake: read %s: %w", uri, raw.err)
			}
			if !gzipped {
				return fmt.Errorf("lake: read %s: %w", uri, err)
			}
			// What was read stands; the rest of the file is one dead letter.
			return broken(n, schemas.ReasonCorruptGzip, fmt.Errorf("gzip stream broken: %w", err))
		}
		if size == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		fn.lines.Inc(ctx, 1)
		src := SourceURI(uri, n)
		if size > len(line) {
			// Longer than a dead letter can keep: too large to be an event.
			rec := schemas.Record{Data: line, SourceURI: src, IngestTime: fileTime}
			emitDead(schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead,
				&schemas.ContractError{Reason: schemas.ReasonTooLarge, Msg: fmt.Sprintf("record is %d bytes, the limit is %d (payload cut to its first %d bytes)", size, schemas.MaxRecordBytes, len(line))}, now()))
		} else if rec, perr := schemas.ParseLakeLine(line, src, fileTime); perr != nil {
			emitDead(schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead, perr, now()))
		} else {
			emit(rec)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// payloadNote says how much of a file of size bytes a payload of kept
// bytes holds.
func payloadNote(kept int, size int64) string {
	if int64(kept) < size {
		return fmt.Sprintf("its first %d of %d bytes", kept, size)
	}
	return fmt.Sprintf("all %d bytes", size)
}

// sourceReader reads a file's raw bytes for a decoder, counting them,
// keeping the first keep of them, and remembering the first error other
// than io.EOF its reader gave: after a decoding error, a nil err means
// the bytes were read and are broken, a non-nil one that the read failed.
type sourceReader struct {
	r    io.Reader
	keep int

	head []byte
	n    int64
	err  error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if room := s.keep - len(s.head); room > 0 {
		s.head = append(s.head, p[:min(n, room)]...)
	}
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// readLine reads one line without its "\n", keeping at most limit bytes of
// it; size is the line's full length. At the end of the input it returns
// what is left with io.EOF.
func readLine(r *bufio.Reader, limit int) (line []byte, size int, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		size += len(chunk)
		if keep := limit - len(line); keep > 0 {
			line = append(line, chunk[:min(keep, len(chunk))]...)
		}
		switch {
		case err == nil:
			size-- // the newline
			if len(line) > size {
				line = line[:size]
			}
			return line, size, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, size, err
		}
	}
}

func now() int64 { return time.Now().UnixMicro() }

func init() {
	register.DoFn5x1[context.Context, fileio.ReadableFile, func(schemas.Record), func(schemas.DeadLetter), func(string), error](&readLinesFn{})
	register.Emitter1[schemas.Record]()
	register.Emitter1[schemas.DeadLetter]()
	register.Emitter1[string]()
}
