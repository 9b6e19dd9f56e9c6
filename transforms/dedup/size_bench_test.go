package dedup

import (
	"bytes"
	"compress/gzip"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/schemas"

	// The packages whose keyed inputs are measured: their init functions
	// register the keying functions and the key and value types, which the
	// benchmarks look up by name (they are unexported).
	_ "github.com/railyard/railyard/transforms/lake"
	_ "github.com/railyard/railyard/transforms/metrics"
	_ "github.com/railyard/railyard/transforms/sessions"
)

// sizeEvents is how many records of the bench's synthetic mix
// (sample.Synthetic, seed 1, as runners/bench writes them) the size
// benchmarks measure: enough for the averages to settle to a byte.
const sizeEvents = 100_000

// railyardPkg is the import path prefix of the registered names.
const railyardPkg = "github.com/railyard/railyard/transforms/"

// sizeInput is the synthetic mix as the streaming job sees it: the
// messages, and the events that decode.
type sizeInput struct {
	messages []sample.Message
	events   []schemas.Event
	// from is the index in messages of each event.
	from []int
}

func newSizeInput(tb testing.TB) sizeInput {
	tb.Helper()
	var in sizeInput
	for m := range sample.Synthetic(sizeEvents, 1) {
		in.messages = append(in.messages, m)
		ev, err := schemas.ParseEvent(m.Data)
		if err != nil {
			continue // a bad record: dead-lettered at decode, never shuffled
		}
		// What decode.Events adds to a parsed event in the speed layer.
		rec := m.Record()
		ev.IngestTime, ev.Layer = rec.IngestTime, schemas.LayerSpeed
		id := rec.MessageID
		ev.MessageID = &id
		in.events = append(in.events, ev)
		in.from = append(in.from, len(in.messages)-1)
	}
	if len(in.events) < sizeEvents*9/10 {
		tb.Fatalf("only %d of %d synthetic records decoded", len(in.events), sizeEvents)
	}
	return in
}

// kvSizer encodes KV pairs with the coders Beam infers for their key and
// value types, as the runner's shuffle receives them, and sums the bytes.
type kvSizer struct {
	key, value beam.ElementEncoder
	header     int // the windowed value's header: timestamp, window, pane
	bytes      int
	pairs      int
	// perKey counts the pairs of each key, by its encoding (keys with
	// pointer fields are equal by value only once encoded).
	perKey map[string]int
}

func newKVSizer(tb testing.TB, keyType, valueType reflect.Type, w *coder.WindowCoder, win typex.Window) *kvSizer {
	tb.Helper()
	var hdr bytes.Buffer
	if err := exec.EncodeWindowedValueHeader(exec.MakeWindowEncoder(w), []typex.Window{win}, mtime.Now(), typex.NoFiringPane(), &hdr); err != nil {
		tb.Fatalf("encoding a windowed value header: %v", err)
	}
	return &kvSizer{key: beam.NewElementEncoder(keyType), value: beam.NewElementEncoder(valueType), header: hdr.Len(), perKey: map[string]int{}}
}

func (s *kvSizer) add(tb testing.TB, k, v any) {
	var key, value bytes.Buffer
	if err := s.key.Encode(k, &key); err != nil {
		tb.Fatalf("encoding key %T: %v", k, err)
	}
	if err := s.value.Encode(v, &value); err != nil {
		tb.Fatalf("encoding value %T: %v", v, err)
	}
	s.bytes += key.Len() + value.Len() + s.header
	s.pairs++
	s.perKey[key.String()]++
}

// hottestShare is the share of the pairs that the most frequent key has.
func (s *kvSizer) hottestShare() float64 {
	top := 0
	for _, n := range s.perKey {
		top = max(top, n)
	}
	return float64(top) / float64(max(s.pairs, 1))
}

