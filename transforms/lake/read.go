// Package lake reads and writes Railyard's raw data lake: files of one JSON
// record per line, plain or gzip, laid out as
// <lake>/raw/dt=YYYY-MM-DD/hr=HH/<file>.jsonl.gz by the event time's UTC
// date and hour. Read reads it on Cloud Storage (gs://) or local disk, for
// the batch job; Archive writes the streaming job's raw messages to it on
// Cloud Storage, as Read gives them back. Read reads a large plain file in
// byte ranges, in parallel, which Cloud Storage cannot check against the
// object's CRC32C as it checks a whole object (see Read).
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
	"runtime"
	"strings"
	"sync"
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
	// BlockBytes is the size of the byte ranges a plain file larger than
	// it is read in, in parallel (default DefaultBlockBytes). Plain files
	// up to it, and .gz files, are read whole, each by one worker.
	BlockBytes int64
}

// DefaultBlockBytes is ReadConfig.BlockBytes when it is zero, the size
// Beam's textio splits files at.
const DefaultBlockBytes = 64 << 20

// Validate reports every problem of the configuration, joined, each
// prefixed "lake:". Read calls it while the pipeline is built.
func (c ReadConfig) Validate() error {
	var errs []error
	if len(c.Globs) == 0 {
		errs = append(errs, errors.New("lake: Globs is empty: no files to read"))
	}
	for i, g := range c.Globs {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("lake: Globs[%d] is empty", i))
		}
	}
	if c.BlockBytes < 0 {
		errs = append(errs, fmt.Errorf("lake: BlockBytes is %d; want a positive size (0 for the default, %d)", c.BlockBytes, DefaultBlockBytes))
	}
	return errors.Join(errs...)
}

// withDefaults returns the configuration with its zero fields set.
func (c ReadConfig) withDefaults() ReadConfig {
	if c.BlockBytes == 0 {
		c.BlockBytes = DefaultBlockBytes
	}
	return c
}

// Read reads every line of every file the globs match; a file whose name
// ends in .gz is gunzipped.
//
// It returns PCollection<schemas.Record>, one per line (archive envelopes
// restored to the message they hold, bare events as they are), each with
// its source_uri "<file>#L<line>"; PCollection<schemas.DeadLetter> for
// lines and files that cannot be read; and PCollection<string>, the URIs
// of the files read, each once per glob that matches it. It panics if cfg
// is invalid (see ReadConfig.Validate).
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
//
// # Large plain files
//
// A plain file larger than cfg.BlockBytes (64 MiB by default) is read in
// blocks of that many bytes, spread over workers, so one large backfill
// file is not read by one worker from start to end; a .gz file is read
// whole, as a gzip stream cannot be split. Line numbers stay exact: a
// first pass counts each block's newlines, a second reads each block
// knowing how many newlines come before it. A block emits the lines that
// start in it, reading past its end to finish its last one, so each line
// is emitted once, by the block it starts in (a line longer than a dead
// letter's payload is one too_large dead letter however many blocks it
// spans). The blocks are planned on one version of the file: a Cloud
// Storage object's generation, a local file's size and modification time.
// A file rewritten or deleted before all its blocks are read fails the
// bundle with an error naming it (a retry fails the same way): run again
// to read it as it is.
//
// Cloud Storage checks a whole object's CRC32C as it is read; it cannot
// check a range of one, so the blocks of a large plain file are read
// without that end-to-end check (TLS still protects them on the way).
// Files read whole, every .gz file among them, keep it.
func Read(s beam.Scope, cfg ReadConfig) (records, deadLetters, files beam.PCollection) {
	s = s.Scope("lake.Read")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	opt := fileio.MatchEmptyDisallow()
	if cfg.AllowEmpty {
		opt = fileio.MatchEmptyAllow()
	}
	matches := fileio.MatchAll(s, beam.CreateList(s, cfg.Globs), opt)
	matches = beam.Reshuffle(s, matches) // spread files over workers
	whole, blocks := beam.ParDo2(s.Scope("PlanBlocks"), &planBlocksFn{BlockBytes: cfg.BlockBytes}, matches)
	// Uncompressed: readLinesFn gunzips .gz files itself, to tell a broken
	// file from a failed read.
	readable := fileio.ReadMatches(s, whole, fileio.ReadUncompressed(), fileio.ReadDirectorySkip())

	// Large plain files: count each block's newlines, give each block the
	// count before it.
	bs := s.Scope("Blocks")
	blocks = beam.Reshuffle(bs, blocks)
	counted := beam.ParDo(bs.Scope("CountNewlines"), &countNewlinesFn{}, blocks)
	numbered := beam.ParDo(bs.Scope("NumberBlocks"), &numberBlocksFn{}, beam.GroupByKey(bs, counted))
	numbered = beam.Reshuffle(bs, numbered)

	// One step reads whole files and blocks alike, so the records flow on
	// in the same stage (Prism, for one, runs the consumers of a Flatten of
	// records as a stage of their own, holding every record between).
	tasks := beam.Flatten(s, beam.ParDo(s, wholeFileTask, readable), beam.ParDo(bs, blockTask, numbered))
	return beam.ParDo3(s, &readTaskFn{}, tasks)
}

