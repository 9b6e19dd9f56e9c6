package lake

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// Large plain files are read in blocks (see Read): planned, their
// newlines counted, numbered per file, then read, each step spread over
// workers.

// fileBlock is a byte range [Start, End) of one version of a plain file.
type fileBlock struct {
	// File is the file's URI, as matched.
	File string
	// Version is what the file was when its blocks were planned: the
	// object's generation on gs://, the modification time (Unix ns) of a
	// local file.
	Version int64
	// Size is the file's size when its blocks were planned.
	Size int64
	// FileTime is the file's last-modified time as matched (Unix µs): the
	// ingest time of its bare lines, as for a file read whole.
	FileTime int64
	// Start and End are the block's first byte and the byte after its
	// last.
	Start, End int64
	// Newlines is the number of newlines in [Start, End), once counted.
	Newlines int64
	// Before is the number of newlines in [0, Start), once numbered.
	Before int64
}

func (b fileBlock) String() string {
	return fmt.Sprintf("%s bytes [%d, %d)", b.File, b.Start, b.End)
}

// groupKey groups the blocks of one plan of a file.
func (b fileBlock) groupKey() string { return fmt.Sprintf("%s\x00%d\x00%d", b.File, b.Version, b.Size) }

// splittable reports whether a file can be read in byte ranges: plain (a
// gzip stream cannot be split) and on a file system Read reads ranges of
// (Cloud Storage, local disk).
func splittable(uri string) bool {
	return path.Ext(uri) != ".gz" && (strings.HasPrefix(uri, "gs://") || !strings.Contains(uri, "://"))
}

// planBlocksFn sends a file to be read whole, or, if it is plain and
// larger than BlockBytes, cuts it into blocks of BlockBytes (the last one
// shorter) of the version it has now.
type planBlocksFn struct {
	BlockBytes int64

	src rangeSource
}

func (fn *planBlocksFn) Teardown() error { return fn.src.close() }

func (fn *planBlocksFn) ProcessElement(ctx context.Context, m fileio.FileMetadata, emitWhole func(fileio.FileMetadata), emitBlock func(fileBlock)) error {
	if m.Size <= fn.BlockBytes || !splittable(m.Path) {
		emitWhole(m)
		return nil
	}
	version, size, err := fn.src.version(ctx, m.Path)
	if err != nil {
		return fmt.Errorf("lake: plan the blocks of %s: %w", m.Path, err)
	}
	if size <= fn.BlockBytes { // shrunk since it was matched
		emitWhole(m)
		return nil
	}
	for start := int64(0); start < size; start += fn.BlockBytes {
		emitBlock(fileBlock{
			File: m.Path, Version: version, Size: size, FileTime: m.LastModified.UnixMicro(),
			Start: start, End: min(start+fn.BlockBytes, size),
		})
	}
	return nil
}

// countNewlinesFn counts the newlines of a block and keys it by its
// file's plan.
type countNewlinesFn struct {
	src rangeSource
}

func (fn *countNewlinesFn) Teardown() error { return fn.src.close() }

func (fn *countNewlinesFn) ProcessElement(ctx context.Context, b fileBlock, emit func(string, fileBlock)) error {
	rc, err := fn.src.open(ctx, b, b.Start, b.End)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, 256<<10)
	in := io.LimitReader(rc, b.End-b.Start)
	b.Newlines = 0
	for {
		n, err := in.Read(buf)
		b.Newlines += int64(bytes.Count(buf[:n], newline))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("lake: read %s: %w", b, err)
		}
	}
	emit(b.groupKey(), b)
	return nil
}

var newline = []byte{'\n'}

// numberBlocksFn gives each block of a file the number of newlines before
// it. A file matched by more than one glob is planned once per match, and
// read once per match, as a file read whole is.
type numberBlocksFn struct{}

func (fn *numberBlocksFn) ProcessElement(key string, iter func(*fileBlock) bool, emit func(fileBlock)) error {
	var blocks []fileBlock
	var b fileBlock
	for iter(&b) {
		blocks = append(blocks, b)
	}
	slices.SortFunc(blocks, func(x, y fileBlock) int { return cmp.Compare(x.Start, y.Start) })
	// Every block once per plan: copies of the first one, then of each
	// next one, each starting where the one before ends, to the file's end.
	copies := 0
	for copies < len(blocks) && blocks[copies].Start == 0 {
		copies++
	}
	if len(blocks)%max(copies, 1) != 0 {
		return fmt.Errorf("lake: the blocks of %s do not cover it: %d blocks in %d plans", blocks[0].File, len(blocks), copies)
	}
	var before int64
	for i := 0; i < len(blocks); i += copies {
		first := blocks[i]
		want := int64(0)
		if i > 0 {
			want = blocks[i-1].End
		}
		if first.Start != want || (i+copies == len(blocks) && first.End != first.Size) {
			return fmt.Errorf("lake: the blocks of %s do not cover it: %v after byte %d", first.File, first, want)
		}
		for j := i; j < i+copies; j++ {
			if blocks[j] != first {
				return fmt.Errorf("lake: the blocks of %s do not cover it: %v and %v", first.File, first, blocks[j])
			}
			blocks[j].Before = before
			emit(blocks[j])
		}
		before += first.Newlines
	}
	return nil
}

