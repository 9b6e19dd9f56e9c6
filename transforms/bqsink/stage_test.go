package bqsink

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/railyard/railyard/schemas"
)

// The emulator never reports row errors: it fails a whole append or a
// whole commit (see emulator_test.go). What BigQuery does — row_errors in
// the AppendRowsResponse, no row of the request written — is tested here
// on the mapping from row errors to dead letters.

func TestRowErrorsBecomeDeadLetters(t *testing.T) {
	enc, err := EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		t.Fatal(err)
	}
	var group [][][]byte
	for c := 0; c < 2; c++ {
		var chunk [][]byte
		for r := 0; r < 3; r++ {
			ev := sampleEvent
			ev.EventID = fmt.Sprintf("e-%d-%d", c, r)
			ev.MessageID = ptr(fmt.Sprintf("m-%d-%d", c, r))
			data, err := enc.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			chunk = append(chunk, data)
		}
		group = append(group, chunk)
	}
	resp := &storagepb.AppendRowsResponse{RowErrors: []*storagepb.RowError{
		{Index: 1, Code: storagepb.RowError_FIELDS_ERROR, Message: "bad value in column properties"},
		{Index: 7, Code: storagepb.RowError_FIELDS_ERROR, Message: "out of range: ignored"},
	}}

	rowErrs := rowErrorsOf(resp, 1, len(group[1]))
	if len(rowErrs) != 1 {
		t.Fatalf("row errors = %v, want one (index 7 is out of range)", rowErrs)
	}
	kept, rejected := splitRejected(group, rowErrs)

	t.Run("the rejected row leaves the group, the others stay in order", func(t *testing.T) {
		var ids []string
		for _, chunk := range kept {
			for _, row := range chunk {
				ids = append(ids, *enc.DecodeString(row, "event_id"))
			}
		}
		if got := strings.Join(ids, ","); got != "e-0-0,e-0-1,e-0-2,e-1-0,e-1-2" {
			t.Errorf("kept rows %s", got)
		}
		if len(rejected) != 1 || *enc.DecodeString(rejected[0].data, "event_id") != "e-1-1" {
			t.Fatalf("rejected = %v", rejected)
		}
	})

	t.Run("a rejected row becomes a write_failed dead letter with the row as JSON", func(t *testing.T) {
		before := time.Now().UnixMicro()
		dl := newDeadLetters(schemas.Tables[0]).ofData(context.Background(), enc, rejected[0].data, rejected[0].msg)
		if dl.Stage != "write_events_batch" || dl.Reason != schemas.ReasonWriteFailed || dl.Layer != schemas.LayerBatch {
			t.Errorf("stage, reason, layer = %q, %q, %q", dl.Stage, dl.Reason, dl.Layer)
		}
		if !strings.Contains(dl.Error, "FIELDS_ERROR: bad value in column properties") {
			t.Errorf("error = %q", dl.Error)
		}
		if dl.SourceURI == nil || *dl.SourceURI != *sampleEvent.SourceURI {
			t.Errorf("source_uri = %v", dl.SourceURI)
		}
		if dl.MessageID == nil || *dl.MessageID != "m-1-1" {
			t.Errorf("message_id = %v", dl.MessageID)
		}
		if !strings.HasPrefix(string(dl.Payload), `{"event_id":"e-1-1","event_type":"page.view",`) {
			t.Errorf("payload = %s", dl.Payload)
		}
		if dl.FailedAt < before {
			t.Errorf("failed_at %d is before the write", dl.FailedAt)
		}
	})

	t.Run("a row of a table without source_uri keeps none", func(t *testing.T) {
		menc, _ := EncoderFor(reflect.TypeFor[schemas.MetricMinute]())
		data, _ := menc.Encode(schemas.MetricMinute{EventType: "x", Source: "s"})
		dl := newDeadLetters(schemas.Tables[2]).ofData(context.Background(), menc, data, "boom")
		if dl.SourceURI != nil || dl.MessageID != nil || dl.Stage != "write_metrics_minute_batch" {
			t.Errorf("dead letter %+v", dl)
		}
	})
}