// readTask is one read of Read: a whole file, or one block of a large
// plain file.
type readTask struct {
	File  fileio.ReadableFile
	Block fileBlock
	// InBlock says the task is Block; otherwise it is File.
	InBlock bool
}

func wholeFileTask(f fileio.ReadableFile) readTask { return readTask{File: f} }

func blockTask(b fileBlock) readTask { return readTask{Block: b, InBlock: true} }

// readTaskFn reads a whole file as readLinesFn does, or a block as
// readBlockFn does.
type readTaskFn struct {
	whole  readLinesFn
	blocks readBlockFn
	read   beam.Counter
}

func (fn *readTaskFn) Setup() {
	fn.whole.Setup()
	fn.blocks.Setup()
	fn.read = beam.NewCounter(metricnames.Namespace, metricnames.LakeBlocksRead)
}

func (fn *readTaskFn) Teardown() error { return fn.blocks.Teardown() }

func (fn *readTaskFn) ProcessElement(ctx context.Context, t readTask, emit func(schemas.Record), emitDead func(schemas.DeadLetter), emitFile func(string)) error {
	if !t.InBlock {
		return fn.whole.ProcessElement(ctx, t.File, emit, emitDead, emitFile)
	}
	if err := fn.blocks.ProcessElement(ctx, t.Block, emit, emitDead, emitFile); err != nil {
		return err
	}
	fn.read.Inc(ctx, 1)
	return nil
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

	// Lines are cut and parsed off this goroutine, in batches, so a file
	// keeps more than one core busy even where the runner gives the whole
	// stage one bundle (Prism does); records are emitted here, in file
	// order.
	lines := startParsing(in, uri, fileTime, 1, -1)
	defer lines.stop()
	for b := range lines.batches {
		fn.lines.Inc(ctx, int64(b.emit(emit, emitDead)))
		if b.err == nil || errors.Is(b.err, io.EOF) {
			continue
		}
		// A failed read, not broken content: the runner retries the
		// bundle.
		if raw.err != nil {
			return fmt.Errorf("lake: read %s: %w", uri, raw.err)
		}
		if !gzipped {
			return fmt.Errorf("lake: read %s: %w", uri, b.err)
		}
		// What was read stands; the rest of the file is one dead letter.
		return broken(b.next, schemas.ReasonCorruptGzip, fmt.Errorf("gzip stream broken: %w", b.err))
	}
	return nil
}

// Batches of lines: at most batchLines lines, and no more than batchBytes
// once a line ends past it. A batch's lines share one buffer, which the
// records parsed from them may point into.
const (
	batchLines = 2048
	batchBytes = 512 << 10
)

// parsing cuts one file's lines into batches on one goroutine and parses
// the batches on others; batches come out in file order.
type parsing struct {
	// batches yields every batch in file order; the last one has a
	// non-nil err (io.EOF at the end of the file). Wait for a batch's
	// done before reading its out.
	batches chan *lineBatch

	uri      string
	fileTime int64
	work     chan *lineBatch
	stopped  chan struct{}
	running  sync.WaitGroup
}

// lineBatch is a run of consecutive lines of a file.
type lineBatch struct {
	first int      // the line number of the first line
	buf   []byte   // the lines' bytes, each cut to schemas.MaxDeadLetterPayload
	ends  []int    // where each line ends in buf
	sizes []int    // each line's full length
	err   error    // why cutting stopped after this batch, if it did
	next  int      // the line number err falls in
	out   []parsed // one per line, once done is closed
	done  chan struct{}
}

// emit waits until b is parsed, emits what its lines became, and returns
// how many lines it held.
func (b *lineBatch) emit(emit func(schemas.Record), emitDead func(schemas.DeadLetter)) int {
	<-b.done
	for i := range b.out {
		if d := b.out[i].dead; d != nil {
			emitDead(*d)
		} else {
			emit(b.out[i].rec)
		}
	}
	return len(b.out)
}

// parsed is what one line became: a record, or a dead letter.
type parsed struct {
	rec  schemas.Record
	dead *schemas.DeadLetter
}

