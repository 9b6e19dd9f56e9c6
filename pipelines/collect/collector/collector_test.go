package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/schemas"
)

func event(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"page.view","event_time":"2026-11-01T10:00:00.123456Z","source":"web-shop","user_id":"u1"}`, id)
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unsized hides a body's length, so it is sent chunked.
type unsized struct{ io.Reader }

// TestBodies posts every body shape, every limit crossed and every bad
// body to an edge on a real listener, and checks the answer and, by
// pulling from a subscription, exactly what was published.
func TestBodies(t *testing.T) {
	ev1, ev2 := event("e-1"), event("e-2")
	bad := `{"event_id":"e-3","event_time":"2026-11-01T10:00:00Z","source":"web-shop"}`
	big := `{"event_id":"e-big","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"web-shop","properties":{"blob":"` + strings.Repeat("x", schemas.MaxRecordBytes) + `"}}`
	bomb := gz(t, make([]byte, 8<<20))
	huge := strings.Replace(big, `"blob":"`, `"blob":"`+strings.Repeat("y", 10<<20), 1)
	whole := gz(t, []byte(ev1+"\n"+ev2+"\n"))
	tests := []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		chunked     bool
		mutate      func(*Config)
		wantStatus  int
		wantCode    string   // a request-level error code
		wantRecords []string // status or status/reason of each record
		wantData    []string // message data published, in order
		wantBlank   int
	}{
		{name: "one object is one record, published byte for byte", contentType: "application/json", body: []byte(ev1),
			wantStatus: 200, wantRecords: []string{"accepted"}, wantData: []string{ev1}},
		{name: "a JSON array is one record per element, each as its bytes in the body", contentType: "application/json; charset=utf-8",
			body: []byte("[ " + ev1 + " ,\n\t" + ev2 + " ]\n"), wantStatus: 200, wantRecords: []string{"accepted", "accepted"}, wantData: []string{ev1, ev2}},
		{name: "NDJSON is one record per line, CRLF and blank lines skipped and counted", contentType: "application/x-ndjson",
			body: []byte(ev1 + "\r\n\n  \n" + ev2), wantStatus: 200, wantRecords: []string{"accepted", "accepted"}, wantData: []string{ev1, ev2}, wantBlank: 2},
		{name: "gzipped NDJSON is gunzipped", contentType: "application/x-ndjson", encoding: "gzip", body: whole,
			wantStatus: 200, wantRecords: []string{"accepted", "accepted"}, wantData: []string{ev1, ev2}},
		{name: "a record that breaks the contract is rejected with its reason and index, and published marked", contentType: "application/x-ndjson",
			body: []byte(ev1 + "\n" + bad + "\n"), wantStatus: 200, wantRecords: []string{"accepted", "rejected/" + schemas.ReasonMissingType}, wantData: []string{ev1, bad}},
		{name: "bad JSON as the one record is rejected invalid_json and published", contentType: "application/json", body: []byte(`{"event_id": "e-4",`),
			wantStatus: 200, wantRecords: []string{"rejected/" + schemas.ReasonInvalidJSON}, wantData: []string{`{"event_id": "e-4",`}},
		{name: "an array element that is not an object is rejected not_object", contentType: "application/json", body: []byte(`[` + ev1 + `, 42]`),
			wantStatus: 200, wantRecords: []string{"accepted", "rejected/" + schemas.ReasonNotObject}, wantData: []string{ev1, "42"}},
		{name: "non-UTF-8 bytes are rejected invalid_utf8 and published unchanged", contentType: "application/x-ndjson",
			body:       []byte(`{"event_id":"e-5","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"M` + "\xfc" + `nchen"}`),
			wantStatus: 200, wantRecords: []string{"rejected/" + schemas.ReasonInvalidUTF8},
			wantData: []string{`{"event_id":"e-5","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"M` + "\xfc" + `nchen"}`}},
		{name: "with publish_rejected off a rejected record is answered and not published", contentType: "application/x-ndjson",
			body: []byte(ev1 + "\n" + bad), mutate: func(c *Config) { c.PublishRejected = false },
			wantStatus: 200, wantRecords: []string{"accepted", "rejected/" + schemas.ReasonMissingType}, wantData: []string{ev1}},
		{name: "a record over 1 MiB is rejected too_large, as the jobs would", contentType: "application/x-ndjson", body: []byte(ev1 + "\n" + big),
			wantStatus: 200, wantRecords: []string{"accepted", "rejected/" + schemas.ReasonTooLarge}, wantData: []string{ev1, big}},
		{name: "a rejected record larger than a Pub/Sub message is published cut to what dead_letter keeps", contentType: "application/x-ndjson",
			body: []byte(ev1 + "\n" + huge), mutate: func(c *Config) { c.MaxBodyBytes = 12 << 20; c.MaxDecompressedBytes = 12 << 20 },
			wantStatus: 200, wantRecords: []string{"accepted", "rejected/" + schemas.ReasonTooLarge}, wantData: []string{ev1, huge[:MaxPublishedRejected]}},
		{name: "an array that does not parse is refused whole", contentType: "application/json", body: []byte(`[` + ev1 + `, {"event_id": ]`),
			wantStatus: 400, wantCode: codeBadArray},
		{name: "bytes after an array are refused", contentType: "application/json", body: []byte(`[` + ev1 + `] x`),
			wantStatus: 400, wantCode: codeBadArray},
		{name: "an empty body is refused", contentType: "application/json", body: nil, wantStatus: 400, wantCode: codeEmptyBody},
		{name: "an empty array is refused", contentType: "application/json", body: []byte(" [ ] "), wantStatus: 400, wantCode: codeEmptyBody},
		{name: "NDJSON of blank lines only is refused", contentType: "application/x-ndjson", body: []byte("\n \r\n"), wantStatus: 400, wantCode: codeEmptyBody},
		{name: "text/plain is an unsupported media type", contentType: "text/plain", body: []byte(ev1), wantStatus: 415, wantCode: codeUnsupportedType},
		{name: "no content type is an unsupported media type", body: []byte(ev1), wantStatus: 415, wantCode: codeUnsupportedType},
		{name: "a charset other than UTF-8 is an unsupported media type", contentType: "application/json; charset=latin1", body: []byte(ev1), wantStatus: 415, wantCode: codeUnsupportedType},
		{name: "a content encoding other than gzip is unsupported", contentType: "application/json", encoding: "br", body: []byte(ev1), wantStatus: 415, wantCode: codeUnsupportedEncoding},
		{name: "a body over max_body_bytes is refused from its length", contentType: "application/x-ndjson",
			body: []byte(strings.Repeat(ev1+"\n", 20)), mutate: func(c *Config) { c.MaxBodyBytes = 1024 }, wantStatus: 413, wantCode: codeBodyTooLarge},
		{name: "a chunked body over max_body_bytes is refused once read past it", contentType: "application/x-ndjson", chunked: true,
			body: []byte(strings.Repeat(ev1+"\n", 20)), mutate: func(c *Config) { c.MaxBodyBytes = 1024 }, wantStatus: 413, wantCode: codeBodyTooLarge},
		{name: "a gzip bomb is refused once it inflates past max_decompressed_bytes", contentType: "application/x-ndjson", encoding: "gzip", body: bomb,
			mutate: func(c *Config) { c.MaxBodyBytes = 1 << 20; c.MaxDecompressedBytes = 2 << 20 }, wantStatus: 413, wantCode: codeDecompressedTooLarge},
		{name: "a truncated gzip stream is refused", contentType: "application/x-ndjson", encoding: "gzip", body: whole[:len(whole)-10],
			wantStatus: 400, wantCode: codeBadGzip},
		{name: "a body that is not gzip under Content-Encoding gzip is refused", contentType: "application/x-ndjson", encoding: "gzip", body: []byte(ev1),
			wantStatus: 400, wantCode: codeBadGzip},
		{name: "more records than max_records is refused", contentType: "application/x-ndjson", body: []byte(strings.Repeat(ev1+"\n", 11)),
			mutate: func(c *Config) { c.MaxRecords = 10 }, wantStatus: 413, wantCode: codeTooManyRecords},
		{name: "an array of more than max_records is refused", contentType: "application/json", body: []byte("[" + strings.Repeat(ev1+",", 10) + ev1 + "]"),
			mutate: func(c *Config) { c.MaxRecords = 10 }, wantStatus: 413, wantCode: codeTooManyRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startEdge(t, tt.mutate)
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = unsized{body}
			}
			a := f.post(tt.contentType, tt.encoding, body, nil)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", a.status, tt.wantStatus, a.body)
			}
			if tt.wantCode != "" {
				if a.err.Error.Code != tt.wantCode || a.err.Error.Message == "" {
					t.Errorf("error %+v, want code %s with a message", a.err.Error, tt.wantCode)
				}
			} else {
				var got []string
				for i, r := range a.resp.Records {
					if r.Index != i {
						t.Errorf("record %d has index %d", i, r.Index)
					}
					s := r.Status
					if r.Reason != "" {
						s += "/" + r.Reason
					}
					got = append(got, s)
				}
				if !slices.Equal(got, tt.wantRecords) {
					t.Errorf("records %v, want %v", got, tt.wantRecords)
				}
				if a.resp.BlankLines != tt.wantBlank {
					t.Errorf("blank lines %d, want %d", a.resp.BlankLines, tt.wantBlank)
				}
			}
			msgs := f.published()
			if got := datas(msgs); !slices.Equal(got, tt.wantData) {
				t.Errorf("published %d messages %.200q, want %d %.200q", len(got), got, len(tt.wantData), tt.wantData)
			}
			for _, m := range msgs {
				checkAttributes(t, m.Attributes, string(m.Data))
				if cut := m.Attributes[AttrEdgeCut]; cut != "" && cut != fmt.Sprint(len(huge)) {
					t.Errorf("%s = %s, want the record's size %d", AttrEdgeCut, cut, len(huge))
				}
			}
		})
	}
}

