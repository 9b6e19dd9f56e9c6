package lake

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// lineEndingAt appends lines to b so that a newline is at byte pos: short
// JSON lines, then one padding line (empty if b already ends at pos).
func lineEndingAt(b *bytes.Buffer, pos int, next *int) {
	for pos-b.Len() > 400 {
		fmt.Fprintf(b, `{"event_id":"e%06d","pad":"%s"}`+"\n", *next, strings.Repeat("p", 100+*next%173))
		*next++
	}
	if pos < b.Len() {
		panic(fmt.Sprintf("lineEndingAt(%d) past byte %d", pos, b.Len()))
	}
	b.WriteString(strings.Repeat("q", pos-b.Len()))
	b.WriteByte('\n')
}

// blockedFile is a plain file whose lines fall on the boundaries of
// blocks of size bs every way they can: a block boundary right after a
// newline, a newline as a block's first byte, an empty line at a block's
// start, lines across boundaries, a line spanning several blocks (blocks
// where no line starts), a line too large for a dead letter spanning
// many, an empty line, CRLF, an archive envelope, a bad envelope. Its last
// line ends without a newline unless trailingNewline.
func blockedFile(t *testing.T, bs int, trailingNewline bool) []byte {
	t.Helper()
	var b bytes.Buffer
	next := 0
	b.WriteString(envelopeLine(t, []byte(`{"event_id":"in-envelope"}`), "m1") + "\n")
	b.WriteString(`{"envelope":"railyard/raw/v9","data":""}` + "\n") // a bad envelope
	b.WriteString("{\"event_id\":\"crlf\"}\r\n\n")                   // CRLF, then an empty line
	lineEndingAt(&b, bs-1, &next)                                    // block 1 starts right after a newline
	lineEndingAt(&b, 2*bs, &next)                                    // block 2's first byte ends a line
	lineEndingAt(&b, 3*bs-1, &next)                                  // block 3 starts with an empty line
	lineEndingAt(&b, 3*bs, &next)
	lineEndingAt(&b, 4*bs+10, &next) // a line across a boundary
	lineEndingAt(&b, 5*bs-20, &next)
	lineEndingAt(&b, 8*bs+20, &next) // spans blocks 5 to 8: no line starts in 6 and 7
	b.WriteString(strings.Repeat("z", schemas.MaxDeadLetterPayload+bs/2) + "\n")
	lineEndingAt(&b, b.Len()+3*bs/2, &next)
	if trailingNewline {
		lineEndingAt(&b, b.Len()+bs/3, &next)
	} else {
		b.WriteString(`{"event_id":"last-without-newline"}`)
	}
	return b.Bytes()
}

// splitLines returns what a file's lines should give: the source_uri of
// each record and dead letter, split by hand.
func splitLines(uri string, data []byte) (records, dead []string) {
	lines := bytes.Split(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // after the last newline: no line
	}
	for i, l := range lines {
		src := SourceURI(uri, i+1)
		switch {
		case len(l) > schemas.MaxDeadLetterPayload:
			dead = append(dead, fmt.Sprintf("%s|too_large|%d|read", src, schemas.MaxDeadLetterPayload))
		case bytes.HasPrefix(l, []byte(`{"envelope":"railyard/raw/v9"`)):
			dead = append(dead, fmt.Sprintf("%s|bad_envelope|%d|read", src, len(l)))
		default:
			records = append(records, src)
		}
	}
	return records, dead
}

