package sessions

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSessionFnMerge checks the CombineFn outside a runner: however the
// events are split into accumulators and merged, the session is the same.
func TestSessionFnMerge(t *testing.T) {
	inputs := []sessionInput{
		{EventTime: 500, Source: "web"},
		{EventTime: 100, Source: "ios"},
		{EventTime: 900, Source: "web"},
		{EventTime: 300, Source: "android"},
		{EventTime: 700, Source: "ios"},
	}
	want := sessionTotal{Events: 5, Start: 100, End: 900, Sources: []string{"android", "ios", "web"}}
	var fn sessionFn
	rng := rand.New(rand.NewPCG(5, 6))

	t.Run("gives the same session for any split and merge order", func(t *testing.T) {
		for range 200 {
			accs := []sessionAcc{fn.CreateAccumulator(), {}, fn.CreateAccumulator()}
			for _, i := range rng.Perm(len(inputs)) {
				k := rng.IntN(len(accs))
				accs[k] = fn.AddInput(accs[k], inputs[i])
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			merged := fn.MergeAccumulators(fn.MergeAccumulators(accs[0], accs[1]), accs[2])
			got := fn.ExtractOutput(merged)
			if got.Events != want.Events || got.Start != want.Start || got.End != want.End || !slices.Equal(got.Sources, want.Sources) {
				t.Fatalf("session = %+v, want %+v", got, want)
			}
		}
	})
}
