package streamjob

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

// archiveFile matches an archive file's name; its group is what names
// the window, shard and pane, before the digest of the file's lines.
var archiveFile = regexp.MustCompile(`^(stream-\d{8}T\d{6}Z-\d{3}-of-\d{3}-p\d+)(-[0-9a-f]{16})?\.jsonl\.gz$`)

// lakeMessages reads every archive file of the lake bucket and returns
// how many lines each message id has there, and how many files share
// each window, shard and pane (in their hour folder).
func lakeMessages(t *testing.T) (ids map[string]int, writers map[string]int) {
	t.Helper()
	ctx := context.Background()
	client, err := storage.NewClient(ctx) // STORAGE_EMULATOR_HOST, set by startEnv
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ids, writers = map[string]int{}, map[string]int{}
	it := client.Bucket("lake").Objects(ctx, &storage.Query{Prefix: "raw/"})
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return ids, writers
		}
		if err != nil {
			t.Fatal(err)
		}
		m := archiveFile.FindStringSubmatch(path.Base(attrs.Name))
		if m == nil {
			t.Errorf("%s is not named as an archive file", attrs.Name)
			continue
		}
		writers[path.Dir(attrs.Name)+"/"+m[1]]++
		r, err := client.Bucket("lake").Object(attrs.Name).NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", attrs.Name, err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", attrs.Name, err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
			rec, err := schemas.ParseLakeLine([]byte(line), attrs.Name, 0)
			if err != nil || rec.MessageID == "" {
				t.Fatalf("%s: a line is not an archive envelope: %v", attrs.Name, err)
			}
			ids[rec.MessageID]++
		}
	}
}

// Two streaming jobs read one subscription at the same time (a blue/green
// start, a drain that overlaps its successor, a local run pointed at the
// production subscription). Each archives the messages it reads into the
// same lake, in files of the same windows, shards and panes: neither may
// remove what the other stored, and the batch job over the lake must count
// every event once.
func TestTwoStreamingJobsOnOneSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two streaming jobs for about a minute")
	}
	e := startEnv(t, "stream_two_jobs")

	// Both run in this process, on Prism's in-process job server, which
	// runs jobs side by side. They start one after the other and before
	// the stream: the BigQuery emulator (SQLite underneath) answers
	// "database is locked" to a job's set-up queries while the other job
	// appends.
	runIDs := []string{"stream-blue", "stream-green"}
	counts := make([]map[string]int64, len(runIDs))
	errs := make([]error, len(runIDs))
	var wg sync.WaitGroup
	for _, i := range []int{0, 1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := e.config(runIDs[i])
			cfg.StopAfterIdle = 20 * time.Second
			res, err := Run(context.Background(), cfg)
			counts[i], errs[i] = testenv.Counters(res), err
		}()
		time.Sleep(6 * time.Second)
	}
	msgs := live(1500, 25, 4) // a minute of stream, duplicates and bad records included
	tr := truthOf(t, msgs)
	sent := e.publishPaced(t, msgs)
	wg.Wait()
	sent()
	for i, id := range runIDs {
		if errs[i] != nil {
			t.Fatalf("streaming job %s: %v", id, errs[i])
		}
		t.Logf("%s counters: %v", id, counts[i])
		if counts[i]["pubsub_messages_read"] == 0 {
			t.Errorf("streaming job %s read no message: the jobs did not share the subscription", id)
		}
		if in, out := counts[i]["records_in"], counts[i]["events_valid"]+counts[i]["dead_letters"]; in != out {
			t.Errorf("streaming job %s: records_in %d != events_valid + dead_letters %d", id, in, out)
		}
	}

	t.Run("every published message is in the lake", func(t *testing.T) {
		ids, writers := lakeMessages(t)
		missing := 0
		for _, m := range e.ps.Server.Messages() {
			if ids[m.ID] == 0 {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d published messages are not in the lake", missing, len(msgs))
		}
		shared := 0
		for _, n := range writers {
			if n > 1 {
				shared++
			}
		}
		t.Logf("%d lines of %d messages in the lake; %d of %d window, shard and pane names written by both jobs",
			sumOf(ids), len(ids), shared, len(writers))
		if shared == 0 {
			t.Error("no window, shard and pane was written by both jobs: the test did not exercise two writers of one file name")
		}
	})

	t.Run("the batch job over the lake counts every valid event once and reconciles", func(t *testing.T) {
		c := e.runBatch(t, "batch-two-jobs")
		t.Logf("batch counters: %v", c)
		if c["lake_lines_read"] < int64(len(msgs)) {
			t.Errorf("the batch job read %d lines from the lake, want at least the %d messages", c["lake_lines_read"], len(msgs))
		}
		rows := e.db.Query(t, "SELECT event_id, COUNT(*) FROM {ds}.events_batch GROUP BY event_id")
		seen := map[string]bool{}
		for _, row := range rows {
			id, n, _ := strings.Cut(row, "|")
			seen[id] = true
			if !tr.events[id] {
				t.Errorf("events_batch holds %s, which is not a valid event of the stream", id)
			}
			if n != "1" {
				t.Errorf("events_batch holds event %s %s times, want once", id, n)
			}
		}
		var missing []string
		for id := range tr.events {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			t.Errorf("%d of the stream's %d valid events are not in events_batch, first: %v", len(missing), len(tr.events), missing[:min(3, len(missing))])
		}
		dead := slices.Compact(e.db.Query(t, "SELECT reason, payload FROM {ds}.dead_letter WHERE layer = 'batch'"))
		if !slices.Equal(dead, tr.bad) {
			t.Errorf("dead_letter holds %d distinct batch rows, want the stream's %d bad records with their raw bytes", len(dead), len(tr.bad))
		}
		events := e.db.One(t, "SELECT COUNT(*) FROM {ds}.events_batch")
		deadRows := e.db.One(t, "SELECT COUNT(*) FROM {ds}.dead_letter WHERE layer = 'batch'")
		if sum := fmt.Sprintf("%d", mustAtoi(t, events)+c["duplicates"]+mustAtoi(t, deadRows)); sum != fmt.Sprint(c["lake_lines_read"]) {
			t.Errorf("events_batch rows %s + duplicates %d + dead letters %s = %s, want the %d lines read",
				events, c["duplicates"], deadRows, sum, c["lake_lines_read"])
		}
	})
}

func sumOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return n
}