// readBlockFn emits the lines that start in a block, with their line
// numbers, reading past its end to finish its last one.
type readBlockFn struct {
	src          rangeSource
	files, lines beam.Counter
}

func (fn *readBlockFn) Setup() {
	fn.files = beam.NewCounter(metricnames.Namespace, metricnames.LakeFilesRead)
	fn.lines = beam.NewCounter(metricnames.Namespace, metricnames.LakeLinesRead)
}

func (fn *readBlockFn) Teardown() error { return fn.src.close() }

func (fn *readBlockFn) ProcessElement(ctx context.Context, b fileBlock, emit func(schemas.Record), emitDead func(schemas.DeadLetter), emitFile func(string)) error {
	if b.Start == 0 {
		fn.files.Inc(ctx, 1)
		emitFile(b.File)
	}
	// A line's number is 1 + the newlines before it. Read from the byte
	// before the block: a newline there means a line starts at Start.
	from := max(b.Start-1, 0)
	rc, err := fn.src.open(ctx, b, from, b.End)
	if err != nil {
		return err
	}
	defer rc.Close()
	head := bufio.NewReaderSize(io.LimitReader(rc, b.End-from), 64<<10)
	at, n := b.Start, b.Before+1
	if b.Start > 0 {
		c, err := head.ReadByte()
		if err != nil {
			return fmt.Errorf("lake: read %s: %w", b, noEOF(err))
		}
		if c != '\n' {
			// Start is inside a line an earlier block emits: the block's
			// first line is the one after it, if that starts before End.
			found, skipped, err := skipLine(head)
			if err != nil {
				return fmt.Errorf("lake: read %s: %w", b, err)
			}
			if !found {
				return nil
			}
			at, n = at+skipped, n+1
		}
	}
	if at >= b.End {
		return nil
	}
	// The lines starting in [at, End): the rest of the head, then on
	// past End for the last one.
	lines := startParsing(io.MultiReader(head, rc), b.File, b.FileTime, int(n), b.End-at)
	defer lines.stop()
	for batch := range lines.batches {
		fn.lines.Inc(ctx, int64(batch.emit(emit, emitDead)))
		if batch.err != nil && !errors.Is(batch.err, io.EOF) {
			return fmt.Errorf("lake: read %s: %w", b, batch.err)
		}
	}
	return nil
}

// skipLine reads through the next newline: found is false if the input
// ends first; skipped is how many bytes it read.
func skipLine(r *bufio.Reader) (found bool, skipped int64, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		skipped += int64(len(chunk))
		switch {
		case err == nil:
			return true, skipped, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return false, skipped, nil
		default:
			return false, skipped, err
		}
	}
}

// noEOF turns an end of input where bytes were due into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// rangeSource opens byte ranges of the version of a file a block was
// planned on. Its Cloud Storage client, one per DoFn instance, is made on
// first use, so that reading local files needs no credentials; close it
// in Teardown.
type rangeSource struct {
	client *storage.Client
}