func TestReadLargePlainFilesInBlocks(t *testing.T) {
	const bs = 64 << 10
	withoutNewline := blockedFile(t, bs, false)
	withNewline := blockedFile(t, bs, true)
	small := manyLines(10)
	large := manyLines(5000)
	files := map[string][]byte{
		"big.jsonl":       withoutNewline,
		"big-nl.jsonl":    withNewline,
		"small.jsonl":     small,             // read whole: not larger than a block
		"large.jsonl.gz":  gzipped(t, large), // read whole: gzip
		"empty-day.jsonl": nil,
	}
	if n := len(gzipped(t, large)); n <= bs {
		t.Fatalf("the .gz file is %d bytes; the test wants one larger than a block", n)
	}

	run := func(t *testing.T, root string) {
		uri := func(name string) string { return root + "/raw/dt=2026-11-01/hr=10/" + name }
		var wantRecords, wantDead, wantFiles, wholeRecords, wholeDead []string
		blocks := 0
		for name, data := range files {
			wantFiles = append(wantFiles, uri(name))
			if strings.HasSuffix(name, ".gz") {
				data = large
				for i, l := range bytes.Split(bytes.TrimSuffix(large, []byte("\n")), []byte("\n")) {
					wholeRecords = append(wholeRecords, fmt.Sprintf("%s|%q||0", SourceURI(uri(name), i+1), l))
				}
			} else {
				// What a whole read gives, the reference.
				whole, err := readWhole(context.Background(), fileio.FileMetadata{Path: uri(name), Size: int64(len(data))})
				if err != nil {
					t.Fatal(err)
				}
				wholeRecords, wholeDead = append(wholeRecords, whole.records...), append(wholeDead, whole.dead...)
			}
			r, d := splitLines(uri(name), data)
			wantRecords, wantDead = append(wantRecords, r...), append(wantDead, d...)
			if len(data) > bs && !strings.HasSuffix(name, ".gz") {
				blocks += (len(data) + bs - 1) / bs
			}
		}

		p, s := beam.NewPipelineWithRoot()
		records, dead, read := Read(s, ReadConfig{Globs: []string{uri("*")}, BlockBytes: bs})
		passert.Equals(s, beam.ParDo(s, describeRecord, records), beam.CreateList(s, wholeRecords))
		passert.Equals(s, beam.ParDo(s, describeDeadLetter, dead), beam.CreateList(s, wholeDead))
		passert.Equals(s, beam.ParDo(s, lineNumber, records), beam.CreateList(s, wantRecords))
		passert.Equals(s, beam.ParDo(s, describeDeadLetter, dead), beam.CreateList(s, wantDead))
		passert.Equals(s, read, beam.CreateList(s, wantFiles))
		pr, err := ptest.RunWithMetrics(p)
		if err != nil {
			t.Fatal(err)
		}
		counters := map[string]int64{}
		for _, c := range pr.Metrics().AllMetrics().Counters() {
			counters[c.Name()] += c.Result()
		}
		if got, want := counters[metricnames.LakeLinesRead], int64(len(wantRecords)+len(wantDead)); got != want {
			t.Errorf("%s = %d, want %d: every line once", metricnames.LakeLinesRead, got, want)
		}
		if got := counters[metricnames.LakeFilesRead]; got != int64(len(files)) {
			t.Errorf("%s = %d, want %d: each file once", metricnames.LakeFilesRead, got, len(files))
		}
		// The files larger than a block were read in blocks.
		if got := counters[metricnames.LakeBlocksRead]; got != int64(blocks) {
			t.Errorf("%s = %d, want %d: the plain files larger than a block, in blocks", metricnames.LakeBlocksRead, got, blocks)
		}
	}

	t.Run("local files read in blocks give what they give read whole", func(t *testing.T) {
		dir := t.TempDir()
		hour := filepath.Join(dir, "raw", "dt=2026-11-01", "hr=10")
		if err := os.MkdirAll(hour, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(hour, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(t, dir)
	})
	t.Run("Cloud Storage objects read in blocks give what they give read whole", func(t *testing.T) {
		_, put := storageFixture(t)
		for name, data := range files {
			put("raw/dt=2026-11-01/hr=10/"+name, data)
		}
		run(t, "gs://lake")
	})
}

// blockRun reads one file through the block DoFns as Read chains them,
// the blocks in a random order at each step.
type blockRun struct {
	records, dead, files []string
	blocks               int
}

func readInBlocks(ctx context.Context, m fileio.FileMetadata, blockBytes int64, rng *rand.Rand) (blockRun, error) {
	var run blockRun
	plan := &planBlocksFn{BlockBytes: blockBytes}
	defer plan.Teardown()
	var blocks []fileBlock
	err := plan.ProcessElement(ctx, m, func(fileio.FileMetadata) { run.blocks = -1 }, func(b fileBlock) { blocks = append(blocks, b) })
	if err != nil || run.blocks < 0 {
		return run, err
	}
	run.blocks = len(blocks)
	rng.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })

	count := &countNewlinesFn{}
	defer count.Teardown()
	groups := map[string][]fileBlock{}
	for _, b := range blocks {
		if err := count.ProcessElement(ctx, b, func(k string, b fileBlock) { groups[k] = append(groups[k], b) }); err != nil {
			return run, err
		}
	}
	var numbered []fileBlock
	for k, group := range groups {
		iter := func(b *fileBlock) bool {
			if len(group) == 0 {
				return false
			}
			*b, group = group[0], group[1:]
			return true
		}
		if err := (&numberBlocksFn{}).ProcessElement(k, iter, func(b fileBlock) { numbered = append(numbered, b) }); err != nil {
			return run, err
		}
	}
	rng.Shuffle(len(numbered), func(i, j int) { numbered[i], numbered[j] = numbered[j], numbered[i] })

	read := &readBlockFn{}
	read.Setup()
	defer read.Teardown()
	for _, b := range numbered {
		err := read.ProcessElement(ctx, b,
			func(r schemas.Record) { run.records = append(run.records, describeRecord(r)) },
			func(d schemas.DeadLetter) { run.dead = append(run.dead, describeDeadLetter(d)) },
			func(f string) { run.files = append(run.files, f) })
		if err != nil {
			return run, err
		}
	}
	slices.Sort(run.records)
	slices.Sort(run.dead)
	return run, nil
}

