package bqsink

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/railyard/railyard/schemas"
)

// rowTypes are the row types the sink encodes: every table's, and the
// staging row of the dead-letter replace.
func rowTypes() []reflect.Type {
	types := []reflect.Type{reflect.TypeFor[deadLetterStage]()}
	for _, t := range schemas.Tables {
		types = append(types, t.Row)
	}
	return types
}

// randomRow fills a row of encoder e's type with random values that
// BigQuery takes: NULLs, empty and multi-byte strings, JSON documents,
// timestamps across the range, negative numbers, special floats, lists of
// 0 to 3 elements.
func randomRow(e *Encoder, r *rand.Rand) reflect.Value {
	v := reflect.New(e.rowType).Elem()
	strs := []string{"", "a", "page.view", "Grüße, 世界 🚂", "x\x00y", "\u2028"}
	jsons := []string{"{}", `{"a":[1,2,{"b":null}]}`, `"s"`, "3.5", "null", `{"ü":"🚂"}`}
	floats := []float64{0, math.Copysign(0, -1), 1.5, -2.25e300, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64}
	value := func(c *column, t reflect.Type) reflect.Value {
		x := reflect.New(t).Elem()
		switch c.typ {
		case "STRING":
			x.SetString(strs[r.IntN(len(strs))])
		case "JSON":
			x.SetString(jsons[r.IntN(len(jsons))])
		case "TIMESTAMP":
			x.SetInt(minTimestampMicros + r.Int64N(maxTimestampMicros-minTimestampMicros+1))
		case "INT64":
			x.SetInt(r.Int64() - math.MaxInt64/2)
		case "FLOAT64":
			x.SetFloat(floats[r.IntN(len(floats))])
		case "BOOL":
			x.SetBool(r.IntN(2) == 1)
		case "BYTES":
			b := make([]byte, r.IntN(300))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			x.SetBytes(b)
		}
		return x
	}
	for i := range e.cols {
		c := &e.cols[i]
		f := v.FieldByIndex(c.index)
		switch {
		case c.repeated:
			n := r.IntN(4)
			list := reflect.MakeSlice(f.Type(), n, n)
			for j := range n {
				list.Index(j).Set(value(c, f.Type().Elem()))
			}
			f.Set(list)
		case f.Kind() == reflect.Pointer:
			if r.IntN(3) > 0 {
				p := reflect.New(f.Type().Elem())
				p.Elem().Set(value(c, f.Type().Elem()))
				f.Set(p)
			}
		case f.Kind() == reflect.Slice: // BYTES: nil is NULL
			if r.IntN(3) > 0 {
				f.Set(value(c, f.Type()))
			}
		default:
			f.Set(value(c, f.Type()))
		}
	}
	return v
}

// TestEncodeIsProtoMarshal holds Encode, which writes the wire format
// itself, to the bytes proto.Marshal gives (deterministic: fields in
// number order) for the same row as a dynamic message, on random rows of
// every row type.
func TestEncodeIsProtoMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, rt := range rowTypes() {
		t.Run(rt.Name(), func(t *testing.T) {
			e, err := EncoderFor(rt)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				row := randomRow(e, r).Interface()
				got, err := e.Encode(row)
				if err != nil {
					t.Fatalf("row %d: %v\n%+v", i, err, row)
				}
				m, err := e.message(row)
				if err != nil {
					t.Fatal(err)
				}
				want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("row %d: Encode gives\n%x\nproto.Marshal gives\n%x\nfor %+v", i, got, want, row)
				}
			}
		})
	}
}

func TestEncodeRefusesWhatBigQueryRejects(t *testing.T) {
	e, err := EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		t.Fatal(err)
	}
	bad := "{not json"
	notUTF8 := "a\xffb"
	tests := []struct {
		name, column string
		mutate       func(*schemas.Event)
	}{
		{"a string that is not UTF-8", "user_id", func(ev *schemas.Event) { ev.UserID = &notUTF8 }},
		{"a JSON column that does not parse", "properties", func(ev *schemas.Event) { ev.Properties = &bad }},
		{"a JSON column that is not UTF-8", "extra", func(ev *schemas.Event) { ev.Extra = &notUTF8 }},
		{"a timestamp before year 1", "event_time", func(ev *schemas.Event) { ev.EventTime = minTimestampMicros - 1 }},
		{"a timestamp after year 9999", "ingest_time", func(ev *schemas.Event) { ev.IngestTime = maxTimestampMicros + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := fullEvent("e", "2024-05-01T00:00:00Z")
			tt.mutate(&ev)
			_, err := e.Encode(ev)
			var rowErr *RowError
			if !errors.As(err, &rowErr) || rowErr.Column != tt.column {
				t.Errorf("Encode = %v, want a RowError on column %s", err, tt.column)
			}
		})
	}
	t.Run("the bounds of the timestamp range are taken", func(t *testing.T) {
		for _, us := range []int64{minTimestampMicros, maxTimestampMicros} {
			ev := fullEvent("e", "2024-05-01T00:00:00Z")
			ev.EventTime = us
			if _, err := e.Encode(ev); err != nil {
				t.Errorf("Encode at %d µs: %v", us, err)
			}
		}
	})
}

// BenchmarkEncode compares Encode with building the dynamic message and
// proto.Marshal, its former implementation, on the rows of the streaming
// job's tables.
func BenchmarkEncode(b *testing.B) {
	ev := fullEvent("e", "2024-05-01T00:00:00Z")
	ev.Layer, ev.SourceURI = schemas.LayerSpeed, nil
	rows := map[string]any{"events_speed": ev}
	for name, row := range rows {
		e, err := EncoderFor(reflect.TypeOf(row))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/direct", name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Encode(row); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/dynamicpb", name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := e.message(row)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := proto.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
