package lake

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/runners/emulators"
	"github.com/railyard/railyard/schemas"
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
		fmt.Sprintf("%s|unreadable_input|0|read", uri("corrupt.jsonl.gz", 2)),
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
