package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testURI      = "gs://lake/raw/dt=2026-11-01/hr=10/part-0.jsonl.gz#L7"
	testFileTime = int64(1793530000000000)
)

func TestMarshalEnvelopeRoundTrip(t *testing.T) {
	pub := time.Date(2026, 11, 1, 10, 0, 1, 234567000, time.UTC).UnixMicro()
	for _, tc := range []struct {
		name string
		rec  Record
	}{
		{"restores a valid event with its attributes", Record{
			Data:        record(),
			Attributes:  map[string]string{"source_system": "web-shop", "content-type": "application/json"},
			MessageID:   "4242424242",
			PublishTime: pub,
		}},
		{"restores bytes that are not UTF-8", Record{
			Data:        []byte("{\"event_id\":\"\xff\xfe\x00\x80\"}\n\r"),
			MessageID:   "1",
			PublishTime: pub,
		}},
		{"restores a UTF-8 byte order mark", Record{
			Data:        append([]byte("\xef\xbb\xbf"), record()...),
			MessageID:   "2",
			PublishTime: pub,
		}},
		{"restores every byte value", Record{
			Data:        allBytes(),
			MessageID:   "3",
			PublishTime: pub,
		}},
		{"restores a message with empty data", Record{
			Data:        []byte{},
			Attributes:  map[string]string{"k": "v"},
			MessageID:   "4",
			PublishTime: pub,
		}},
		{"restores a newline inside the data without breaking the line", Record{
			Data:        []byte("{\n\"a\": 1\n}\n"),
			MessageID:   "5",
			PublishTime: pub,
		}},
		{"restores a publish time at epoch zero", Record{
			Data:      record(),
			MessageID: "6",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, err := MarshalEnvelope(tc.rec)
			if err != nil {
				t.Fatalf("MarshalEnvelope: %v", err)
			}
			if bytes.ContainsAny(line, "\n\r") {
				t.Errorf("envelope line contains a line break: %q", line)
			}
			if !utf8Line(line) {
				t.Errorf("envelope line is not valid UTF-8: %q", line)
			}
			got, err := ParseLakeLine(line, testURI, testFileTime)
			if err != nil {
				t.Fatalf("ParseLakeLine: %v", err)
			}
			want := tc.rec
			want.IngestTime = tc.rec.PublishTime
			want.SourceURI = testURI
			if !bytes.Equal(got.Data, want.Data) {
				t.Errorf("data = %q, want %q", got.Data, want.Data)
			}
			got.Data, want.Data = nil, nil
			if len(want.Attributes) == 0 {
				want.Attributes = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseLakeLine:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func utf8Line(b []byte) bool {
	return json.Valid(b) && strings.ToValidUTF8(string(b), "\uFFFD") == string(b)
}

func TestMarshalEnvelopeFormat(t *testing.T) {
	data := []byte("\xff{}")
	line, err := MarshalEnvelope(Record{
		Data:        data,
		Attributes:  map[string]string{"source_system": "iot-gateway"},
		MessageID:   "77",
		PublishTime: time.Date(2026, 11, 2, 3, 4, 5, 6000, time.UTC).UnixMicro(),
	})
	if err != nil {
		t.Fatalf("MarshalEnvelope: %v", err)
	}
	t.Run("starts with the envelope version", func(t *testing.T) {
		if want := `{"envelope":"` + EnvelopeVersion + `",`; !bytes.HasPrefix(line, []byte(want)) {
			t.Errorf("line %s does not start with %s", line, want)
		}
	})
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatalf("envelope is not JSON: %v", err)
	}
	t.Run("writes the data as padded standard base64", func(t *testing.T) {
		if got, want := fields["data"], base64.StdEncoding.EncodeToString(data); got != want {
			t.Errorf("data = %v, want %q", got, want)
		}
	})
	t.Run("writes the publish time as RFC 3339 in UTC with microseconds", func(t *testing.T) {
		if got, want := fields["publish_time"], "2026-11-02T03:04:05.000006Z"; got != want {
			t.Errorf("publish_time = %v, want %q", got, want)
		}
	})
	t.Run("writes the message id and attributes", func(t *testing.T) {
		if fields["message_id"] != "77" {
			t.Errorf("message_id = %v, want 77", fields["message_id"])
		}
		if got, ok := fields["attributes"].(map[string]any); !ok || got["source_system"] != "iot-gateway" {
			t.Errorf("attributes = %v", fields["attributes"])
		}
	})
	t.Run("omits empty attributes", func(t *testing.T) {
		line, err := MarshalEnvelope(Record{Data: []byte("{}"), MessageID: "1"})
		if err != nil {
			t.Fatalf("MarshalEnvelope: %v", err)
		}
		if bytes.Contains(line, []byte(`"attributes"`)) {
			t.Errorf("line %s has attributes", line)
		}
	})
	t.Run("fails on a publish time beyond year 9999", func(t *testing.T) {
		_, err := MarshalEnvelope(Record{Data: []byte("{}"), MessageID: "1", PublishTime: 1 << 62})
		if err == nil {
			t.Errorf("MarshalEnvelope accepted a publish time it cannot write")
		}
	})
}

func TestParseLakeLineBareEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		line []byte
	}{
		{"reads an event line as a bare event", record()},
		{"reads a bare event with an envelope member of its own", record("envelope", `"crm-export/2"`)},
		{"reads a bare event that mentions an envelope in its properties", record("properties", `{"envelope":"railyard/raw/v1"}`)},
		{"reads a bare event whose envelope member is not a string", record("envelope", `{"v":1}`)},
		{"passes a broken line on as a bare event", []byte(`{"event_id":`)},
		{"passes an array on as a bare event", []byte(`[{"envelope":"railyard/raw/v1"}]`)},
		{"passes bytes that are not UTF-8 on as a bare event", []byte("{\"a\":\"\xff\"}")},
		{"passes an empty line on as a bare event", []byte{}},
		{"passes a truncated envelope on as a bare line", []byte(`{"envelope":"railyard/raw/v1","message_id":"1","publish_ti`)},
		{"passes an envelope with garbage after it on as a bare line", []byte(`{"envelope":"railyard/raw/v1","message_id":"1","publish_time":"2026-11-01T00:00:00Z","data":"e30="} x`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLakeLine(tc.line, testURI, testFileTime)
			if err != nil {
				t.Fatalf("ParseLakeLine: %v", err)
			}
			want := Record{Data: tc.line, SourceURI: testURI, IngestTime: testFileTime}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseLakeLine:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseLakeLineThenParseEvent(t *testing.T) {
	envelope := func(data []byte) []byte {
		line, err := MarshalEnvelope(Record{Data: data, MessageID: "9", PublishTime: 1})
		if err != nil {
			t.Fatalf("MarshalEnvelope: %v", err)
		}
		return line
	}
	for _, tc := range []struct {
		name   string
		line   []byte
		reason string // "" for a valid event
	}{
		{"decodes an event from a bare line", record(), ""},
		{"decodes an event from an envelope", envelope(record()), ""},
		{"keeps the envelope member of a bare event in extra", record("envelope", `"x"`), ""},
		{"rejects non-UTF-8 data restored from an envelope", envelope([]byte("{\"event_id\":\"\xff\"}")), ReasonInvalidUTF8},
		{"rejects a byte order mark restored from an envelope", envelope(append([]byte("\xef\xbb\xbf"), record()...)), ReasonInvalidJSON},
		{"rejects empty data restored from an envelope", envelope(nil), ReasonEmpty},
		{"rejects a truncated envelope as invalid JSON", []byte(`{"envelope":"railyard/raw/v1","message_id":"1","publish_ti`), ReasonInvalidJSON},
		{"rejects an envelope inside an envelope as a record without event_id", envelope(envelope(record())), ReasonMissingEventID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := ParseLakeLine(tc.line, testURI, testFileTime)
			if err != nil {
				t.Fatalf("ParseLakeLine: %v", err)
			}
			_, err = ParseEvent(rec.Data)
			if got := ReasonOf(err); got != tc.reason {
				t.Errorf("reason = %q, want %q (error: %v)", got, tc.reason, err)
			}
		})
	}
}

type lakeLineRejectCase struct {
	name    string
	line    string
	reason  string
	errPart string
}

func lakeLineRejectCases() []lakeLineRejectCase {
	const pub = `"publish_time":"2026-11-01T10:00:00Z"`
	return []lakeLineRejectCase{
		{"rejects an unknown envelope version", `{"envelope":"railyard/raw/v2","message_id":"1",` + pub + `,"data":"e30="}`, ReasonBadEnvelope, `unknown envelope version "railyard/raw/v2"`},
		{"rejects an envelope version that is only the prefix", `{"envelope":"railyard/raw/","message_id":"1",` + pub + `,"data":"e30="}`, ReasonBadEnvelope, "unknown envelope version"},
		{"rejects an envelope without message_id", `{"envelope":"railyard/raw/v1",` + pub + `,"data":"e30="}`, ReasonBadEnvelope, "lacks message_id or publish_time"},
		{"rejects an envelope with an empty message_id", `{"envelope":"railyard/raw/v1","message_id":"",` + pub + `,"data":"e30="}`, ReasonBadEnvelope, "lacks message_id"},
		{"rejects an envelope without publish_time", `{"envelope":"railyard/raw/v1","message_id":"1","data":"e30="}`, ReasonBadEnvelope, "publish_time"},
		{"rejects an envelope with an unparseable publish_time", `{"envelope":"railyard/raw/v1","message_id":"1","publish_time":"yesterday","data":"e30="}`, ReasonBadEnvelope, `cannot parse "yesterday"`},
		{"rejects an envelope whose data is not base64", `{"envelope":"railyard/raw/v1","message_id":"1",` + pub + `,"data":"{not base64}"}`, ReasonBadEnvelope, "illegal base64 data"},
		{"rejects an envelope whose data is a JSON object", `{"envelope":"railyard/raw/v1","message_id":"1",` + pub + `,"data":{"event_id":"e"}}`, ReasonBadEnvelope, "cannot unmarshal object"},
		{"rejects an envelope with a numeric message_id", `{"envelope":"railyard/raw/v1","message_id":1,` + pub + `,"data":"e30="}`, ReasonBadEnvelope, "cannot unmarshal number"},
		{"rejects an envelope whose attributes are not strings", `{"envelope":"railyard/raw/v1","message_id":"1",` + pub + `,"attributes":{"n":1},"data":"e30="}`, ReasonBadEnvelope, "cannot unmarshal number"},
	}
}

func TestParseLakeLineRejects(t *testing.T) {
	for _, tc := range lakeLineRejectCases() {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := ParseLakeLine([]byte(tc.line), testURI, testFileTime)
			var ce *ContractError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ContractError", err, err)
			}
			if ce.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (error: %v)", ce.Reason, tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("error %q does not contain %q", err, tc.errPart)
			}
			want := Record{Data: []byte(tc.line), SourceURI: testURI, IngestTime: testFileTime}
			if !reflect.DeepEqual(rec, want) {
				t.Errorf("record of a bad envelope:\n got %+v\nwant %+v (the line itself, for the dead letter)", rec, want)
			}
		})
	}
}
