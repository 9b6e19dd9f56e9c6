// Package lake reads and writes Railyard's raw data lake: files of one JSON
// record per line, plain or gzip, laid out as
// <lake>/raw/dt=YYYY-MM-DD/hr=HH/<file>.jsonl.gz by the event time's UTC
// date and hour. Read reads it on Cloud Storage (gs://) or local disk, for
// the batch job; Archive writes the streaming job's raw messages to it on
// Cloud Storage, as Read gives them back.
package lake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"   // gs:// paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
)

// Counter names, in the "railyard" namespace.
const (
	counterFiles = "lake_files_read"
	counterLines = "lake_lines_read"
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

// Read reads every line of every file the globs match.
//
// It returns PCollection<schemas.Record>, one per line (archive envelopes
// restored to the message they hold, bare events as they are), each with
// its source_uri "<file>#L<line>"; PCollection<schemas.DeadLetter> for
// lines and files that cannot be read; and PCollection<string>, the URIs
// of the files read.
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
	readable := fileio.ReadMatches(s, matches, fileio.ReadAutoCompression(), fileio.ReadDirectorySkip())
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
	fn.files = beam.NewCounter("railyard", counterFiles)
	fn.lines = beam.NewCounter("railyard", counterLines)
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

	r := bufio.NewReaderSize(rc, 256<<10)
	for n := 1; ; n++ {
		line, size, err := readLine(r, schemas.MaxDeadLetterPayload)
		if err != nil && !errors.Is(err, io.EOF) {
			// A corrupt gzip stream or a read failure mid-file: what was
			// read stands; the rest of the file is one dead letter.
			rec := schemas.Record{SourceURI: SourceURI(uri, n), IngestTime: fileTime}
			emitDead(schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead,
				&schemas.ContractError{Reason: schemas.ReasonUnreadableInput, Msg: fmt.Sprintf("file unreadable from line %d on: %v", n, err)}, now()))
			return nil
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
