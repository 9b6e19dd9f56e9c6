package sessions

import "slices"

// sessionFn is the CombineFn of a session: first and last event time,
// event count and distinct sources. When sessions fire more than once,
// PerUser applies it to each pane's events after a GroupByKey.
type sessionFn struct{}

// sessionAcc is the accumulator of sessionFn.
type sessionAcc struct {
	Events     int64
	Start, End int64
	Sources    map[string]bool
}

// sessionTotal is the output of sessionFn.
type sessionTotal struct {
	Events     int64
	Start, End int64
	// Sources is sorted.
	Sources []string
}

func (sessionFn) CreateAccumulator() sessionAcc {
	return sessionAcc{Sources: map[string]bool{}}
}

func (sessionFn) AddInput(acc sessionAcc, in sessionInput) sessionAcc {
	if acc.Events == 0 || in.EventTime < acc.Start {
		acc.Start = in.EventTime
	}
	if acc.Events == 0 || in.EventTime > acc.End {
		acc.End = in.EventTime
	}
	acc.Events++
	if acc.Sources == nil {
		acc.Sources = map[string]bool{}
	}
	acc.Sources[in.Source] = true
	return acc
}

func (sessionFn) MergeAccumulators(a, b sessionAcc) sessionAcc {
	switch {
	case b.Events == 0:
		return a
	case a.Events == 0:
		return b
	}
	a.Start, a.End = min(a.Start, b.Start), max(a.End, b.End)
	a.Events += b.Events
	if a.Sources == nil {
		a.Sources = map[string]bool{}
	}
	for src := range b.Sources {
		a.Sources[src] = true
	}
	return a
}

func (sessionFn) ExtractOutput(acc sessionAcc) sessionTotal {
	sources := make([]string, 0, len(acc.Sources))
	for src := range acc.Sources {
		sources = append(sources, src)
	}
	slices.Sort(sources)
	return sessionTotal{Events: acc.Events, Start: acc.Start, End: acc.End, Sources: sources}
}
