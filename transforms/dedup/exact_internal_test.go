package dedup

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/railyard/railyard/schemas"
)

// TestEarliestIngestFnMerge checks the combiner outside a runner: however
// the records are split into accumulators, encoded and merged, the winner
// and the count are the same. Prism merges few accumulators on small
// inputs, so the pipeline tests alone would not cover MergeAccumulators.
func TestEarliestIngestFnMerge(t *testing.T) {
	msg := func(s string) *string { return &s }
	records := []schemas.Event{
		{EventID: "a", IngestTime: 30, MessageID: msg("m3")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m2")},
		{EventID: "a", IngestTime: 10, MessageID: msg("m1")},
		{EventID: "a", IngestTime: 10, MessageID: nil, SourceURI: msg("gs://lake/f#L9")},
		{EventID: "a", IngestTime: 20},
	}
	want := records[3] // the earliest ingest time, and a NULL message id first
	fn := &earliestIngestFn{}
	rng := rand.New(rand.NewPCG(1, 2))

	t.Run("picks the same winner for any split and merge order", func(t *testing.T) {
		for range 200 {
			shuffled := append([]schemas.Event(nil), records...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			accs := []*recordBatch{fn.CreateAccumulator(), fn.CreateAccumulator(), fn.CreateAccumulator()}
			for _, r := range shuffled {
				i := rng.IntN(len(accs))
				accs[i] = fn.AddInput(accs[i], r)
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			for i, acc := range accs { // as the shuffle does
				decoded, err := decodeRecordBatch(encodeRecordBatch(acc))
				if err != nil {
					t.Fatalf("decode accumulator: %v", err)
				}
				accs[i] = decoded
			}
			got, err := fn.ExtractOutput(fn.MergeAccumulators(fn.MergeAccumulators(accs[0], accs[1]), accs[2]))
			if err != nil {
				t.Fatalf("ExtractOutput: %v", err)
			}
			if got.Seen != int64(len(records)) {
				t.Fatalf("Seen = %d, want %d", got.Seen, len(records))
			}
			if len(got.Winners) != 1 || compareRecords(got.Winners[0], want) != 0 {
				t.Fatalf("winners = %+v, want [%+v]", got.Winners, want)
			}
		}
	})
}

// TestRecordBatchRoundTrip checks that a record comes out of a batch, and
// of its encoding, exactly as it went in.
func TestRecordBatchRoundTrip(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(f float64) *float64 { return &f }
	records := []schemas.Event{
		{EventID: "a", EventType: "page.view", EventTime: 1_772_366_400_000_000, Source: "web-shop", IngestTime: 1_772_366_400_000_123, Layer: schemas.LayerBatch},
		{
			EventID: "b", EventType: "purchase", EventTime: -5, Source: "ios-app", Platform: str("ios"), UserID: str("u-1"),
			SessionID: str("s-1"), Country: str("FR"), Value: num(-0.5), Properties: str(`{"sku":"x"}`), Extra: str(`{"y":1}`),
			IngestTime: 7, Layer: schemas.LayerSpeed, MessageID: str("18000000000000003"), SourceURI: str("gs://lake/raw/f.jsonl.gz#L12"),
		},
		{EventID: "c", EventType: "page.view", Source: "web-shop", Platform: str(""), UserID: str(""), Value: num(0), SourceURI: str("gs://lake/raw/f.jsonl.gz#L007")},
		{EventID: "d", EventType: "page.view", Source: "web-shop", SourceURI: str("gs://lake/raw/f.jsonl.gz#L")},
		{EventID: "e", EventType: "page.view", Source: "web-shop", SourceURI: str("no line")},
		{EventID: "f", EventType: "page.view", Source: "web-shop", SourceURI: str("gs://lake/raw/f.jsonl.gz#L1")},
		{EventID: "", EventType: "", Source: "", Value: num(1e308), Properties: str("")},
	}
	for name, split := range map[string]int{"in one chunk": len(records), "in two chunks": 3} {
		t.Run("gives back every field "+name, func(t *testing.T) {
			first, second := &recordBatch{}, &recordBatch{}
			for i, ev := range records {
				if i < split {
					first.add(ev)
				} else {
					second.add(ev)
				}
			}
			first.merge(second)
			decoded, err := decodeRecordBatch(encodeRecordBatch(first))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			var got []schemas.Event
			for _, c := range decoded.Chunks {
				if err := c.each(func(ev schemas.Event) { got = append(got, ev) }); err != nil {
					t.Fatalf("each: %v", err)
				}
			}
			if !reflect.DeepEqual(got, records) {
				t.Fatalf("records = %+v, want %+v", got, records)
			}
		})
	}
	t.Run("gives back every field schemas.Event has", func(t *testing.T) {
		// A field added to schemas.Event must be added to the encoding too.
		var ev schemas.Event
		v := reflect.ValueOf(&ev).Elem()
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(v.Type().Field(i).Name)
			case reflect.Int64:
				f.SetInt(int64(i + 1))
			case reflect.Pointer:
				p := reflect.New(f.Type().Elem())
				switch p.Elem().Kind() {
				case reflect.String:
					p.Elem().SetString(v.Type().Field(i).Name)
				case reflect.Float64:
					p.Elem().SetFloat(float64(i) + 0.5)
				default:
					t.Fatalf("schemas.Event.%s is a %v: teach this test and recordChunk about it", v.Type().Field(i).Name, f.Type())
				}
				f.Set(p)
			default:
				t.Fatalf("schemas.Event.%s is a %v: teach this test and recordChunk about it", v.Type().Field(i).Name, f.Type())
			}
		}
		b := &recordBatch{}
		b.add(ev)
		decoded, err := decodeRecordBatch(encodeRecordBatch(b))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		err = decoded.Chunks[0].each(func(got schemas.Event) {
			if !reflect.DeepEqual(got, ev) {
				t.Errorf("record = %+v, want %+v", got, ev)
			}
		})
		if err != nil {
			t.Fatalf("each: %v", err)
		}
	})

	t.Run("rejects a truncated batch", func(t *testing.T) {
		b := &recordBatch{}
		b.add(records[1])
		data := encodeRecordBatch(b)
		for n := range len(data) {
			decoded, err := decodeRecordBatch(data[:n])
			if err != nil {
				continue
			}
			for _, c := range decoded.Chunks {
				err = c.each(func(schemas.Event) {})
			}
			if err == nil {
				t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(data))
			}
		}
	})
}