// readWhole reads one plain file as Read reads a small one.
func readWhole(ctx context.Context, m fileio.FileMetadata) (blockRun, error) {
	var run blockRun
	fn := &readLinesFn{}
	fn.Setup()
	err := fn.ProcessElement(ctx, fileio.ReadableFile{Metadata: m},
		func(r schemas.Record) { run.records = append(run.records, describeRecord(r)) },
		func(d schemas.DeadLetter) { run.dead = append(run.dead, describeDeadLetter(d)) },
		func(f string) { run.files = append(run.files, f) })
	slices.Sort(run.records)
	slices.Sort(run.dead)
	return run, err
}

// diffLists says what got (sorted) lacks and has too many of against want
// (sorted), the first three of each.
func diffLists(got, want []string) string {
	var missing, extra []string
	for i, j := 0, 0; i < len(got) || j < len(want); {
		switch {
		case j == len(want) || (i < len(got) && got[i] < want[j]):
			extra, i = append(extra, got[i]), i+1
		case i == len(got) || want[j] < got[i]:
			missing, j = append(missing, want[j]), j+1
		default:
			i, j = i+1, j+1
		}
	}
	if len(missing)+len(extra) == 0 {
		return "as wanted"
	}
	return fmt.Sprintf("%d missing %q, %d extra %q", len(missing), missing[:min(3, len(missing))], len(extra), extra[:min(3, len(extra))])
}

func localFile(t *testing.T, name string, data []byte) fileio.FileMetadata {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fileio.FileMetadata{Path: p, Size: info.Size(), LastModified: info.ModTime()}
}

func TestEveryBlockSizeGivesEveryLineOnceWithItsNumber(t *testing.T) {
	// Every byte of these files is at a block boundary for some size.
	var b bytes.Buffer
	b.WriteString("\n\n" + envelopeLine(t, []byte(`{"event_id":"x"}`), "m1") + "\n")
	for i := range 40 {
		fmt.Fprintf(&b, "%s\n", strings.Repeat("l", (i*7)%23))
		if i%9 == 0 {
			b.WriteString("\r\n\n")
		}
	}
	b.WriteString(`{"envelope":"railyard/raw/v9","data":""}` + "\n")
	body := b.Bytes()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a file ending in a newline", body},
		{"a file ending in two newlines", append(slices.Clip(body), '\n')},
		{"a file whose last line has no newline", append(slices.Clip(body), "last"...)},
		{"a file of newlines only", []byte("\n\n\n\n\n")},
		{"a file of one line without a newline", []byte(strings.Repeat("o", 40))},
	} {
		t.Run(tc.name+" gives the lines of a whole read, in blocks of every size", func(t *testing.T) {
			m := localFile(t, "f.jsonl", tc.data)
			whole, err := readWhole(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			wantRecords, wantDead := splitLines(m.Path, tc.data)
			if len(whole.records) != len(wantRecords) || len(whole.dead) != len(wantDead) {
				t.Fatalf("read whole: %d records and %d dead letters, want %d and %d", len(whole.records), len(whole.dead), len(wantRecords), len(wantDead))
			}
			for size := int64(1); size < int64(len(tc.data)); size++ {
				if size > 96 && size%17 != 0 {
					continue // every boundary is tried by then; some larger sizes still
				}
				got, err := readInBlocks(ctx, m, size, rng)
				if err != nil {
					t.Fatalf("blocks of %d: %v", size, err)
				}
				if got.blocks < 2 {
					t.Fatalf("blocks of %d: %d blocks", size, got.blocks)
				}
				if !slices.Equal(got.records, whole.records) || !slices.Equal(got.dead, whole.dead) || !slices.Equal(got.files, whole.files) {
					t.Fatalf("blocks of %d: records %s; dead letters %s; files %s",
						size, diffLists(got.records, whole.records), diffLists(got.dead, whole.dead), diffLists(got.files, whole.files))
				}
			}
		})
	}
}