func TestStreamGroups(t *testing.T) {
	row := func(n int) []byte { return make([]byte, n) }
	shape := func(groups [][][][]byte) string {
		var parts []string
		for _, g := range groups {
			var appends []string
			for _, a := range g {
				var sizes []string
				for _, r := range a {
					sizes = append(sizes, fmt.Sprint(len(r)))
				}
				appends = append(appends, strings.Join(sizes, "+"))
			}
			parts = append(parts, "["+strings.Join(appends, " ")+"]")
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name                        string
		rows                        []int
		maxBytes, maxRows, perGroup int
		want                        string
		wantOversize                int
	}{
		{"no rows, no stream", nil, 10, 10, 2, "", 0},
		{"appends stay under the byte limit", []int{4, 4, 4, 10, 1}, 10, 100, 16, "[4+4 4 10 1]", 0},
		{"appends stay under the row limit", []int{1, 1, 1, 1, 1}, 100, 2, 16, "[1+1 1+1 1]", 0},
		{"one append per stream, as the emulator needs", []int{4, 4, 4}, 5, 100, 1, "[4] [4] [4]", 0},
		{"a row over the limit is set aside", []int{3, 11, 3}, 10, 100, 16, "[3+3]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rows [][]byte
			for _, n := range tt.rows {
				rows = append(rows, row(n))
			}
			oversize := 0
			var groups [][][][]byte
			for g := range streamGroups(slices.Values(rows), tt.maxBytes, tt.maxRows, tt.perGroup, func([]byte) { oversize++ }) {
				groups = append(groups, g)
			}
			if got := shape(groups); got != tt.want || oversize != tt.wantOversize {
				t.Errorf("groups %q, %d oversize; want %q, %d", got, oversize, tt.want, tt.wantOversize)
			}
		})
	}
}

