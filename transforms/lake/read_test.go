package lake

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func TestMain(m *testing.M) { ptest.Main(m) }

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func envelopeLine(t *testing.T, data []byte, id string) string {
	t.Helper()
	b, err := schemas.MarshalEnvelope(schemas.Record{Data: data, MessageID: id, PublishTime: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro(), Attributes: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// describeRecord and describeDeadLetter flatten elements into comparable strings.
func describeRecord(r schemas.Record) string {
	return fmt.Sprintf("%s|%q|%s|%d", r.SourceURI, r.Data, r.MessageID, r.PublishTime)
}

func describeDeadLetter(d schemas.DeadLetter) string {
	return fmt.Sprintf("%s|%s|%d|%s", *d.SourceURI, d.Reason, len(d.Payload), d.Stage)
}

func init() {
	register.Function1x1(describeRecord)
	register.Function1x1(describeDeadLetter)
}

func TestReadLocalFiles(t *testing.T) {
	dir := t.TempDir()
	hour := filepath.Join(dir, "raw", "dt=2026-11-01", "hr=10")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	nonUTF8 := []byte("{\"event_id\":\"\xff\"}")
	plain := "{\"event_id\":\"a\"}\r\n\n" + strings.Repeat("x", schemas.MaxDeadLetterPayload+10) + "\nlast-no-newline"
	packed := envelopeLine(t, nonUTF8, "m1") + "\n" + `{"envelope":"railyard/raw/v9","data":""}` + "\n" + `{"envelope":"not ours","event_id":"b"}` + "\n"
	corrupt := gzipped(t, []byte("{\"event_id\":\"c\"}\n"))
	corrupt = corrupt[:len(corrupt)-6] // cut the gzip trailer
	files := map[string][]byte{
		"bare.jsonl":        []byte(plain),
		"part-0.jsonl.gz":   gzipped(t, []byte(packed)),
		"corrupt.jsonl.gz":  corrupt,
		"empty-file.jsonl":  nil,
		"../../ignored.txt": []byte("not matched"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(hour, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uri := func(name string, line int) string { return SourceURI(filepath.Join(hour, name), line) }

	p, s := beam.NewPipelineWithRoot()
	records, dead, read := Read(s, ReadConfig{Globs: []string{filepath.Join(dir, "raw", "dt=2026-11-01", "hr=*", "*")}})
	passert.Equals(s, beam.ParDo(s, describeRecord, records),
		fmt.Sprintf("%s|%q||0", uri("bare.jsonl", 1), "{\"event_id\":\"a\"}\r"),
		fmt.Sprintf("%s|%q||0", uri("bare.jsonl", 2), ""),
		fmt.Sprintf("%s|%q||0", uri("bare.jsonl", 4), "last-no-newline"),
		fmt.Sprintf("%s|%q|m1|%d", uri("part-0.jsonl.gz", 1), nonUTF8, time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro()),
		fmt.Sprintf("%s|%q||0", uri("part-0.jsonl.gz", 3), `{"envelope":"not ours","event_id":"b"}`),
		fmt.Sprintf("%s|%q||0", uri("corrupt.jsonl.gz", 1), `{"event_id":"c"}`),
	)
	passert.Equals(s, beam.ParDo(s, describeDeadLetter, dead),
		fmt.Sprintf("%s|too_large|%d|read", uri("bare.jsonl", 3), schemas.MaxDeadLetterPayload),
		fmt.Sprintf("%s|bad_envelope|%d|read", uri("part-0.jsonl.gz", 2), len(`{"envelope":"railyard/raw/v9","data":""}`)),
		fmt.Sprintf("%s|corrupt_gzip|%d|read", uri("corrupt.jsonl.gz", 2), len(corrupt)),
	)
	passert.Equals(s, read,
		filepath.Join(hour, "bare.jsonl"), filepath.Join(hour, "part-0.jsonl.gz"),
		filepath.Join(hour, "corrupt.jsonl.gz"), filepath.Join(hour, "empty-file.jsonl"))
	ptest.RunAndValidate(t, p)
}

func TestReadCloudStorage(t *testing.T) {
	gcs, err := emulators.StartStorage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	for k, v := range gcs.Env() {
		t.Setenv(k, v)
	}
	gcs.CreateBucket("lake")
	ctx := context.Background()
	client, err := gcs.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) {
		w := client.Bucket("lake").Object(name).NewWriter(ctx)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	put("raw/dt=2026-11-01/hr=10/a.jsonl.gz", gzipped(t, []byte("one\ntwo\n")))
	put("raw/dt=2026-11-01/hr=23/b.jsonl", []byte("three\n"))
	put("raw/dt=2026-11-02/hr=00/c.jsonl", []byte("other day\n"))

	p, s := beam.NewPipelineWithRoot()
	records, dead, _ := Read(s, ReadConfig{Globs: []string{"gs://lake/raw/dt=2026-11-01/**"}})
	passert.Equals(s, beam.ParDo(s, describeRecord, records),
		`gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L1|"one"||0`,
		`gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L2|"two"||0`,
		`gs://lake/raw/dt=2026-11-01/hr=23/b.jsonl#L1|"three"||0`,
	)
	passert.Empty(s, dead)
	ptest.RunAndValidate(t, p)
}

func TestReadFailsOnAGlobThatMatchesNothing(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Read(s, ReadConfig{Globs: []string{filepath.Join(t.TempDir(), "nothing-*.jsonl")}})
	err := ptest.Run(p)
	if err == nil || !strings.Contains(err.Error(), "no files matching pattern") {
		t.Fatalf("Run = %v, want an error naming the empty match", err)
	}
}

func TestFileOf(t *testing.T) {
	for uri, want := range map[string]string{
		"gs://b/raw/x.jsonl#L12":   "gs://b/raw/x.jsonl",
		"gs://b/raw/a#Lb.jsonl#L3": "gs://b/raw/a#Lb.jsonl",
		"/tmp/plain":               "/tmp/plain",
	} {
		if got := FileOf(uri); got != want {
			t.Errorf("FileOf(%q) = %q, want %q", uri, got, want)
		}
	}
}

// storageFixture is fake-gcs-server with a bucket "lake", reached by the
// pipeline through STORAGE_EMULATOR_HOST, and a client to fill it.
func storageFixture(t *testing.T) (*emulators.Storage, func(name string, data []byte)) {
	t.Helper()
	gcs, err := emulators.StartStorage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	for k, v := range gcs.Env() {
		t.Setenv(k, v)
	}
	gcs.CreateBucket("lake")
	ctx := context.Background()
	client, err := gcs.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return gcs, func(name string, data []byte) {
		t.Helper()
		w := client.Bucket("lake").Object(name).NewWriter(ctx)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// manyLines returns n JSON lines that gzip does not shrink to nothing, so
// a cut gzip stream has whole lines before its break.
func manyLines(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"event_id":"e%05d-%016x","n":%d}`+"\n", i, rng.Uint64(), rng.Uint32())
	}
	return b.Bytes()
}

// randomBytes returns n random bytes of a seed that do not start with
// gzip's magic number.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	b[0] = 'x'
	return b
}

// describeBroken flattens a dead letter with its payload's digest.
func describeBroken(d schemas.DeadLetter) string {
	sum := sha256.Sum256(d.Payload)
	return fmt.Sprintf("%s|%s|%s|%d|%x", *d.SourceURI, d.Reason, d.Stage, len(d.Payload), sum[:8])
}

func lineNumber(r schemas.Record) string { return r.SourceURI }

func init() {
	register.Function1x1(describeBroken)
	register.Function1x1(lineNumber)
}

func TestReadBrokenFilesCostOneDeadLetterEach(t *testing.T) {
	_, put := storageFixture(t)
	const day = "raw/dt=2026-11-01/hr=10/"
	good := manyLines(3)
	long := manyLines(20000)
	truncated := gzipped(t, long)
	truncated = truncated[:len(truncated)/2]
	random := randomBytes(4096, 3)
	large := randomBytes(schemas.MaxRecordBytes+100, 5)

	files := map[string][]byte{
		"good.jsonl.gz":       gzipped(t, good),
		"good-plain.jsonl":    good,
		"empty.jsonl.gz":      nil,
		"plain-text.jsonl.gz": good,
		"truncated.jsonl.gz":  truncated,
		"random.jsonl.gz":     random,
		"random-large.gz":     large,
	}
	for name, data := range files {
		put(day+name, data)
	}
	uri := func(name string, line int) string { return SourceURI("gs://lake/"+day+name, line) }

	// The lines of the truncated file that gunzip before its break.
	zr, err := gzip.NewReader(bytes.NewReader(truncated))
	if err != nil {
		t.Fatal(err)
	}
	before, err := io.ReadAll(zr)
	if err == nil {
		t.Fatal("the truncated gzip stream reads to its end")
	}
	kept := bytes.Count(before, []byte("\n"))
	if kept < 100 {
		t.Fatalf("only %d lines of the truncated file decode before its break; the test needs some", kept)
	}

	digest := func(b []byte) string { sum := sha256.Sum256(b); return fmt.Sprintf("%x", sum[:8]) }
	wantDead := []string{
		fmt.Sprintf("%s|empty_file|read|0|%s", uri("empty.jsonl.gz", 1), digest(nil)),
		fmt.Sprintf("%s|not_gzip|read|%d|%s", uri("plain-text.jsonl.gz", 1), len(good), digest(good)),
		fmt.Sprintf("%s|corrupt_gzip|read|%d|%s", uri("truncated.jsonl.gz", kept+1), len(truncated), digest(truncated)),
		fmt.Sprintf("%s|not_gzip|read|%d|%s", uri("random.jsonl.gz", 1), len(random), digest(random)),
		fmt.Sprintf("%s|not_gzip|read|%d|%s", uri("random-large.gz", 1), schemas.MaxRecordBytes, digest(large[:schemas.MaxRecordBytes])),
	}
	var wantLines []string
	for i := range 3 {
		wantLines = append(wantLines, uri("good.jsonl.gz", i+1), uri("good-plain.jsonl", i+1))
	}
	for i := range kept {
		wantLines = append(wantLines, uri("truncated.jsonl.gz", i+1))
	}
	var wantFiles []string
	for name := range files {
		wantFiles = append(wantFiles, "gs://lake/"+day+name)
	}

	p, s := beam.NewPipelineWithRoot()
	records, dead, read := Read(s, ReadConfig{Globs: []string{"gs://lake/raw/dt=2026-11-01/**"}})
	passert.Equals(s, beam.ParDo(s, lineNumber, records), beam.CreateList(s, wantLines))
	passert.Equals(s, beam.ParDo(s, describeBroken, dead), beam.CreateList(s, wantDead))
	passert.Equals(s, read, beam.CreateList(s, wantFiles))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("Run = %v, want the broken files as dead letters and no error", err)
	}
	counters := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		counters[c.Name()] += c.Result()
	}
	if got, want := counters[metricnames.LakeLinesRead], int64(len(wantLines)+len(wantDead)); got != want {
		t.Errorf("%s = %d, want %d: each line read, and each broken rest of a file as one", metricnames.LakeLinesRead, got, want)
	}
}

func TestReadDeadLetterSaysWhereAndHowMuch(t *testing.T) {
	_, put := storageFixture(t)
	large := randomBytes(schemas.MaxRecordBytes+100, 5)
	truncated := gzipped(t, []byte("{\"event_id\":\"a\"}\n{\"event_id\":\"b\"}\n"))
	truncated = truncated[:len(truncated)-4]
	put("raw/x/large.gz", large)
	put("raw/x/truncated.gz", truncated)

	p, s := beam.NewPipelineWithRoot()
	_, dead, _ := Read(s, ReadConfig{Globs: []string{"gs://lake/raw/x/*"}})
	passert.Equals(s, beam.ParDo(s, deadLetterError, dead),
		fmt.Sprintf("not_gzip: file unreadable from line 1 on (0 lines read before): not a gzip file: gzip: invalid header; payload: the file as stored, its first %d of %d bytes", schemas.MaxRecordBytes, len(large)),
		fmt.Sprintf("corrupt_gzip: file unreadable from line 3 on (2 lines read before): gzip stream broken: unexpected EOF; payload: the file as stored, all %d bytes", len(truncated)),
	)
	ptest.RunAndValidate(t, p)
}

func deadLetterError(d schemas.DeadLetter) string { return d.Error }

func init() { register.Function1x1(deadLetterError) }

// flipByte sits in front of fake-gcs-server and damages one byte of every
// download of an object whose name holds "damaged", as a faulty network
// path would; everything else passes through.
type flipByte struct {
	proxy *httputil.ReverseProxy
}

func newFlipByte(target string) *flipByte {
	u := &url.URL{Scheme: "http", Host: target}
	h := &flipByte{proxy: httputil.NewSingleHostReverseProxy(u)}
	direct := h.proxy.Director
	h.proxy.Director = func(r *http.Request) {
		direct(r)
		r.Host = target // fake-gcs-server serves downloads for its own host only
	}
	h.proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.Method != http.MethodGet || !strings.Contains(res.Request.URL.Path, "damaged") || res.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		if len(body) > 0 && !strings.Contains(res.Header.Get("Content-Type"), "json") {
			body[len(body)/2] ^= 0xff
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	return h
}

func (h *flipByte) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.proxy.ServeHTTP(w, r) }

func TestReadFailsTheBundleOnBytesDamagedInTransit(t *testing.T) {
	gcs, put := storageFixture(t)
	put("raw/dt=2026-11-01/hr=10/damaged.jsonl.gz", gzipped(t, manyLines(2000)))
	srv := httptest.NewServer(newFlipByte(gcs.Host))
	t.Cleanup(srv.Close)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))

	p, s := beam.NewPipelineWithRoot()
	_, dead, _ := Read(s, ReadConfig{Globs: []string{"gs://lake/raw/**"}})
	passert.Empty(s, dead)
	err := ptest.Run(p)
	if err == nil || !strings.Contains(err.Error(), "lake: read gs://lake/raw/dt=2026-11-01/hr=10/damaged.jsonl.gz: storage: bad CRC on read") {
		t.Fatalf("Run = %v, want the bundle to fail on the damaged read, naming the file, for the runner to retry", err)
	}
}

// failAfter reads r, then fails with err.
type failAfter struct {
	r   io.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestParsingGivesEveryLineInFileOrder(t *testing.T) {
	// Lines of every length up to past a batch's bytes, so batches end by
	// count and by size, and a line too long for a dead letter.
	var lines [][]byte
	for i := range 3*batchLines + 7 {
		line := fmt.Appendf(nil, `{"event_id":"e%d","pad":"%s"}`, i, strings.Repeat("p", (i*7919)%700))
		if i == batchLines+3 {
			line = bytes.Repeat([]byte("x"), batchBytes+schemas.MaxDeadLetterPayload)
		}
		lines = append(lines, line)
	}
	file := bytes.Join(lines, []byte("\n")) // the last line without a newline

	for _, tc := range []struct {
		name     string
		in       io.Reader
		wantErr  error
		wantRead int
	}{
		{"a whole file gives every line and io.EOF", bytes.NewReader(file), io.EOF, len(lines)},
		{"a read that fails gives the lines before the one it falls in", &failAfter{bytes.NewReader(file[:len(file)-len(lines[len(lines)-1])-10]), io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF, len(lines) - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startParsing(tc.in, "f", 1, 1, -1)
			defer p.stop()
			n, batches := 0, 0
			var last *lineBatch
			for b := range p.batches {
				<-b.done
				batches++
				if b.first != n+1 {
					t.Fatalf("batch %d starts at line %d, want %d", batches, b.first, n+1)
				}
				for i, out := range b.out {
					n++
					want := SourceURI("f", n)
					switch {
					case out.dead != nil && n-1 == batchLines+3:
						if out.dead.Reason != schemas.ReasonTooLarge || *out.dead.SourceURI != want {
							t.Errorf("line %d: dead letter %s at %s, want too_large at %s", n, out.dead.Reason, *out.dead.SourceURI, want)
						}
					case out.dead != nil:
						t.Errorf("line %d: dead letter %s: %s", n, out.dead.Reason, out.dead.Error)
					case out.rec.SourceURI != want || !bytes.Equal(out.rec.Data, lines[n-1]):
						t.Errorf("batch %d line %d: %s %.40q, want %s %.40q", batches, i, out.rec.SourceURI, out.rec.Data, want, lines[n-1])
					}
				}
				last = b
			}
			if n != tc.wantRead {
				t.Errorf("read %d lines, want %d", n, tc.wantRead)
			}
			if batches < 4 {
				t.Errorf("%d batches; the test wants lines over several", batches)
			}
			if last == nil || !errors.Is(last.err, tc.wantErr) || last.next != tc.wantRead+1 {
				t.Errorf("last batch ends with %v at line %d, want %v at line %d", last.err, last.next, tc.wantErr, tc.wantRead+1)
			}
		})
	}
}

func TestParsingStopsEarly(t *testing.T) {
	p := startParsing(bytes.NewReader(manyLines(20*batchLines)), "f", 1, 1, -1)
	b := <-p.batches
	<-b.done
	p.stop() // must not hang with batches left unread
}
