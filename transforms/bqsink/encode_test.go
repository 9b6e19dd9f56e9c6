package bqsink

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/railyard/railyard/schemas"
)

func ptr[T any](v T) *T { return &v }

// micros is t in microseconds since the epoch.
func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

var sampleEvent = schemas.Event{
	EventID:    "e-1",
	EventType:  "page.view",
	EventTime:  micros("2024-03-01T10:20:30.123456Z"),
	Source:     "web-shop",
	Platform:   ptr("web"),
	UserID:     ptr("u-1"),
	Country:    ptr("DE"),
	Value:      ptr(2.5),
	Properties: ptr(`{"path":"/a","n":[1,2]}`),
	IngestTime: micros("2024-03-01T10:20:31Z"),
	Layer:      schemas.LayerBatch,
	SourceURI:  ptr("gs://lake/raw/dt=2024-03-01/hr=10/a.jsonl.gz#L7"),
}

// decodeAsServer reads a row the way the Storage Write API does: from the
// DescriptorProto sent with the rows, not from the encoder's own types.
func decodeAsServer(t *testing.T, desc *descriptorpb.DescriptorProto, data []byte) *dynamicpb.Message {
	t.Helper()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("row.proto"),
		MessageType: []*descriptorpb.DescriptorProto{desc},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(desc.GetName())))
	if err := proto.Unmarshal(data, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEncoderCoversEveryTable(t *testing.T) {
	for _, table := range schemas.Tables {
		t.Run(table.Name, func(t *testing.T) {
			enc, err := EncoderFor(table.Row)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, c := range table.Schema() {
				want = append(want, c.Name)
			}
			if diff := cmp.Diff(want, enc.Columns()); diff != "" {
				t.Errorf("columns differ from the table schema (-schema +encoder):\n%s", diff)
			}
			if n := len(enc.Descriptor().GetField()); n != len(want) {
				t.Errorf("descriptor has %d fields, want %d", n, len(want))
			}
			again, _ := EncoderFor(table.Row)
			if again != enc {
				t.Error("EncoderFor built a second encoder for the same type")
			}
		})
	}
}

func TestEncodeEvent(t *testing.T) {
	enc, err := EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		t.Fatal(err)
	}
	data, err := enc.Encode(sampleEvent)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeAsServer(t, enc.Descriptor(), data)
	get := func(name string) protoreflect.Value {
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
	}
	has := func(name string) bool { return m.Has(m.Descriptor().Fields().ByName(protoreflect.Name(name))) }

	t.Run("timestamps are int64 microseconds", func(t *testing.T) {
		if got := get("event_time").Int(); got != sampleEvent.EventTime {
			t.Errorf("event_time = %d, want %d", got, sampleEvent.EventTime)
		}
	})
	t.Run("JSON columns are the document as a string", func(t *testing.T) {
		if got := get("properties").String(); got != *sampleEvent.Properties {
			t.Errorf("properties = %q", got)
		}
	})
	t.Run("nil pointers are NULL, set ones are values", func(t *testing.T) {
		for _, col := range []string{"session_id", "extra", "message_id"} {
			if has(col) {
				t.Errorf("%s is set, want NULL", col)
			}
		}
		if got := get("value").Float(); got != 2.5 {
			t.Errorf("value = %v", got)
		}
		if got := get("platform").String(); got != "web" {
			t.Errorf("platform = %q", got)
		}
	})
	t.Run("a pointer to a row encodes like the row", func(t *testing.T) {
		again, err := enc.Encode(&sampleEvent)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := enc.DecodeJSON(again)
		want, _ := enc.DecodeJSON(data)
		if string(got) != string(want) {
			t.Errorf("Encode(&row) decodes to %s, want %s", got, want)
		}
	})
	t.Run("a row of another type is refused", func(t *testing.T) {
		if _, err := enc.Encode(schemas.Session{}); err == nil || !strings.Contains(err.Error(), "schemas.Session") {
			t.Errorf("Encode(Session) error = %v", err)
		}
	})
}