func (s *rangeSource) close() error {
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

func (s *rangeSource) gcs(ctx context.Context) (*storage.Client, error) {
	if s.client == nil {
		// Honours STORAGE_EMULATOR_HOST.
		c, err := storage.NewClient(ctx)
		if err != nil {
			return nil, fmt.Errorf("lake: Cloud Storage client: %w", err)
		}
		s.client = c
	}
	return s.client, nil
}

// object returns the handle of a gs:// URI.
func (s *rangeSource) object(ctx context.Context, uri string) (*storage.ObjectHandle, error) {
	bucket, name, ok := strings.Cut(strings.TrimPrefix(uri, "gs://"), "/")
	if !ok || bucket == "" || name == "" {
		return nil, fmt.Errorf("lake: %q is not gs://BUCKET/OBJECT", uri)
	}
	c, err := s.gcs(ctx)
	if err != nil {
		return nil, err
	}
	return c.Bucket(bucket).Object(name), nil
}

// version returns the current version of a file (see fileBlock.Version)
// and its size.
func (s *rangeSource) version(ctx context.Context, uri string) (version, size int64, err error) {
	if !strings.HasPrefix(uri, "gs://") {
		info, err := os.Stat(uri)
		if err != nil {
			return 0, 0, err
		}
		return info.ModTime().UnixNano(), info.Size(), nil
	}
	obj, err := s.object(ctx, uri)
	if err != nil {
		return 0, 0, err
	}
	attrs, err := obj.Attrs(ctx)
	if err != nil {
		return 0, 0, err
	}
	return attrs.Generation, attrs.Size, nil
}

// open returns the bytes of b's file from byte from to its end, of the
// version b was planned on, or an error naming the file if that version
// is gone. On Cloud Storage it reads [from, firstEnd) in one request and
// what follows, when read, in requests of growing size. The reader fails
// with io.ErrUnexpectedEOF if the file ends before its planned size.
func (s *rangeSource) open(ctx context.Context, b fileBlock, from, firstEnd int64) (io.ReadCloser, error) {
	var r io.ReadCloser
	if strings.HasPrefix(b.File, "gs://") {
		obj, err := s.object(ctx, b.File)
		if err != nil {
			return nil, err
		}
		r = &objectRanges{ctx: ctx, block: b, obj: obj.Generation(b.Version), off: from, firstEnd: firstEnd}
	} else {
		f, err := os.Open(b.File)
		if err != nil {
			return nil, fmt.Errorf("lake: read %s: %w", b, err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lake: read %s: %w", b, err)
		}
		if info.Size() != b.Size || info.ModTime().UnixNano() != b.Version {
			f.Close()
			return nil, fmt.Errorf("lake: read %s: the file changed after its blocks were planned (%d bytes modified at %d ns then, %d bytes modified at %d ns now); run again to read it as it is",
				b, b.Size, b.Version, info.Size(), info.ModTime().UnixNano())
		}
		r = struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, from, b.Size-from), f}
	}
	return &sizedReader{ReadCloser: r, left: b.Size - from}, nil
}

// sizedReader fails with io.ErrUnexpectedEOF if its input ends before
// left bytes.
type sizedReader struct {
	io.ReadCloser
	left int64
}

func (r *sizedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	if errors.Is(err, io.EOF) && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Requests after a Cloud Storage reader's first: the first of
// firstTailBytes, each next one twice as long, up to maxTailBytes.
const (
	firstTailBytes = 64 << 10
	maxTailBytes   = 16 << 20
)

// objectRanges reads one generation of an object from off to its end in
// range requests.
type objectRanges struct {
	ctx      context.Context
	block    fileBlock
	obj      *storage.ObjectHandle
	off      int64 // the next byte to read
	firstEnd int64 // where the first request ends

	r      *storage.Reader
	end    int64 // where the current request ends
	tail   int64 // the length of the last request after the first
	opened bool
}

func (o *objectRanges) Read(p []byte) (int, error) {
	for {
		if o.r == nil {
			if o.off >= o.block.Size {
				return 0, io.EOF
			}
			o.end = o.firstEnd
			if o.opened {
				o.tail = min(max(2*o.tail, firstTailBytes), maxTailBytes)
				o.end = o.off + o.tail
			}
			o.end = min(max(o.end, o.off+1), o.block.Size)
			r, err := o.obj.NewRangeReader(o.ctx, o.off, o.end-o.off)
			if errors.Is(err, storage.ErrObjectNotExist) {
				return 0, fmt.Errorf("generation %d of the object is gone: it was rewritten or deleted after its blocks were planned; run again to read it as it is: %w", o.block.Version, err)
			}
			if err != nil {
				return 0, fmt.Errorf("from byte %d: %w", o.off, err)
			}
			o.r, o.opened = r, true
		}
		n, err := o.r.Read(p)
		o.off += int64(n)
		if errors.Is(err, io.EOF) {
			o.r.Close()
			o.r = nil
			if o.off < o.end {
				return n, io.ErrUnexpectedEOF
			}
			if n == 0 {
				continue
			}
			return n, nil
		}
		return n, err
	}
}

func (o *objectRanges) Close() error {
	if o.r == nil {
		return nil
	}
	err := o.r.Close()
	o.r = nil
	return err
}

func init() {
	beam.RegisterType(reflect.TypeOf((*fileBlock)(nil)).Elem())
	register.DoFn4x1[context.Context, fileio.FileMetadata, func(fileio.FileMetadata), func(fileBlock), error](&planBlocksFn{})
	register.DoFn3x1[context.Context, fileBlock, func(string, fileBlock), error](&countNewlinesFn{})
	register.DoFn3x1[string, func(*fileBlock) bool, func(fileBlock), error](&numberBlocksFn{})
	register.Emitter1[fileio.FileMetadata]()
	register.Emitter1[fileBlock]()
	register.Emitter2[string, fileBlock]()
	register.Iter1[fileBlock]()
}
