package lake

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/filter"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func TestArchiveConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  ArchiveConfig
		want []string // substrings of the error; none for a valid config
	}{
		{"accepts a bucket", ArchiveConfig{Lake: "gs://railyard-lake"}, nil},
		{"accepts a bucket with a prefix and every field set", ArchiveConfig{Lake: "gs://railyard-lake/prod/v1/", Shards: 999, Window: time.Hour}, nil},
		{"accepts a bucket name with dots", ArchiveConfig{Lake: "gs://lake.example.com", Window: time.Second}, nil},
		{"requires a lake", ArchiveConfig{}, []string{"Lake is required: gs://BUCKET[/prefix]"}},
		{"rejects a local folder", ArchiveConfig{Lake: "/tmp/lake"}, []string{`Lake "/tmp/lake" is not a Cloud Storage location`}},
		{"rejects another scheme", ArchiveConfig{Lake: "s3://lake"}, []string{"is not a Cloud Storage location"}},
		{"rejects an upper-case bucket", ArchiveConfig{Lake: "gs://Lake"}, []string{`"Lake" is not a Cloud Storage bucket name`}},
		{"rejects an empty bucket", ArchiveConfig{Lake: "gs:///raw"}, []string{`"" is not a Cloud Storage bucket name`}},
		{"rejects a glob in the prefix", ArchiveConfig{Lake: "gs://lake/x*"}, []string{"glob character"}},
		{"rejects an empty folder in the prefix", ArchiveConfig{Lake: "gs://lake/a//b"}, []string{"empty, . or .. folder"}},
		{"rejects a .. folder in the prefix", ArchiveConfig{Lake: "gs://lake/a/../b"}, []string{"empty, . or .. folder"}},
		{"rejects a control character in the prefix", ArchiveConfig{Lake: "gs://lake/a\nb"}, []string{"control character"}},
		{"rejects a prefix too long for object names", ArchiveConfig{Lake: "gs://lake/" + strings.Repeat("a", 901)}, []string{"the prefix is 901 bytes"}},
		{"rejects negative shards", ArchiveConfig{Lake: "gs://lake", Shards: -1}, []string{"Shards is -1; want 1 to 999"}},
		{"rejects shards that need four digits", ArchiveConfig{Lake: "gs://lake", Shards: 1000}, []string{"Shards is 1000"}},
		{"rejects a window under a second", ArchiveConfig{Lake: "gs://lake", Window: time.Millisecond}, []string{"Window is 1ms; want 1s to 1h0m0s"}},
		{"rejects a window over an hour", ArchiveConfig{Lake: "gs://lake", Window: 2 * time.Hour}, []string{"Window is 2h0m0s"}},
		{"rejects a window of part seconds", ArchiveConfig{Lake: "gs://lake", Window: 1500 * time.Millisecond}, []string{"want whole seconds"}},
		{"reports every problem at once", ArchiveConfig{Shards: -1, Window: -1}, []string{"Lake is required", "Shards is -1", "Window is -1ns"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "lake: ") {
				t.Errorf("Validate() = %q, want the lake: prefix", err)
			}
		})
	}
}

func TestArchivePanicsWhileBuildingOnABadConfig(t *testing.T) {
	defer func() {
		if err, ok := recover().(error); !ok || !strings.Contains(err.Error(), "Lake is required") {
			t.Fatalf("recovered %v, want the validation error", err)
		}
	}()
	_, s := beam.NewPipelineWithRoot()
	Archive(s, ArchiveConfig{}, beam.Create(s, schemas.Record{}))
}

func TestShardOfIsStable(t *testing.T) {
	// FNV-1a: the same in every process and every release, so a retried
	// bundle on another worker names the same file.
	for id, want := range map[string]int{"": 1, "m01": 3, "17542305391234567": 0, "m02": 2} {
		if got := shardOf(id, 4); got != want {
			t.Errorf("shardOf(%q, 4) = %d, want %d", id, got, want)
		}
	}
}

func TestFileName(t *testing.T) {
	start := time.Date(2026, 11, 1, 10, 5, 0, 0, time.FixedZone("CET", 3600))
	digest := "0123456789abcdef" + strings.Repeat("f", 48)
	if got, want := fileName(start, 7, 12, 2, digest), "stream-20261101T090500Z-007-of-012-p2-0123456789abcdef.jsonl.gz"; got != want {
		t.Errorf("fileName = %q, want %q", got, want)
	}
}