func TestFileOf(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"gs://b/raw/dt=2024-01-01/hr=00/a.jsonl.gz#L12", "gs://b/raw/dt=2024-01-01/hr=00/a.jsonl.gz"},
		{"gs://b/a#Lx.jsonl#L3", "gs://b/a#Lx.jsonl"},
		{"gs://b/a.jsonl", "gs://b/a.jsonl"},
		{"gs://b/a.jsonl#L", "gs://b/a.jsonl#L"},
		{"gs://b/a.jsonl#L1a", "gs://b/a.jsonl#L1a"},
	}
	for _, tt := range tests {
		if got := fileOf(tt.uri); got != tt.want {
			t.Errorf("fileOf(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}

// TestReplaceDaySQL pins the two statements that replace a day: the
// MERGE BigQuery gets and the script the emulator gets.
func TestReplaceDaySQL(t *testing.T) {
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	cols := []string{"event_id", "event_time"}
	tests := []struct {
		name string
		sql  func(target, staging, partitionCol string, day time.Time, cols []string) string
		want string
	}{
		{"replaceDaySQL", replaceDaySQL, "MERGE `p.d.events_batch` T\n" +
			"USING `p.d.stage` S\n" +
			"ON FALSE\n" +
			"WHEN NOT MATCHED BY SOURCE AND T.`event_time` >= TIMESTAMP '2024-02-29 00:00:00+00' AND T.`event_time` < TIMESTAMP '2024-03-01 00:00:00+00' THEN DELETE\n" +
			"WHEN NOT MATCHED THEN INSERT (`event_id`, `event_time`) VALUES (S.`event_id`, S.`event_time`)"},
		{"replaceDayScript", replaceDayScript, "BEGIN TRANSACTION;\n" +
			"DELETE FROM `p.d.events_batch` WHERE `event_time` >= TIMESTAMP '2024-02-29 00:00:00+00' AND `event_time` < TIMESTAMP '2024-03-01 00:00:00+00';\n" +
			"INSERT INTO `p.d.events_batch` (`event_id`, `event_time`) SELECT `event_id`, `event_time` FROM `p.d.stage`;\n" +
			"COMMIT TRANSACTION;"},
	}
	for _, tt := range tests {
		if got := tt.sql("`p.d.events_batch`", "`p.d.stage`", "event_time", day, cols); got != tt.want {
			t.Errorf("%s =\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestStagingName(t *testing.T) {
	a, b := stagingName("events_batch", "20240101", "run-7"), stagingName("events_batch", "20240101", "run-7")
	if !strings.HasPrefix(a, "_railyard_stage_events_batch_20240101_run_7_") || strings.ContainsAny(a, "-.") {
		t.Errorf("staging name %q", a)
	}
	if a == b {
		t.Errorf("two attempts got the same staging table %q", a)
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "try again"), true},
		{status.Error(codes.Internal, "oops"), true},
		{status.Error(codes.InvalidArgument, "bad row"), false},
		{&googleapi.Error{Code: 503}, true},
		{&googleapi.Error{Code: 400, Errors: []googleapi.ErrorItem{{Reason: "invalidQuery"}}}, false},
		{&googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{{Reason: "rateLimitExceeded"}}}, true},
		{&bigquery.Error{Reason: "backendError"}, true},
		{fmt.Errorf("merge: %w", &bigquery.Error{Reason: "invalidQuery", Message: "Could not serialize access to table p:d.t due to concurrent update"}), true},
		{&commitError{code: storagepb.StorageError_STORAGE_ERROR_CODE_UNSPECIFIED, msg: "sqlite3: database is locked"}, true},
		{fmt.Errorf("commit: %w", &commitError{code: storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS}), false},
		{status.Error(codes.Unknown, "failed to get stream: sqlite3: database table is locked"), true},
		{context.Canceled, false},
		{errors.New("plain"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	p := retryPolicy{attempts: 3}
	p.backoff.Initial = time.Millisecond
	t.Run("retries a transient error until it passes", func(t *testing.T) {
		calls, retries := 0, 0
		err := p.do(context.Background(), func(error) { retries++ }, func() error {
			calls++
			if calls < 3 {
				return status.Error(codes.Unavailable, "later")
			}
			return nil
		})
		if err != nil || calls != 3 || retries != 2 {
			t.Errorf("err %v after %d calls, %d retries", err, calls, retries)
		}
	})
	t.Run("gives up after the last attempt", func(t *testing.T) {
		calls := 0
		err := p.do(context.Background(), nil, func() error { calls++; return status.Error(codes.Unavailable, "down") })
		if err == nil || calls != 3 {
			t.Errorf("err %v after %d calls", err, calls)
		}
	})
	t.Run("does not retry a permanent error", func(t *testing.T) {
		calls := 0
		err := p.do(context.Background(), nil, func() error { calls++; return status.Error(codes.InvalidArgument, "bad") })
		if err == nil || calls != 1 {
			t.Errorf("err %v after %d calls", err, calls)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"complete", Config{Project: "my-project", Dataset: "railyard", RunID: "r-1"}, ""},
		{"a domain-scoped project", Config{Project: "example.com:my-project", Dataset: "railyard", RunID: "r-1"}, ""},
		{"no project", Config{Dataset: "d", RunID: "r"}, `project "" is not a Google Cloud project id`},
		{"a project that would break out of a quoted name in SQL", Config{Project: "p`; DROP TABLE x; --", Dataset: "d", RunID: "r"}, "is not a Google Cloud project id"},
		{"a project with a dot", Config{Project: "my.project", Dataset: "d", RunID: "r"}, `project "my.project"`},
		{"a project too short", Config{Project: "p", Dataset: "d", RunID: "r"}, `project "p"`},
		{"dataset with a dash", Config{Project: "my-project", Dataset: "rail-yard", RunID: "r"}, `dataset "rail-yard"`},
		{"dataset with a backquote", Config{Project: "my-project", Dataset: "a`b", RunID: "r"}, "dataset \"a`b\""},
		{"no run id", Config{Project: "my-project", Dataset: "d"}, `run id ""`},
		{"run id with a dot", Config{Project: "my-project", Dataset: "d", RunID: "a.b"}, `run id "a.b"`},
		{"negative expiration", Config{Project: "my-project", Dataset: "d", RunID: "r", StagingExpiration: -time.Hour}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validateWrite()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validateWrite() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSanitizeDeadLetter(t *testing.T) {
	dl, err := sanitizeDeadLetter(schemas.DeadLetter{Error: "bad byte \xff", Attributes: ptr(`{"k":`), SourceURI: ptr("gs://b/\xfe#L1")})
	if err != nil {
		t.Fatal(err)
	}
	if dl.Layer != schemas.LayerBatch || dl.Error != "bad byte \uFFFD" || *dl.SourceURI != "gs://b/\uFFFD#L1" || *dl.Attributes != `"{\"k\":"` {
		t.Errorf("sanitized %+v (attributes %s)", dl, *dl.Attributes)
	}
	if _, err := sanitizeDeadLetter(schemas.DeadLetter{Layer: schemas.LayerSpeed}); err == nil {
		t.Error("a speed-layer dead letter was accepted")
	}
}