func TestALineTooLargeForADeadLetterIsOneDeadLetterAcrossBlocks(t *testing.T) {
	huge := strings.Repeat("h", schemas.MaxDeadLetterPayload+100)
	data := []byte("first\n" + huge + "\nafter\n" + huge)
	m := localFile(t, "huge.jsonl", data)
	for _, size := range []int64{1 << 20, 1<<20 + 7, 3 << 20} {
		got, err := readInBlocks(context.Background(), m, size, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			fmt.Sprintf("%s|too_large|%d|read", SourceURI(m.Path, 2), schemas.MaxDeadLetterPayload),
			fmt.Sprintf("%s|too_large|%d|read", SourceURI(m.Path, 4), schemas.MaxDeadLetterPayload),
		}
		wantRecords := []string{
			fmt.Sprintf("%s|%q||0", SourceURI(m.Path, 1), "first"),
			fmt.Sprintf("%s|%q||0", SourceURI(m.Path, 3), "after"),
		}
		if !slices.Equal(got.dead, want) || !slices.Equal(got.records, wantRecords) {
			t.Errorf("blocks of %d (%d blocks): dead %q, records %q; want %q, %q", size, got.blocks, got.dead, got.records, want, wantRecords)
		}
	}
}

func TestABlockOfAFileChangedAfterPlanningFailsNamingIt(t *testing.T) {
	ctx := context.Background()
	data := manyLines(200)
	// plan plans m in blocks and returns the first and a later one.
	plan := func(t *testing.T, m fileio.FileMetadata) []fileBlock {
		t.Helper()
		fn := &planBlocksFn{BlockBytes: 1024}
		defer fn.Teardown()
		var blocks []fileBlock
		if err := fn.ProcessElement(ctx, m, func(fileio.FileMetadata) { t.Fatal("planned whole") }, func(b fileBlock) { blocks = append(blocks, b) }); err != nil {
			t.Fatal(err)
		}
		return []fileBlock{blocks[0], blocks[3]}
	}
	// check runs each step of the read on blocks and wants each to fail
	// with an error holding want.
	check := func(t *testing.T, blocks []fileBlock, want ...string) {
		t.Helper()
		count := &countNewlinesFn{}
		defer count.Teardown()
		read := &readBlockFn{}
		read.Setup()
		defer read.Teardown()
		for _, b := range blocks {
			b.Before = 1 // as if numbered
			emitted := 0
			errs := map[string]error{
				"count": count.ProcessElement(ctx, b, func(string, fileBlock) { emitted++ }),
				"read":  read.ProcessElement(ctx, b, func(schemas.Record) { emitted++ }, func(schemas.DeadLetter) { emitted++ }, func(string) {}),
			}
			for step, err := range errs {
				for _, w := range want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("%s %v = %v, want an error holding %q", step, b, err, w)
					}
				}
			}
			if emitted > 0 {
				t.Errorf("%v: %d elements emitted from a changed file", b, emitted)
			}
		}
	}

	t.Run("an object rewritten after its blocks are planned fails each block, naming it", func(t *testing.T) {
		gcs, put := storageFixture(t)
		put("raw/big.jsonl", data)
		client, err := gcs.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := client.Bucket("lake").Object("raw/big.jsonl").Attrs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		blocks := plan(t, fileio.FileMetadata{Path: "gs://lake/raw/big.jsonl", Size: attrs.Size, LastModified: attrs.Updated})
		put("raw/big.jsonl", data) // the same bytes, a new generation
		check(t, blocks, "lake: read gs://lake/raw/big.jsonl bytes [", fmt.Sprintf("generation %d of the object is gone", attrs.Generation))
	})
	t.Run("an object deleted after its blocks are planned fails each block, naming it", func(t *testing.T) {
		gcs, put := storageFixture(t)
		put("raw/big.jsonl", data)
		client, err := gcs.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		obj := client.Bucket("lake").Object("raw/big.jsonl")
		attrs, err := obj.Attrs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		blocks := plan(t, fileio.FileMetadata{Path: "gs://lake/raw/big.jsonl", Size: attrs.Size, LastModified: attrs.Updated})
		if err := obj.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, blocks, "lake: read gs://lake/raw/big.jsonl bytes [", "is gone")
	})
	t.Run("a local file rewritten after its blocks are planned fails each block, naming it", func(t *testing.T) {
		m := localFile(t, "big.jsonl", data)
		blocks := plan(t, m)
		later := m.LastModified.Add(time.Second)
		if err := os.WriteFile(m.Path, append(slices.Clip(data), "more\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(m.Path, later, later); err != nil {
			t.Fatal(err)
		}
		check(t, blocks, "lake: read "+m.Path+" bytes [", "the file changed after its blocks were planned")
	})
	t.Run("a local file touched after its blocks are planned fails each block, naming it", func(t *testing.T) {
		m := localFile(t, "big.jsonl", data)
		blocks := plan(t, m)
		later := m.LastModified.Add(time.Second)
		if err := os.Chtimes(m.Path, later, later); err != nil {
			t.Fatal(err)
		}
		check(t, blocks, "lake: read "+m.Path+" bytes [", "the file changed after its blocks were planned")
	})
}