// archiveName matches an archive file's name; its groups are the window
// start, shard, shards, pane and digest.
var archiveName = regexp.MustCompile(`^stream-(\d{8}T\d{6}Z)-(\d{3})-of-(\d{3})-p(\d+)-([0-9a-f]{16})\.jsonl\.gz$`)

// Describe the fields a lake round trip must keep: message id, data
// (byte for byte), attributes and publish time; and where the record was.
func describeArchived(a Archived) string { return a.MessageID + "|" + a.AckID }

func describeRoundTrip(r schemas.Record) string {
	attrs := slices.Sorted(maps.Keys(r.Attributes))
	for i, k := range attrs {
		attrs[i] = fmt.Sprintf("%q=%q", k, r.Attributes[k])
	}
	return fmt.Sprintf("%s|%q|%s|%d", r.MessageID, r.Data, strings.Join(attrs, ","), r.PublishTime)
}

func describeFolder(r schemas.Record) string {
	file := FileOf(r.SourceURI)
	return r.MessageID + "|" + file[:strings.LastIndex(file, "/")+1]
}

func init() {
	register.Function1x1(describeArchived)
	register.Function1x1(describeRoundTrip)
	register.Function1x1(describeFolder)
}

func at(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

// archiveRecords covers what the lake must keep: bytes that are not
// UTF-8, attributes or none, event times that are readable (in another
// hour, on another day than the publish time) or not.
func archiveRecords() []schemas.Record {
	recs := []schemas.Record{
		{MessageID: "m01", Data: []byte(`{"event_id":"a","event_type":"click","event_time":"2026-11-01T10:15:00Z","source":"web"}`),
			PublishTime: at("2026-11-01T12:00:00.000001Z"), Attributes: map[string]string{"source": "web", "ünï": "cödé", "empty": ""}},
		{MessageID: "m02", Data: []byte(`{"event_id":"b","event_time":"2026-10-31T23:59:59.5Z"}`),
			PublishTime: at("2026-11-01T00:00:05Z")},
		{MessageID: "m03", Data: []byte("\xff\xfe\x00{not json\n\"}"), PublishTime: at("2026-11-01T12:30:00.123456Z"),
			Attributes: map[string]string{"content-type": "application/octet-stream"}},
		{MessageID: "m04", Data: []byte(`{"event_id":"c"}`), PublishTime: at("2026-11-01T12:59:59.999999Z")},
		{MessageID: "m05", Data: []byte(`{"event_id":"d","event_time":"yesterday"}`), PublishTime: at("2026-11-01T13:00:00Z")},
		{MessageID: "m06", Data: []byte{}, PublishTime: at("2026-11-01T13:00:00Z"), Attributes: map[string]string{"only": "attributes"}},
	}
	for i := range 20 { // enough for several lines per file
		recs = append(recs, schemas.Record{
			MessageID:   fmt.Sprintf("m1%02d", i),
			Data:        []byte(fmt.Sprintf(`{"event_id":"e%d","event_time":%d}`, i, time.UnixMicro(at("2026-11-01T10:00:00Z")).Add(time.Duration(i)*time.Minute).UnixMilli())),
			PublishTime: at("2026-11-01T10:30:00Z") + int64(i),
		})
	}
	for i := range recs {
		recs[i].IngestTime = recs[i].PublishTime
		recs[i].AckID = recs[i].MessageID + ":1"
	}
	return recs
}

// lakeFixture is fake-gcs-server with a bucket "lake", reached through
// STORAGE_EMULATOR_HOST by the pipeline's workers (Prism runs them in this
// process) and by client.
type lakeFixture struct {
	gcs    *emulators.Storage
	client *storage.Client
}

func newLakeFixture(t *testing.T) *lakeFixture {
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
	client, err := gcs.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &lakeFixture{gcs: gcs, client: client}
}

// objects returns the bucket's objects under prefix, by name.
func (f *lakeFixture) objects(t *testing.T, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	it := f.client.Bucket("lake").Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.client.Bucket("lake").Object(attrs.Name).NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[attrs.Name] = b
	}
}

// generations returns the generation of each object under prefix.
func (f *lakeFixture) generations(t *testing.T, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	it := f.client.Bucket("lake").Objects(context.Background(), &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[attrs.Name] = attrs.Generation
	}
}