// runKeying calls the registered keying step name (a function, or a DoFn
// type with the given fields) on in, and each for every pair it emits.
func runKeying(tb testing.TB, name string, fields map[string]any, in any, each func(k, v any)) {
	tb.Helper()
	if fn, err := runtime.ResolveFunction(railyardPkg+name, nil); err == nil {
		out := reflect.ValueOf(fn).Call([]reflect.Value{reflect.ValueOf(in)})
		each(out[0].Interface(), out[1].Interface())
		return
	}
	t, ok := runtime.LookupType(railyardPkg + name)
	if !ok {
		tb.Fatalf("%s is neither a registered function nor a registered DoFn type", name)
	}
	dofn := reflect.New(t)
	for f, v := range fields {
		dofn.Elem().FieldByName(f).Set(reflect.ValueOf(v))
	}
	method := dofn.MethodByName("ProcessElement")
	mt := method.Type()
	args := make([]reflect.Value, mt.NumIn())
	for i := range args {
		switch p := mt.In(i); {
		case p == reflect.TypeFor[context.Context]():
			args[i] = reflect.ValueOf(context.Background())
		case p == reflect.TypeFor[beam.EventTime]():
			args[i] = reflect.ValueOf(mtime.FromMilliseconds(0))
		case p == reflect.TypeOf(in):
			args[i] = reflect.ValueOf(in)
		case p.Kind() == reflect.Func:
			args[i] = reflect.MakeFunc(p, func(a []reflect.Value) []reflect.Value {
				each(a[len(a)-2].Interface(), a[len(a)-1].Interface())
				return nil
			})
		default:
			tb.Fatalf("%s.ProcessElement takes a %v, which the benchmark cannot give", name, p)
		}
	}
	method.Call(args)
}

// keyedSizer keys every input with the registered step name and measures
// the pairs it emits, encoded in windows of coder w.
func keyedSizer[T any](tb testing.TB, name string, fields map[string]any, inputs []T, w *coder.WindowCoder, win typex.Window) *kvSizer {
	tb.Helper()
	var s *kvSizer
	for _, in := range inputs {
		runKeying(tb, name, fields, in, func(k, v any) {
			if s == nil {
				s = newKVSizer(tb, reflect.TypeOf(k), reflect.TypeOf(v), w, win)
			}
			s.add(tb, k, v)
		})
	}
	if s == nil {
		tb.Fatalf("%s emitted nothing for %d inputs", name, len(inputs))
	}
	return s
}

// BenchmarkSizeWire reports the bytes per record of the bench's synthetic
// mix at the edges of the jobs: a Pub/Sub message (data and attributes),
// and its archive line in the lake, raw and gzip-compressed as the lake
// stores it. Run it once: -benchtime=1x.
func BenchmarkSizeWire(b *testing.B) {
	in := newSizeInput(b)
	for b.Loop() {
		var data, attrs, lines int
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		for _, m := range in.messages {
			data += len(m.Data)
			for k, v := range m.Attributes {
				attrs += len(k) + len(v)
			}
		}
		var raw bytes.Buffer
		for line := range sample.SyntheticLakeLines(sizeEvents, 1) {
			lines += len(line) + 1
			raw.Write(line)
			raw.WriteByte('\n')
		}
		// The archive's gzip writer at its default level, as lake.Archive
		// writes a file: its rate is one core's.
		start := time.Now()
		zw.Write(raw.Bytes())
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(raw.Len())/time.Since(start).Seconds()/1e6, "gzip-input-MB/s")
		n := float64(len(in.messages))
		b.ReportMetric(float64(data)/n, "data-bytes/event")
		b.ReportMetric(float64(attrs)/n, "attr-bytes/event")
		b.ReportMetric(float64(lines)/n, "lake-line-bytes/event")
		b.ReportMetric(float64(gz.Len())/n, "lake-gz-bytes/event")
		b.ReportMetric(float64(len(in.events))/n, "events/record")
	}
}

// BenchmarkSizeStreamingShuffle reports, per record of the synthetic mix,
// the bytes each keyed step of the streaming job hands the runner's
// shuffle (on Dataflow, Streaming Engine): the pair its keying step
// emits, encoded with the coders Beam infers, plus the windowed value's
// header (timestamp, window, pane). It also reports the share of pairs
// the hottest key has: a key's pairs run on one worker.
func BenchmarkSizeStreamingShuffle(b *testing.B) {
	in := newSizeInput(b)
	global := window.GlobalWindow{}
	minute := window.IntervalWindow{Start: 0, End: mtime.FromMilliseconds(time.Minute.Milliseconds())}
	records := make([]schemas.Record, len(in.messages))
	for i, m := range in.messages {
		records[i] = m.Record()
	}
	for b.Loop() {
		n := float64(len(in.messages))
		// dedup.FirstArrivals: KV<event_id, Event> into a stateful DoFn, in
		// the global window.
		dd := newKVSizer(b, reflect.TypeFor[string](), reflect.TypeFor[schemas.Event](), coder.NewGlobalWindow(), global)
		for _, ev := range in.events {
			(&keyAtArrivalFn{}).ProcessElement(mtime.FromMilliseconds(ev.EventTime/1000), ev, func(_ beam.EventTime, k string, v schemas.Event) {
				dd.add(b, k, v)
			})
		}
		archive := keyedSizer(b, "lake.keyForArchiveFn", map[string]any{"Shards": 4}, records, coder.NewIntervalWindow(), minute)
		metrics := keyedSizer(b, "metrics.keyByMinuteKey", nil, in.events, coder.NewIntervalWindow(), minute)
		sessions := keyedSizer(b, "sessions.keyByUserFn", nil, in.events, coder.NewIntervalWindow(), minute)
		total := archive.bytes + dd.bytes + metrics.bytes + sessions.bytes
		b.ReportMetric(float64(archive.bytes)/n, "archive-bytes/event")
		b.ReportMetric(float64(dd.bytes)/n, "dedup-bytes/event")
		b.ReportMetric(float64(metrics.bytes)/n, "metrics-bytes/event")
		b.ReportMetric(float64(sessions.bytes)/n, "sessions-bytes/event")
		b.ReportMetric(float64(total)/n, "shuffle-bytes/event")
		b.ReportMetric(metrics.hottestShare(), "metrics-hottest-key-share")
		b.ReportMetric(float64(len(metrics.perKey)), "metrics-keys")
		b.ReportMetric(sessions.hottestShare(), "sessions-hottest-key-share")
	}
}