func TestNumberBlocksRefusesBlocksThatDoNotCoverTheFile(t *testing.T) {
	block := func(start, end int64) fileBlock {
		return fileBlock{File: "f", Size: 30, Start: start, End: end, Newlines: 1}
	}
	for _, tc := range []struct {
		name    string
		blocks  []fileBlock
		wantErr string
		want    []int64 // Before of each block emitted
	}{
		{"blocks that cover the file are numbered in order", []fileBlock{block(20, 30), block(0, 10), block(10, 20)}, "", []int64{0, 1, 2}},
		{"a file matched twice is numbered twice", []fileBlock{block(10, 30), block(0, 10), block(0, 10), block(10, 30)}, "", []int64{0, 0, 1, 1}},
		{"a missing block is an error", []fileBlock{block(0, 10), block(20, 30)}, "do not cover it: f bytes [20, 30) after byte 10", nil},
		{"a missing last block is an error", []fileBlock{block(0, 10), block(10, 20)}, "do not cover it", nil},
		{"a block missing from one plan is an error", []fileBlock{block(0, 10), block(0, 10), block(10, 30)}, "do not cover it", nil},
		{"no first block is an error", []fileBlock{block(10, 30)}, "do not cover it", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.blocks)
			var got []int64
			err := (&numberBlocksFn{}).ProcessElement("k", func(b *fileBlock) bool {
				if len(in) == 0 {
					return false
				}
				*b, in = in[0], in[1:]
				return true
			}, func(b fileBlock) { got = append(got, b.Before) })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && !slices.Equal(got, tc.want):
				t.Fatalf("numbered %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     ReadConfig
		wantErr []string
	}{
		{"globs and the default block size are valid", ReadConfig{Globs: []string{"gs://b/raw/**"}}, nil},
		{"a block size is valid", ReadConfig{Globs: []string{"/lake/*"}, BlockBytes: 4096}, nil},
		{"no globs is an error", ReadConfig{}, []string{"lake: Globs is empty"}},
		{"an empty glob is an error", ReadConfig{Globs: []string{"a", " "}}, []string{"lake: Globs[1] is empty"}},
		{"a negative block size is an error, with the others", ReadConfig{BlockBytes: -1}, []string{"lake: Globs is empty", "lake: BlockBytes is -1; want a positive size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want an error holding %q", err, w)
				}
			}
		})
	}
}