// checkAttributes checks a published message's attributes against what
// the edge answered for its record.
func checkAttributes(t *testing.T, attrs map[string]string, data string) {
	t.Helper()
	if _, err := time.Parse(time.RFC3339Nano, attrs[AttrReceivedAt]); err != nil {
		t.Errorf("%s = %q: %v", AttrReceivedAt, attrs[AttrReceivedAt], err)
	}
	if _, ok := attrs[AttrClientIP]; ok {
		t.Errorf("%s set without --client_ip_attribute", AttrClientIP)
	}
	_, perr := schemas.ParseEvent([]byte(data))
	if perr != nil {
		if attrs[AttrEdgeReason] != schemas.ReasonOf(perr) {
			t.Errorf("rejected record %.60q: %s = %q, want %q", data, AttrEdgeReason, attrs[AttrEdgeReason], schemas.ReasonOf(perr))
		}
		if _, ok := attrs[AttrEventTime]; ok {
			t.Errorf("rejected record %.60q has %s", data, AttrEventTime)
		}
		return
	}
	if attrs[AttrEventTime] != "2026-11-01T10:00:00.123456Z" || attrs[AttrSource] != "web-shop" {
		t.Errorf("attributes %v: want %s 2026-11-01T10:00:00.123456Z and %s web-shop", attrs, AttrEventTime, AttrSource)
	}
	if _, ok := attrs[AttrEdgeReason]; ok {
		t.Errorf("valid record marked %s", AttrEdgeReason)
	}
}