// BenchmarkSizeBatchShuffle reports, per record of the synthetic mix, the
// bytes the batch job's lifted combines hand the shuffle when a bundle
// holds a whole lake file of the bench (1,000,000 lines in 16 files:
// 62,500 records): the dedup's record batches (every record crosses), and
// the per-shard accumulators of the minute metrics and the sessions.
func BenchmarkSizeBatchShuffle(b *testing.B) {
	in := newSizeInput(b)
	const bundle = 62_500
	for i := range in.events { // the batch layer's events
		in.events[i].Layer = schemas.LayerBatch
	}
	for b.Loop() {
		var dd, mt, ss, records int
		for start := 0; start < len(in.messages); start += bundle {
			end := min(start+bundle, len(in.messages))
			records += end - start
			events := eventsOf(in, start, end)
			shards := map[int]*recordBatch{}
			for _, ev := range events {
				k, v := keyByShard(ev)
				if shards[k] == nil {
					shards[k] = &recordBatch{}
				}
				shards[k].add(v)
			}
			for _, batch := range shards {
				dd += len(encodeRecordBatch(batch)) + 1 + 2 // + length prefix, shard key
			}
			mt += liftedBytes(b, "metrics.keyByBucketShard", "metrics.bucketsFn", events)
			ss += liftedBytes(b, "sessions.keyByUserShardFn", "sessions.userSessionsFn", events)
		}
		n := float64(records)
		b.ReportMetric(float64(dd)/n, "dedup-bytes/event")
		b.ReportMetric(float64(mt)/n, "metrics-bytes/event")
		b.ReportMetric(float64(ss)/n, "sessions-bytes/event")
		b.ReportMetric(float64(dd+mt+ss)/n, "shuffle-bytes/event")
	}
}

// eventsOf is the events of the records in [start, end).
func eventsOf(in sizeInput, start, end int) []schemas.Event {
	var out []schemas.Event
	for i, ev := range in.events {
		if in.from[i] >= start && in.from[i] < end {
			out = append(out, ev)
		}
	}
	return out
}

// liftedBytes keys events with the registered keying step and adds them
// to one accumulator per key of the registered CombineFn, as a lifted
// combine does within a bundle, and returns the encoded size of the
// accumulators and their keys.
func liftedBytes(tb testing.TB, keying, combineFn string, events []schemas.Event) int {
	tb.Helper()
	t, ok := runtime.LookupType(railyardPkg + combineFn)
	if !ok {
		tb.Fatalf("%s is not a registered type", combineFn)
	}
	fn := reflect.New(t)
	accs := map[any]reflect.Value{}
	var keyEnc beam.ElementEncoder
	for _, ev := range events {
		runKeying(tb, keying, nil, ev, func(k, v any) {
			if keyEnc == nil {
				keyEnc = beam.NewElementEncoder(reflect.TypeOf(k))
			}
			acc, ok := accs[k]
			if !ok {
				acc = fn.MethodByName("CreateAccumulator").Call(nil)[0]
			}
			accs[k] = fn.MethodByName("AddInput").Call([]reflect.Value{acc, reflect.ValueOf(v)})[0]
		})
	}
	total := 0
	for k, acc := range accs {
		var buf bytes.Buffer
		if err := keyEnc.Encode(k, &buf); err != nil {
			tb.Fatalf("encoding key: %v", err)
		}
		if err := beam.NewElementEncoder(acc.Type()).Encode(acc.Interface(), &buf); err != nil {
			tb.Fatalf("encoding a %s accumulator: %v", combineFn, err)
		}
		total += buf.Len()
	}
	return total
}