// startParsing starts cutting in into lines and parsing them, with as many
// parsers as Go has processors. The first line is line first of uri; with
// a limit of 0 or more, the lines are those that start in in's first
// limit bytes (the last one read to its end past them). Call stop when
// done with batches.
func startParsing(in io.Reader, uri string, fileTime int64, first int, limit int64) *parsing {
	parsers := runtime.GOMAXPROCS(0)
	p := &parsing{
		batches:  make(chan *lineBatch, 2*parsers),
		uri:      uri,
		fileTime: fileTime,
		work:     make(chan *lineBatch, 2*parsers),
		stopped:  make(chan struct{}),
	}
	p.running.Add(1 + parsers)
	go p.cut(in, first, limit)
	for range parsers {
		go p.parse()
	}
	return p
}

// stop ends the cutting and parsing early, if they have not ended, and
// waits for their goroutines.
func (p *parsing) stop() {
	close(p.stopped)
	p.running.Wait()
}

// cut reads lines into batches, from line number n on, until the end of
// the input, an error, or a line that starts at limit or after (limit <
// 0: no limit).
func (p *parsing) cut(in io.Reader, n int, limit int64) {
	defer p.running.Done()
	defer close(p.work)
	defer close(p.batches)
	r := bufio.NewReaderSize(in, 256<<10)
	var at int64 // where the next line starts in the input
	for {
		b := &lineBatch{first: n, done: make(chan struct{})}
		for len(b.ends) < batchLines && len(b.buf) < batchBytes {
			if limit >= 0 && at >= limit {
				b.err = io.EOF // the next line is not ours
				break
			}
			start := len(b.buf)
			var size int
			var err error
			b.buf, size, err = appendLine(r, b.buf, schemas.MaxDeadLetterPayload)
			if (err != nil && !errors.Is(err, io.EOF)) || (size == 0 && errors.Is(err, io.EOF)) {
				// A failed read, or the end of the input after a newline:
				// no line.
				b.buf, b.err = b.buf[:start], err
				break
			}
			b.ends, b.sizes = append(b.ends, len(b.buf)), append(b.sizes, size)
			n++
			at += int64(size) + 1 // and its newline, if any
			if err != nil {
				b.err = err // io.EOF after a last line without a newline
				break
			}
		}
		b.next = n
		select {
		case p.batches <- b:
		case <-p.stopped:
			return
		}
		select {
		case p.work <- b:
		case <-p.stopped:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// parse parses batches until there are no more.
func (p *parsing) parse() {
	defer p.running.Done()
	for b := range p.work {
		b.out = make([]parsed, len(b.ends))
		start := 0
		for i, end := range b.ends {
			line := b.buf[start:end:end]
			start = end
			src := SourceURI(p.uri, b.first+i)
			if b.sizes[i] > len(line) {
				// Longer than a dead letter can keep: too large to be an
				// event.
				rec := schemas.Record{Data: line, SourceURI: src, IngestTime: p.fileTime}
				d := schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead,
					&schemas.ContractError{Reason: schemas.ReasonTooLarge, Msg: fmt.Sprintf("record is %d bytes, the limit is %d (payload cut to its first %d bytes)", b.sizes[i], schemas.MaxRecordBytes, len(line))}, now())
				b.out[i].dead = &d
			} else if rec, err := schemas.ParseLakeLine(line, src, p.fileTime); err != nil {
				d := schemas.NewDeadLetter(rec, schemas.LayerBatch, schemas.StageRead, err, now())
				b.out[i].dead = &d
			} else {
				b.out[i].rec = rec
			}
		}
		close(b.done)
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

// appendLine reads one line and appends it to dst without its "\n",
// keeping at most limit bytes of it; size is the line's full length. At
// the end of the input it appends what is left and returns io.EOF.
func appendLine(r *bufio.Reader, dst []byte, limit int) (_ []byte, size int, err error) {
	start := len(dst)
	for {
		chunk, err := r.ReadSlice('\n')
		size += len(chunk)
		if keep := limit - (len(dst) - start); keep > 0 {
			dst = append(dst, chunk[:min(keep, len(chunk))]...)
		}
		switch {
		case err == nil:
			size-- // the newline
			if len(dst)-start > size {
				dst = dst[:start+size]
			}
			return dst, size, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return dst, size, err
		}
	}
}

func now() int64 { return time.Now().UnixMicro() }

func init() {
	register.DoFn5x1[context.Context, readTask, func(schemas.Record), func(schemas.DeadLetter), func(string), error](&readTaskFn{})
	register.Function1x1(wholeFileTask)
	register.Function1x1(blockTask)
	register.Emitter1[schemas.Record]()
	register.Emitter1[schemas.DeadLetter]()
	register.Emitter1[string]()
}
