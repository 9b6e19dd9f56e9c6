package metrics

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/internal/shard"
	"github.com/railyard/railyard/transforms/windowing"
)

func init() {
	register.Function1x2(keyByBucketShard)
	register.Combiner3[*bucketAccs, bucketInput, []bucketTotal](&bucketsFn{})
	register.DoFn2x0[[]bucketTotal, func(schemas.MetricMinuteSpeed)](&emitBucketMetricsFn{})
	register.Emitter1[schemas.MetricMinuteSpeed]()
}

// bucketShards is how many keys the batch path groups minute buckets by.
// Each bucket belongs to one shard, and a shard's totals so far cross the
// shuffle as one accumulator per bundle: one per bucket would overflow
// the SDK's combiner lifting cache (2000 keys per bundle) as soon as a
// run holds more buckets than that (a day has 1440 minutes, each with a
// bucket per event type, source, platform and country), and then nearly
// every event would cross the shuffle as an accumulator of its own.
const bucketShards = 256

// perMinuteBatch is PerMinute for bounded input with one on-time pane per
// window. It keys each event by its minute in the global window instead of
// windowing: event-time windows would make the batch job's deduplicated
// events late (dedup groups them in the global window and stamps them back
// to their event time, and a runner may drop late elements; Prism does).
func perMinuteBatch(s beam.Scope, events beam.PCollection, processedAtMicros int64) beam.PCollection {
	keyed := beam.ParDo(s, keyByBucketShard, events)
	perShard := beam.CombinePerKey(s, &bucketsFn{}, keyed)
	return beam.ParDo(s, &emitBucketMetricsFn{ProcessedAtMicros: processedAtMicros}, beam.DropKey(s, perShard))
}

// minuteBucket is the key of one minute of one minuteKey, for bounded
// input in the global window.
type minuteBucket struct {
	WindowStart int64 // microseconds
	EventType   string
	Source      string
	Platform    *string
	Country     *string
}

// bucketInput is an event's bucket and the part of it a metric needs.
type bucketInput struct {
	Bucket minuteBucket
	Input  minuteInput
}

var minuteMicros = WindowSize.Microseconds()

func keyByBucketShard(ev schemas.Event) (int, bucketInput) {
	start := ev.EventTime - ev.EventTime%minuteMicros
	b := minuteBucket{WindowStart: start, EventType: ev.EventType, Source: ev.Source, Platform: ev.Platform, Country: ev.Country}
	return shardOf(b), bucketInput{Bucket: b, Input: minuteInput{UserID: ev.UserID, Value: ev.Value}}
}

// shardOf is the shard of a bucket: the same on every worker. It hashes
// the window start, event type and source.
func shardOf(b minuteBucket) int {
	return shard.New().Int64(b.WindowStart).String(b.EventType).Byte(0).String(b.Source).Of(bucketShards)
}

// bucketKey is a minuteBucket as a map key: NULL apart from any value.
type bucketKey struct {
	windowStart                          int64
	eventType, source, platform, country string
	hasPlatform, hasCountry              bool
}

func keyOf(b minuteBucket) bucketKey {
	k := bucketKey{windowStart: b.WindowStart, eventType: b.EventType, source: b.Source}
	if b.Platform != nil {
		k.platform, k.hasPlatform = *b.Platform, true
	}
	if b.Country != nil {
		k.country, k.hasCountry = *b.Country, true
	}
	return k
}

// bucketAccs is the accumulator of bucketsFn: minuteFn's accumulator of
// each bucket of a shard seen so far.
type bucketAccs struct {
	Buckets []bucketAcc

	// index finds a bucket in Buckets; it is rebuilt after decoding.
	index map[bucketKey]int
}

type bucketAcc struct {
	Bucket minuteBucket
	Acc    minuteAcc
}

// bucketTotal is the total of one bucket.
type bucketTotal struct {
	Bucket minuteBucket
	Total  minuteTotal
}

// find returns the accumulator of bucket b, adding an empty one if there
// is none.
func (a *bucketAccs) find(b minuteBucket) *minuteAcc {
	if a.index == nil {
		a.index = make(map[bucketKey]int, len(a.Buckets))
		for i, ba := range a.Buckets {
			a.index[keyOf(ba.Bucket)] = i
		}
	}
	k := keyOf(b)
	i, ok := a.index[k]
	if !ok {
		i = len(a.Buckets)
		a.Buckets = append(a.Buckets, bucketAcc{Bucket: b, Acc: minuteFn{}.CreateAccumulator()})
		a.index[k] = i
	}
	return &a.Buckets[i].Acc
}

// bucketsFn is a CombineFn over the events of a shard of buckets: it
// applies minuteFn to each bucket.
type bucketsFn struct{}

func (*bucketsFn) CreateAccumulator() *bucketAccs { return &bucketAccs{} }

func (*bucketsFn) AddInput(a *bucketAccs, in bucketInput) *bucketAccs {
	acc := a.find(in.Bucket)
	*acc = minuteFn{}.AddInput(*acc, in.Input)
	return a
}

func (*bucketsFn) MergeAccumulators(a, b *bucketAccs) *bucketAccs {
	if len(a.Buckets) < len(b.Buckets) {
		a, b = b, a
	}
	for _, ba := range b.Buckets {
		acc := a.find(ba.Bucket)
		*acc = minuteFn{}.MergeAccumulators(*acc, ba.Acc)
	}
	return a
}

func (*bucketsFn) ExtractOutput(a *bucketAccs) []bucketTotal {
	out := make([]bucketTotal, len(a.Buckets))
	for i, ba := range a.Buckets {
		out[i] = bucketTotal{Bucket: ba.Bucket, Total: minuteFn{}.ExtractOutput(ba.Acc)}
	}
	return out
}

// emitBucketMetricsFn turns the totals of a shard's buckets into rows with
// the one on-time pane.
type emitBucketMetricsFn struct {
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64
}

func (fn *emitBucketMetricsFn) ProcessElement(totals []bucketTotal, emit func(schemas.MetricMinuteSpeed)) {
	for _, t := range totals {
		b := t.Bucket
		key := minuteKey{EventType: b.EventType, Source: b.Source, Platform: b.Platform, Country: b.Country}
		emit(row(b.WindowStart, b.WindowStart+minuteMicros, key, t.Total, windowing.Pane(windowing.OnTime, fn.ProcessedAtMicros)))
	}
}