// put writes an object as another writer than the archive would.
func (f *lakeFixture) put(t *testing.T, name string, data []byte) {
	t.Helper()
	w := f.client.Bucket("lake").Object(name).NewWriter(context.Background())
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// messageIDs returns how many lines of each message id the objects hold.
func messageIDs(t *testing.T, objects map[string][]byte) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for name, data := range objects {
		for _, line := range strings.Split(strings.TrimSuffix(string(gunzip(t, data)), "\n"), "\n") {
			rec, err := schemas.ParseLakeLine([]byte(line), name, 0)
			if err != nil || rec.MessageID == "" {
				t.Fatalf("%s: line %q is not an envelope: %v", name, line, err)
			}
			ids[rec.MessageID]++
		}
	}
	return ids
}

// fixClock stops the archive's clock at at for the test.
func fixClock(t *testing.T, at time.Time) {
	t.Helper()
	wallClock = func() time.Time { return at }
	t.Cleanup(func() { wallClock = time.Now })
}

func runArchive(t *testing.T, cfg ArchiveConfig, recs []schemas.Record) {
	t.Helper()
	var want []string
	for _, r := range recs {
		want = append(want, describeArchived(Archived{MessageID: r.MessageID, AckID: r.AckID}))
	}
	p, s := beam.NewPipelineWithRoot()
	archived := beam.WindowInto(s, window.NewGlobalWindows(), Archive(s, cfg, beam.CreateList(s, recs)))
	passert.Equals(s, beam.ParDo(s, describeArchived, archived), beam.CreateList(s, want))
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		got[c.Name()] += c.Result()
	}
	if got[metricnames.LakeRecordsArchived] != int64(len(recs)) || got[metricnames.LakeFilesWritten] == 0 {
		t.Errorf("counters %v; want %d records archived", got, len(recs))
	}
}

func TestArchiveIsTheInverseOfRead(t *testing.T) {
	f := newLakeFixture(t)
	fixClock(t, time.Date(2026, 11, 5, 8, 30, 15, 0, time.UTC))
	recs := archiveRecords()
	cfg := ArchiveConfig{Lake: "gs://lake/archive/"}

	runArchive(t, cfg, recs)
	first := f.objects(t, "archive/")

	t.Run("writes one file per hour folder and shard, named by window, shard and a digest of its lines", func(t *testing.T) {
		want := map[string]bool{}
		for _, r := range recs {
			hour := time.UnixMicro(schemas.ArchiveTime(r.Data, r.PublishTime)).UTC().Truncate(time.Hour).UnixMicro()
			want["archive/"+schemas.LakeHourPath(hour)+fmt.Sprintf("stream-20261105T083000Z-%03d-of-004-p0", shardOf(r.MessageID, 4))] = true
		}
		var got []string
		for name, data := range first {
			base := name[strings.LastIndex(name, "/")+1:]
			m := archiveName.FindStringSubmatch(base)
			if m == nil {
				t.Errorf("%s: not an archive file name", name)
				continue
			}
			if sum := sha256.Sum256(gunzip(t, data)); m[5] != hex.EncodeToString(sum[:])[:16] {
				t.Errorf("%s: digest %s, want the first 16 hex digits of the SHA-256 of its lines, %x", name, m[5], sum[:8])
			}
			got = append(got, strings.TrimSuffix(name, "-"+m[5]+".jsonl.gz"))
		}
		if slices.Sort(got); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(slices.Sorted(maps.Keys(want)), "\n"))
		}
	})

	t.Run("writes sorted lines without ack ids in a gzip stream without name or time", func(t *testing.T) {
		for name, data := range first {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if zr.Name != "" || !zr.ModTime.IsZero() {
				t.Errorf("%s: gzip header has name %q, time %v", name, zr.Name, zr.ModTime)
			}
			text, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var ids []string
			for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
				rec, err := schemas.ParseLakeLine([]byte(line), name, 0)
				if err != nil || rec.MessageID == "" {
					t.Fatalf("%s: line %q is not an envelope: %v", name, line, err)
				}
				if strings.Contains(line, rec.MessageID+":1") {
					t.Errorf("%s: line %q holds the ack id", name, line)
				}
				ids = append(ids, rec.MessageID)
			}
			if !slices.IsSorted(ids) {
				t.Errorf("%s: lines in order %v, want sorted by message id", name, ids)
			}
		}
	})

	t.Run("finds its files already written when run again, and adds none", func(t *testing.T) {
		gens := f.generations(t, "archive/")
		runArchive(t, cfg, recs)
		second := f.objects(t, "archive/")
		if !maps.EqualFunc(first, second, bytes.Equal) {
			t.Errorf("objects after the second run differ:\nfirst:  %v\nsecond: %v", slices.Sorted(maps.Keys(first)), slices.Sorted(maps.Keys(second)))
		}
		if again := f.generations(t, "archive/"); !maps.Equal(gens, again) {
			t.Errorf("object generations changed: the second run rewrote files\nbefore: %v\nafter:  %v", gens, again)
		}
	})

	t.Run("reads back every record as it was, under its archive hour", func(t *testing.T) {
		var want, folders []string
		for _, r := range recs {
			want = append(want, describeRoundTrip(r))
			folders = append(folders, r.MessageID+"|gs://lake/archive/"+schemas.LakeHourPath(schemas.ArchiveTime(r.Data, r.PublishTime)))
		}
		p, s := beam.NewPipelineWithRoot()
		read, dead, _ := Read(s, ReadConfig{Globs: []string{"gs://lake/archive/raw/**"}})
		passert.Equals(s, beam.ParDo(s, describeRoundTrip, read), beam.CreateList(s, want))
		passert.Equals(s, beam.ParDo(s, describeFolder, read), beam.CreateList(s, folders))
		passert.Empty(s, dead)
		ptest.RunAndValidate(t, p)
	})
}

