package metrics

import "math"

// minuteFn is the CombineFn of a metric: it counts events, collects
// distinct user_ids and sums values exactly. When windows fire more than
// once, PerMinute applies it to each pane's events after a GroupByKey.
type minuteFn struct{}

// minuteAcc is the accumulator of minuteFn.
type minuteAcc struct {
	Events int64
	// Users is the set of non-NULL user_ids: exact, so that the count does
	// not depend on how the runner splits the input.
	Users map[string]bool
	// Partials holds the running value sum exactly, as non-overlapping
	// float64s (see addExact).
	Partials []float64
}

// minuteTotal is the output of minuteFn.
type minuteTotal struct {
	Events   int64
	Users    int64
	ValueSum float64
}

func (minuteFn) CreateAccumulator() minuteAcc {
	return minuteAcc{Users: map[string]bool{}}
}

func (minuteFn) AddInput(acc minuteAcc, in minuteInput) minuteAcc {
	acc.Events++
	if in.UserID != nil {
		if acc.Users == nil {
			acc.Users = map[string]bool{}
		}
		acc.Users[*in.UserID] = true
	}
	if in.Value != nil {
		acc.Partials = addExact(acc.Partials, *in.Value)
	}
	return acc
}

func (minuteFn) MergeAccumulators(a, b minuteAcc) minuteAcc {
	a.Events += b.Events
	if len(b.Users) > 0 && a.Users == nil {
		a.Users = map[string]bool{}
	}
	for u := range b.Users {
		a.Users[u] = true
	}
	for _, p := range b.Partials {
		a.Partials = addExact(a.Partials, p)
	}
	return a
}

func (minuteFn) ExtractOutput(acc minuteAcc) minuteTotal {
	return minuteTotal{Events: acc.Events, Users: int64(len(acc.Users)), ValueSum: roundExact(acc.Partials)}
}

// addExact adds x to a sum held as partials: float64s, increasing in
// magnitude and non-overlapping, whose exact sum is the sum of everything
// added so far (Shewchuk's algorithm, as in Python's math.fsum). The sum
// is thus the same in any order of addition and merging, so batch and
// streaming runs agree to the last bit. A sum beyond the float64 range
// becomes ±Inf or NaN.
func addExact(partials []float64, x float64) []float64 {
	i := 0
	for _, y := range partials {
		if math.Abs(x) < math.Abs(y) {
			x, y = y, x
		}
		hi := x + y
		lo := y - (hi - x)
		if lo != 0 {
			partials[i] = lo
			i++
		}
		x = hi
	}
	return append(partials[:i], x)
}

// roundExact returns the float64 nearest to the exact sum of partials
// (ties to even).
func roundExact(partials []float64) float64 {
	n := len(partials)
	if n == 0 {
		return 0
	}
	n--
	hi, lo := partials[n], 0.0
	for n > 0 {
		x := hi
		n--
		y := partials[n]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	// hi + lo may be a tie that hi rounded to even, while the partials
	// below lo push the exact sum past the tie: then round away from hi.
	if n > 0 && (lo < 0 && partials[n-1] < 0 || lo > 0 && partials[n-1] > 0) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return hi
}
