package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// maxSeedBytes keeps large records (the 1 MiB ones) out of the corpus:
// the engine mutates every seed, and a large one slows every execution.
const maxSeedBytes = 8 << 10

// maxErrorBytes bounds a ContractError's text. It is stored with every
// dead letter, so it must not grow with the record.
const maxErrorBytes = 1 << 10

// FuzzParseEvent checks ParseEvent on any bytes: it never panics; a reject
// is a *ContractError with a parser reason code and a short message; an
// accepted event satisfies the canonical-form invariants of the contract;
// and the canonical event, written as JSON and parsed again, is the same
// event.
//
// Seeds are the contract test tables and the committed sample records
// (testdata/bad and testdata/sample/messages.jsonl, when present). Run
// with: go test -run=^$ -fuzz=FuzzParseEvent -fuzztime=60s ./schemas
func FuzzParseEvent(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvent(data)
		if err != nil {
			checkReject(t, err)
			return
		}
		checkCanonical(t, ev)

		again, err := ParseEvent(data)
		if err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("ParseEvent is not deterministic: %s then %s (%v)", showEvent(ev), showEvent(again), err)
		}

		encoded := encodeCanonical(t, ev)
		if len(encoded) > MaxRecordBytes {
			// Escaping can make the re-encoding of a record just under the
			// limit larger than the limit; the round trip does not apply.
			return
		}
		reparsed, err := ParseEvent(encoded)
		if err != nil {
			t.Fatalf("canonical event %s, encoded as %s, is rejected: %v", showEvent(ev), encoded, err)
		}
		if !reflect.DeepEqual(reparsed, ev) {
			t.Fatalf("canonical event does not survive a round trip:\nfirst  %s\nencoded %s\nsecond %s", showEvent(ev), encoded, showEvent(reparsed))
		}
	})
}

func checkReject(t *testing.T, err error) {
	t.Helper()
	var ce *ContractError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ContractError", err, err)
	}
	known := false
	for _, r := range parserReasons {
		known = known || (r == ce.Reason && r != ReasonBadEnvelope)
	}
	if !known {
		t.Fatalf("reason %q is not a ParseEvent reason code", ce.Reason)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, ce.Reason+": ") || len(msg) > maxErrorBytes || !utf8.ValidString(msg) {
		t.Fatalf("error message is malformed, too long or not UTF-8 (%d bytes): %.200q", len(msg), msg)
	}
}