func TestEncodeRepeatedAndEmbedded(t *testing.T) {
	t.Run("repeated strings keep their order", func(t *testing.T) {
		enc, err := EncoderFor(reflect.TypeFor[schemas.Session]())
		if err != nil {
			t.Fatal(err)
		}
		data, err := enc.Encode(schemas.Session{UserID: "u", Sources: []string{"b", "a"}, DurationSeconds: 1.5})
		if err != nil {
			t.Fatal(err)
		}
		m := decodeAsServer(t, enc.Descriptor(), data)
		list := m.Get(m.Descriptor().Fields().ByName("sources")).List()
		if list.Len() != 2 || list.Get(0).String() != "b" || list.Get(1).String() != "a" {
			t.Errorf("sources = %v", list)
		}
	})
	t.Run("embedded structs add their columns in place", func(t *testing.T) {
		enc, err := EncoderFor(reflect.TypeFor[schemas.MetricMinuteSpeed]())
		if err != nil {
			t.Fatal(err)
		}
		row := schemas.MetricMinuteSpeed{
			MetricMinute: schemas.MetricMinute{WindowStart: 60_000_000, EventType: "click", Events: 3},
			Pane:         schemas.Pane{PaneIndex: 2, PaneTiming: "LATE", ProcessedAt: 120_000_000},
		}
		data, err := enc.Encode(row)
		if err != nil {
			t.Fatal(err)
		}
		m := decodeAsServer(t, enc.Descriptor(), data)
		f := m.Descriptor().Fields()
		if m.Get(f.ByName("events")).Int() != 3 || m.Get(f.ByName("pane_index")).Int() != 2 || m.Get(f.ByName("pane_timing")).String() != "LATE" {
			t.Errorf("decoded %v", m)
		}
	})
}

func TestEncodeRejectsWhatBigQueryWould(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*schemas.Event)
		wantErr string
	}{
		{"JSON column that does not parse", func(e *schemas.Event) { e.Properties = ptr(`{"a":`) }, "column properties: not a valid JSON document"},
		{"string that is not UTF-8", func(e *schemas.Event) { e.Source = "web\xff" }, "column source: not valid UTF-8"},
		{"timestamp after year 9999", func(e *schemas.Event) { e.IngestTime = maxTimestampMicros + 1 }, "column ingest_time: 253402300800000000 µs is outside"},
		{"timestamp before year 1", func(e *schemas.Event) { e.EventTime = minTimestampMicros - 1 }, "column event_time: -62135596800000001 µs is outside"},
	}
	enc, err := EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := sampleEvent
			tt.change(&row)
			_, err := enc.Encode(row)
			var rerr *RowError
			if !errorsAs(err, &rerr) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Encode error = %v, want a *RowError containing %q", err, tt.wantErr)
			}
			if _, err := enc.JSON(row); err != nil {
				t.Errorf("JSON of the rejected row: %v", err)
			}
		})
	}
}

func TestRowJSON(t *testing.T) {
	enc, err := EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"e-1","event_type":"page.view","event_time":"2024-03-01T10:20:30.123456Z","source":"web-shop",` +
		`"platform":"web","user_id":"u-1","session_id":null,"country":"DE","value":2.5,"properties":"{\"path\":\"/a\",\"n\":[1,2]}",` +
		`"extra":null,"ingest_time":"2024-03-01T10:20:31Z","layer":"batch","message_id":null,` +
		`"source_uri":"gs://lake/raw/dt=2024-03-01/hr=10/a.jsonl.gz#L7"}`
	t.Run("of a Go row", func(t *testing.T) {
		got, err := enc.JSON(sampleEvent)
		if err != nil || string(got) != want {
			t.Errorf("JSON = %s, %v\nwant %s", got, err, want)
		}
	})
	t.Run("of an encoded row", func(t *testing.T) {
		data, _ := enc.Encode(sampleEvent)
		got, err := enc.DecodeJSON(data)
		if err != nil || string(got) != want {
			t.Errorf("DecodeJSON = %s, %v\nwant %s", got, err, want)
		}
		if !json.Valid(got) {
			t.Error("not valid JSON")
		}
		if s := enc.DecodeString(data, "source_uri"); s == nil || *s != *sampleEvent.SourceURI {
			t.Errorf("DecodeString(source_uri) = %v", s)
		}
		if s := enc.DecodeString(data, "message_id"); s != nil {
			t.Errorf("DecodeString(message_id) = %q, want nil", *s)
		}
	})
}
