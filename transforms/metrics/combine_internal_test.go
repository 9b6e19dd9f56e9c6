package metrics

import (
	"maps"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

func sumExact(values ...float64) float64 {
	var partials []float64
	for _, v := range values {
		partials = addExact(partials, v)
	}
	return roundExact(partials)
}

func TestExactSum(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   float64
	}{
		{name: "is zero for no values", values: nil, want: 0},
		{name: "keeps a small value next to large ones that cancel", values: []float64{1e16, 1, -1e16, 1}, want: 2},
		{name: "keeps it in another order", values: []float64{1, 1, 1e16, -1e16}, want: 2},
		{name: "adds tenths to exactly one", values: []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, want: 1},
		{name: "rounds a tie by what lies below it", values: []float64{1e-16, 1, 1e16}, want: 1.0000000000000002e16},
		{name: "sums negative values", values: []float64{-2.5, -0.25, 1}, want: -1.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sumExact(tt.values...); got != tt.want {
				t.Errorf("sum of %v = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

// TestMinuteFnMerge checks the CombineFn outside a runner: however the
// inputs are split into accumulators and merged, the total is the same to
// the last bit.
func TestMinuteFnMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	users := []string{"u1", "u2", "u3", "u4"}
	var inputs []minuteInput
	for i := range 300 {
		in := minuteInput{}
		if i%5 != 0 {
			in.UserID = &users[rng.IntN(len(users))]
		}
		if i%7 != 0 {
			v := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(30)-10))
			in.Value = &v
		}
		inputs = append(inputs, in)
	}
	var fn minuteFn
	whole := fn.CreateAccumulator()
	for _, in := range inputs {
		whole = fn.AddInput(whole, in)
	}
	want := fn.ExtractOutput(whole)
	if want.Events != 300 || want.Users != 4 {
		t.Fatalf("total of all inputs = %+v, want 300 events and 4 users", want)
	}

	t.Run("gives the same total for any split and merge order", func(t *testing.T) {
		for range 100 {
			accs := []minuteAcc{fn.CreateAccumulator(), {}, fn.CreateAccumulator(), {}}
			for _, i := range rng.Perm(len(inputs)) {
				k := rng.IntN(len(accs))
				accs[k] = fn.AddInput(accs[k], inputs[i])
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			merged := fn.CreateAccumulator()
			for _, a := range accs {
				merged = fn.MergeAccumulators(merged, a)
			}
			if got := fn.ExtractOutput(merged); got != want {
				t.Fatalf("total = %+v, want %+v", got, want)
			}
		}
	})
}

// TestBucketsFnMerge checks the batch CombineFn outside a runner: however
// the events are split into accumulators and merged, each bucket's total
// is minuteFn's over that bucket's events, and NULL is a bucket apart.
func TestBucketsFnMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	platforms := []*string{nil, ptrTo(""), ptrTo("web"), ptrTo("ios")}
	users := []string{"u1", "u2", "u3"}
	var inputs []bucketInput
	for i := range 400 {
		in := bucketInput{Bucket: minuteBucket{
			WindowStart: int64(rng.IntN(3)) * minuteMicros,
			EventType:   "page.view",
			Source:      []string{"web-shop", "ios-app"}[rng.IntN(2)],
			Platform:    platforms[rng.IntN(len(platforms))],
			Country:     platforms[i%2],
		}}
		if i%3 != 0 {
			in.Input.UserID = &users[rng.IntN(len(users))]
		}
		v := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(20)-5))
		in.Input.Value = &v
		inputs = append(inputs, in)
	}
	// want is minuteFn's total of each bucket's inputs, in input order.
	want := map[bucketKey]minuteTotal{}
	perBucket := map[bucketKey]minuteAcc{}
	var mf minuteFn
	for _, in := range inputs {
		k := keyOf(in.Bucket)
		acc, ok := perBucket[k]
		if !ok {
			acc = mf.CreateAccumulator()
		}
		perBucket[k] = mf.AddInput(acc, in.Input)
	}
	for k, acc := range perBucket {
		want[k] = mf.ExtractOutput(acc)
	}
	fn := &bucketsFn{}

	t.Run("gives each bucket the same total for any split and merge order", func(t *testing.T) {
		for range 100 {
			accs := []*bucketAccs{fn.CreateAccumulator(), {}, fn.CreateAccumulator()}
			for _, i := range rng.Perm(len(inputs)) {
				k := rng.IntN(len(accs))
				accs[k] = fn.AddInput(accs[k], inputs[i])
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			for _, a := range accs {
				a.index = nil // as after the shuffle, which does not encode it
			}
			got := map[bucketKey]minuteTotal{}
			for _, bt := range fn.ExtractOutput(fn.MergeAccumulators(fn.MergeAccumulators(accs[0], accs[1]), accs[2])) {
				k := keyOf(bt.Bucket)
				if _, dup := got[k]; dup {
					t.Fatalf("bucket %+v appears twice", k)
				}
				got[k] = bt.Total
			}
			if !maps.Equal(got, want) {
				t.Fatalf("totals = %+v, want %+v", got, want)
			}
		}
	})
}

func ptrTo(s string) *string { return &s }

func TestInPaneOrder(t *testing.T) {
	minute := WindowSize.Milliseconds()
	tests := []struct {
		name         string
		stamp, index int64
		want         int64
	}{
		{"the first pane keeps the stamp", 5 * minute, 0, 5 * minute},
		{"a later pane is later", 5 * minute, 7, 5*minute + 7},
		{"the last millisecond of the stamp's minute is the cap", 5 * minute, minute + 3, 6*minute - 1},
		{"a stamp inside its minute has less room", 5*minute + 59_990, 20, 6*minute - 1},
		{"a stamp before 1970 stays in its minute", -minute + 10, 5, -minute + 15},
		{"a stamp before 1970 is capped in its minute", -minute + 10, minute, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := inPaneOrder(mtime.FromMilliseconds(tt.stamp), tt.index).Milliseconds()
			if got != tt.want {
				t.Errorf("inPaneOrder(%d, %d) = %d, want %d", tt.stamp, tt.index, got, tt.want)
			}
		})
	}
}