func TestArchiveWritesARedeliveryOnce(t *testing.T) {
	f := newLakeFixture(t)
	fixClock(t, time.Date(2026, 11, 5, 8, 30, 15, 0, time.UTC))
	rec := archiveRecords()[0]
	again := rec
	again.AckID = rec.MessageID + ":2"

	runArchive(t, ArchiveConfig{Lake: "gs://lake", Shards: 1}, []schemas.Record{rec, again})
	objects := f.objects(t, "")
	if len(objects) != 1 {
		t.Fatalf("objects %v, want one", slices.Sorted(maps.Keys(objects)))
	}
	for name, data := range objects {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(zr)
		if n := strings.Count(string(text), "\n"); n != 1 {
			t.Errorf("%s has %d lines, want the message once", name, n)
		}
	}
}

// failFirst sits in front of fake-gcs-server and answers 503 to the first
// n uploads, as Cloud Storage does under load.
type failFirst struct {
	n     atomic.Int32
	proxy *httputil.ReverseProxy
}

func (h *failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/upload/") && h.n.Add(-1) >= 0 {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"code":503,"message":"injected by the test"}}`, http.StatusServiceUnavailable)
		return
	}
	h.proxy.ServeHTTP(w, r)
}

func TestArchiveRetriesATransientWriteFailure(t *testing.T) {
	f := newLakeFixture(t)
	target, err := url.Parse("http://" + f.gcs.Host)
	if err != nil {
		t.Fatal(err)
	}
	h := &failFirst{proxy: httputil.NewSingleHostReverseProxy(target)}
	h.n.Store(2)
	srv := &http.Server{Handler: h}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("STORAGE_EMULATOR_HOST", lis.Addr().String())

	recs := archiveRecords()[:1]
	runArchive(t, ArchiveConfig{Lake: "gs://lake"}, recs)
	if n := h.n.Load(); n >= 0 {
		t.Errorf("the proxy still had %d failures to inject: the write was not retried through it", n+1)
	}
	if objects := f.objects(t, "raw/"); len(objects) != 1 {
		t.Errorf("objects %v, want one", slices.Sorted(maps.Keys(objects)))
	}
}

func TestArchiveFailsTheJobWhenItCannotWrite(t *testing.T) {
	newLakeFixture(t)
	p, s := beam.NewPipelineWithRoot()
	Archive(s, ArchiveConfig{Lake: "gs://no-such-bucket/x"}, beam.CreateList(s, archiveRecords()[:1]))
	err := ptest.Run(p)
	if err == nil || !strings.Contains(err.Error(), "lake: write gs://no-such-bucket/x/raw/dt=2026-11-01/hr=10/stream-") {
		t.Fatalf("Run = %v, want the failed write naming its object", err)
	}
}