func TestMethodsAndProbes(t *testing.T) {
	f := startEdge(t, nil)
	for _, tt := range []struct {
		name, method, path string
		want               int
		wantBody           string
	}{
		{"GET of the events path is not allowed", http.MethodGet, PathEvents, 405, codeMethod},
		{"healthz answers while the process runs", http.MethodGet, PathHealthz, 200, "ok"},
		{"readyz answers ready once the topic is reachable", http.MethodGet, PathReadyz, 200, "ready"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.url+tt.path, nil)
			a := f.do(req)
			if a.status != tt.want || !strings.Contains(string(a.body), tt.wantBody) {
				t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, a.status, a.body, tt.want, tt.wantBody)
			}
		})
	}
	t.Run("metrics count requests and records by outcome", func(t *testing.T) {
		f.post("application/x-ndjson", "", strings.NewReader(event("m-1")+"\n{}\n"), nil)
		req, _ := http.NewRequest(http.MethodGet, f.url+PathMetrics, nil)
		a := f.do(req)
		for _, want := range []string{
			MetricRequests + `{code="200"} 1`,
			MetricRecords + `{outcome="accepted",reason=""} 1`,
			MetricRecords + `{outcome="rejected",reason="missing_event_id"} 1`,
			MetricRequestSeconds + `_count{code="200"} 1`,
		} {
			if !strings.Contains(string(a.body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
}

// TestResponseJSON holds the hand-written encoding to encoding/json's.
func TestResponseJSON(t *testing.T) {
	r := Response{Accepted: 1, Rejected: 1, Failed: 1, RejectedPublished: true, BlankLines: 2, Records: []RecordStatus{
		{Index: 0, Status: statusAccepted},
		{Index: 1, Status: statusRejected, Reason: schemas.ReasonInvalidJSON, Message: "bad \"quote\" <tag> \u2028 \x01"},
		{Index: 2, Status: statusFailed, Reason: failTimeout, Message: failureMessage(failTimeout)},
	}}
	want, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.appendJSON(nil); string(got) != string(want)+"\n" {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
