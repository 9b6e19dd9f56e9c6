package sessions

import (
	"cmp"
	"math/rand/v2"
	"reflect"
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

// TestUserSessionsFnMerge checks the batch CombineFn outside a runner:
// however a user's events are split into accumulators and merged, the
// sessions are those of sorting the events and splitting them where the
// pause, in Beam's millisecond timestamps, reaches the gap.
func TestUserSessionsFnMerge(t *testing.T) {
	const gapMillis = 1000
	fn := &userSessionsFn{GapMillis: gapMillis}
	rng := rand.New(rand.NewPCG(7, 8))
	sources := []string{"web", "ios", "android"}

	// reference splits the events of one user as merging session windows do.
	reference := func(user string, events []userEvent) []userSession {
		sorted := slices.Clone(events)
		slices.SortFunc(sorted, func(a, b userEvent) int { return cmp.Compare(a.EventTime, b.EventTime) })
		var out []userSession
		for i, ev := range sorted {
			if i == 0 || ev.EventTime/1000-sorted[i-1].EventTime/1000 >= gapMillis {
				out = append(out, userSession{UserID: user, Span: span{Start: ev.EventTime, End: ev.EventTime}})
			}
			cur := &out[len(out)-1].Span
			cur.End = ev.EventTime
			cur.Events++
			if !slices.Contains(cur.Sources, ev.Source) {
				cur.Sources = append(cur.Sources, ev.Source)
				slices.Sort(cur.Sources)
			}
		}
		return out
	}

	t.Run("compares millisecond timestamps, as session windows do", func(t *testing.T) {
		// 999.9 ms apart, but 1000 ms apart as Beam timestamps.
		events := []userEvent{{UserID: "u1", EventTime: 1_999_400, Source: "web"}, {UserID: "u1", EventTime: 999_500, Source: "web"}}
		got := fn.ExtractOutput(fn.AddInput(fn.AddInput(fn.CreateAccumulator(), events[0]), events[1]))
		if want := reference("u1", events); !reflect.DeepEqual(got, want) || len(got) != 2 {
			t.Fatalf("sessions = %+v, want two: %+v", got, want)
		}
	})

	t.Run("gives the sessions of the sorted events for any split and merge order", func(t *testing.T) {
		for range 300 {
			var events []userEvent
			var want []userSession
			for _, user := range []string{"u1", "u2"} {
				var mine []userEvent
				at := int64(rng.IntN(5_000_000))
				for range 1 + rng.IntN(12) {
					// Steps around the gap, in microseconds, so that the
					// millisecond cut decides some splits.
					at += int64(rng.IntN(2 * gapMillis * 1000))
					mine = append(mine, userEvent{UserID: user, EventTime: at, Source: sources[rng.IntN(len(sources))]})
				}
				events = append(events, mine...)
				want = append(want, reference(user, mine)...)
			}
			rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			accs := []*userSpans{fn.CreateAccumulator(), {}, fn.CreateAccumulator()}
			for _, ev := range events {
				k := rng.IntN(len(accs))
				accs[k] = fn.AddInput(accs[k], ev)
			}
			rng.Shuffle(len(accs), func(i, j int) { accs[i], accs[j] = accs[j], accs[i] })
			got := fn.ExtractOutput(fn.MergeAccumulators(fn.MergeAccumulators(accs[0], accs[1]), accs[2]))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("sessions of %+v\n= %+v\nwant %+v", events, got, want)
			}
		}
	})
}