func TestArchiveNeverReplacesAFileWithOtherMessages(t *testing.T) {
	f := newLakeFixture(t)
	fixClock(t, time.Date(2026, 11, 5, 8, 30, 15, 0, time.UTC))
	recs := archiveRecords()
	cfg := ArchiveConfig{Lake: "gs://lake"}

	runArchive(t, cfg, recs)
	first := f.objects(t, "raw/")
	firstIDs := messageIDs(t, first)
	if len(firstIDs) != len(recs) {
		t.Fatalf("the first run archived %d messages, want %d", len(firstIDs), len(recs))
	}

	// A second writer of the same windows, shards and pane with only some
	// of the messages: another job on the subscription, or a restored job
	// firing the window again with what came after its checkpoint.
	var subset []schemas.Record
	for i, r := range recs {
		if i%3 == 0 {
			subset = append(subset, r)
		}
	}
	runArchive(t, cfg, subset)
	second := f.objects(t, "raw/")

	t.Run("keeps every message the first run stored", func(t *testing.T) {
		ids := messageIDs(t, second)
		for id := range firstIDs {
			if ids[id] == 0 {
				t.Errorf("message %s of the first run is gone from the lake", id)
			}
		}
		for name, data := range first {
			if !bytes.Equal(second[name], data) {
				t.Errorf("%s of the first run was replaced or removed", name)
			}
		}
	})

	t.Run("writes the other set of messages to files of other names", func(t *testing.T) {
		if len(second) <= len(first) {
			t.Errorf("%d objects after the second run, %d before: the subset wrote no file of its own", len(second), len(first))
		}
	})

	t.Run("writes no second file when the same run is retried", func(t *testing.T) {
		gens := f.generations(t, "raw/")
		runArchive(t, cfg, subset)
		if again := f.generations(t, "raw/"); !maps.Equal(gens, again) {
			t.Errorf("the retry changed the lake:\nbefore: %v\nafter:  %v", gens, again)
		}
	})

	t.Run("reads back every message of both runs", func(t *testing.T) {
		var want []string
		for _, r := range recs {
			want = append(want, r.MessageID)
		}
		lines := 0
		for _, n := range messageIDs(t, second) {
			lines += n
		}
		p, s := beam.NewPipelineWithRoot()
		read, dead, _ := Read(s, ReadConfig{Globs: []string{"gs://lake/raw/**"}})
		ids := beam.ParDo(s, messageIDOf, read)
		passert.Equals(s, filter.Distinct(s, ids), beam.CreateList(s, want))
		passert.Count(s, read, "lines", lines)
		passert.Empty(s, dead)
		ptest.RunAndValidate(t, p)
	})
}

func messageIDOf(r schemas.Record) string { return r.MessageID }

func init() {
	register.Function1x1(messageIDOf)
}

// archiveObject returns the object Archive writes for recs, all of one
// hour folder, in one shard of shards, in the window starting at start.
func archiveObject(t *testing.T, recs []schemas.Record, start time.Time, shard, shards int) (name string, data []byte) {
	t.Helper()
	var lines []archiveLine
	for _, r := range recs {
		line, err := schemas.MarshalEnvelope(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, archiveLine{messageID: r.MessageID, publishTime: r.PublishTime, line: line})
	}
	data, digest, err := gzipLines(lines)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.UnixMicro(schemas.ArchiveTime(recs[0].Data, recs[0].PublishTime)).UTC().Truncate(time.Hour).UnixMicro()
	return schemas.LakeHourPath(hour) + fileName(start, shard, shards, 0, digest), data
}

func TestArchiveChecksAnObjectThatHoldsItsName(t *testing.T) {
	at := time.Date(2026, 11, 5, 8, 30, 15, 0, time.UTC)
	recs := archiveRecords()[:1]
	name, data := archiveObject(t, recs, at.Truncate(time.Minute), 0, 1)
	cfg := ArchiveConfig{Lake: "gs://lake", Shards: 1}

	t.Run("counts a file of the same lines written without the digest in its metadata as written", func(t *testing.T) {
		f := newLakeFixture(t)
		fixClock(t, at)
		f.put(t, name, data)
		gens := f.generations(t, "")
		runArchive(t, cfg, recs)
		if again := f.generations(t, ""); !maps.Equal(gens, again) {
			t.Errorf("the lake changed:\nbefore: %v\nafter:  %v", gens, again)
		}
	})

	t.Run("fails rather than replace an object of its name that holds other lines", func(t *testing.T) {
		f := newLakeFixture(t)
		fixClock(t, at)
		foreign := gzipped(t, []byte("{\"event_id\":\"not the archive's\"}\n"))
		f.put(t, name, foreign)
		p, s := beam.NewPipelineWithRoot()
		Archive(s, cfg, beam.CreateList(s, recs))
		err := ptest.Run(p)
		if err == nil || !strings.Contains(err.Error(), "lake: write gs://lake/"+name+": the object exists already with other lines") {
			t.Errorf("Run = %v, want the write to fail naming the object", err)
		}
		if got := f.objects(t, ""); len(got) != 1 || !bytes.Equal(got[name], foreign) {
			t.Errorf("objects %v, want only the foreign object, unchanged", slices.Sorted(maps.Keys(got)))
		}
	})
}