func checkCanonical(t *testing.T, ev Event) {
	t.Helper()
	checkTrimmed := func(name, s string, maxChars int) {
		n := utf8.RuneCountInString(s)
		if s != strings.TrimSpace(s) || n < 1 || n > maxChars || !utf8.ValidString(s) {
			t.Fatalf("%s %q is not trimmed, 1-%d characters of valid UTF-8", name, s, maxChars)
		}
	}
	checkTrimmed("event_id", ev.EventID, maxEventIDChars)
	if !eventTypePattern.MatchString(ev.EventType) {
		t.Fatalf("event_type %q does not match %s", ev.EventType, eventTypePattern)
	}
	if y := time.UnixMicro(ev.EventTime).UTC().Year(); y < minEventYear || y > maxEventYear {
		t.Fatalf("event_time %d is in year %d", ev.EventTime, y)
	}
	checkTrimmed("source", ev.Source, maxSourceChars)
	if ev.Platform != nil && !knownPlatforms[*ev.Platform] && *ev.Platform != PlatformOther {
		t.Fatalf("platform %q is neither known nor %q", *ev.Platform, PlatformOther)
	}
	if ev.UserID != nil {
		checkTrimmed("user_id", *ev.UserID, maxUserChars)
	}
	if ev.SessionID != nil {
		checkTrimmed("session_id", *ev.SessionID, maxUserChars)
	}
	if c := ev.Country; c != nil && (len(*c) != 2 || (*c)[0] < 'A' || (*c)[0] > 'Z' || (*c)[1] < 'A' || (*c)[1] > 'Z') {
		t.Fatalf("country %q is not two uppercase letters", *c)
	}
	if ev.Value != nil && (math.IsNaN(*ev.Value) || math.IsInf(*ev.Value, 0)) {
		t.Fatalf("value %v is not finite", *ev.Value)
	}
	if ev.Properties != nil && !isJSONObject(*ev.Properties) {
		t.Fatalf("properties %q is not a JSON object", *ev.Properties)
	}
	if ev.Extra != nil {
		if !isJSONObject(*ev.Extra) || *ev.Extra == "{}" {
			t.Fatalf("extra %q is not a non-empty JSON object", *ev.Extra)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal([]byte(*ev.Extra), &members); err != nil {
			t.Fatalf("extra %q: %v", *ev.Extra, err)
		}
		for name := range members {
			if isContractField(name) {
				t.Fatalf("extra %q holds the contract field %q", *ev.Extra, name)
			}
		}
	}
	if ev.IngestTime != 0 || ev.Layer != "" || ev.MessageID != nil || ev.SourceURI != nil {
		t.Fatalf("ParseEvent set ingest fields: %s", showEvent(ev))
	}
}

// isJSONObject reports whether s is exactly one valid JSON object.
func isJSONObject(s string) bool {
	return json.Valid([]byte(s)) && strings.HasPrefix(s, "{")
}

// encodeCanonical writes ev as a record: the contract fields in canonical
// form (event_time as RFC 3339 in UTC) and the members of extra at the
// top level.
func encodeCanonical(t *testing.T, ev Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	n := 0
	member := func(name string, v any) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		if err := enc.Encode(name); err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		b.Truncate(b.Len() - 1) // Encode ends with a newline
		b.WriteByte(':')
		if raw, ok := v.(json.RawMessage); ok {
			b.Write(raw)
			return
		}
		if err := enc.Encode(v); err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('{')
	member(contractFieldEventID, ev.EventID)
	member(contractFieldType, ev.EventType)
	member(contractFieldTime, time.UnixMicro(ev.EventTime).UTC().Format(time.RFC3339Nano))
	member(contractFieldSource, ev.Source)
	optional := []struct {
		name string
		v    *string
	}{{contractFieldPlatform, ev.Platform}, {contractFieldUser, ev.UserID}, {contractFieldSession, ev.SessionID}, {contractFieldCountry, ev.Country}}
	for _, o := range optional {
		if o.v != nil {
			member(o.name, *o.v)
		}
	}
	if ev.Value != nil {
		member(contractFieldValue, *ev.Value)
	}
	if ev.Properties != nil {
		member(contractFieldProps, json.RawMessage(*ev.Properties))
	}
	if ev.Extra != nil {
		inner := strings.TrimSuffix(strings.TrimPrefix(*ev.Extra, "{"), "}")
		b.WriteByte(',')
		b.WriteString(inner)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// fuzzSeeds returns the records of the contract tables and of the
// committed sample data, each at most maxSeedBytes.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	add := func(b []byte) {
		if len(b) <= maxSeedBytes {
			seeds = append(seeds, b)
		}
	}
	for _, tc := range rejectCases() {
		add(tc.data)
	}
	for _, tc := range acceptCases() {
		add(tc.data)
	}
	bad, err := filepath.Glob(filepath.Join("..", "testdata", "bad", "*.json"))
	if err != nil {
		f.Fatalf("glob testdata/bad: %v", err)
	}
	for _, name := range bad {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatalf("read seed: %v", err)
		}
		add(b)
	}
	// Every line of the sample would make a slow corpus; every 10th
	// message covers its sources, formats and bad classes well enough.
	file, err := os.Open(filepath.Join("..", "testdata", "sample", "messages.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return seeds
	} else if err != nil {
		f.Fatalf("open sample messages: %v", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 4*MaxRecordBytes)
	for i := 0; sc.Scan(); i++ {
		if i%10 != 0 {
			continue
		}
		rec, err := ParseLakeLine(sc.Bytes(), "messages.jsonl", 0)
		if err != nil {
			f.Fatalf("sample message %d: %v", i+1, err)
		}
		add(bytes.Clone(rec.Data))
	}
	if err := sc.Err(); err != nil {
		f.Fatalf("read sample messages: %v", err)
	}
	return seeds
}

// FuzzParseLakeLine checks ParseLakeLine on any line (no panic; a reject
// is bad_envelope and keeps the line) and that every archived message
// comes back from its envelope exactly as received.
func FuzzParseLakeLine(f *testing.F) {
	f.Add([]byte(`{"envelope":"railyard/raw/v1","message_id":"1","publish_time":"2026-11-01T10:00:00Z","data":"e30="}`), "m-1", int64(1793527200000000), "source_system", "web-shop")
	f.Add([]byte("{\"a\":\"\xff\"}"), "2", int64(0), "", "")
	f.Add([]byte(`{"envelope":"railyard/raw/v9"}`), "3", int64(1), "k", "v")
	f.Fuzz(func(t *testing.T, data []byte, messageID string, publish int64, key, val string) {
		rec, err := ParseLakeLine(data, "u", 5)
		if err != nil {
			if ReasonOf(err) != ReasonBadEnvelope {
				t.Fatalf("ParseLakeLine: %v is not a bad_envelope reject", err)
			}
			if !bytes.Equal(rec.Data, data) || rec.SourceURI != "u" || rec.IngestTime != 5 {
				t.Fatalf("a bad envelope does not keep its line: %+v", rec)
			}
		}

		// Pub/Sub message ids and attributes are UTF-8 strings, publish
		// times are after the epoch, and a message has an id.
		if messageID == "" || !utf8.ValidString(messageID) || !utf8.ValidString(key) || !utf8.ValidString(val) || publish < 0 || publish > 1<<53 {
			return
		}
		in := Record{Data: data, MessageID: messageID, PublishTime: publish}
		if key != "" {
			in.Attributes = map[string]string{key: val}
		}
		line, err := MarshalEnvelope(in)
		if err != nil {
			t.Fatalf("MarshalEnvelope: %v", err)
		}
		out, err := ParseLakeLine(line, "u", 5)
		if err != nil {
			t.Fatalf("ParseLakeLine of %s: %v", line, err)
		}
		if !bytes.Equal(out.Data, in.Data) || out.MessageID != in.MessageID || out.PublishTime != in.PublishTime ||
			out.IngestTime != in.PublishTime || !reflect.DeepEqual(out.Attributes, in.Attributes) {
			t.Fatalf("envelope round trip:\n in %+v\nout %+v", in, out)
		}
	})
}
