package sessions

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/internal/shard"
	"github.com/railyard/railyard/transforms/windowing"
)

func init() {
	register.DoFn3x0[context.Context, schemas.Event, func(int, userEvent)](&keyByUserShardFn{})
	register.Emitter2[int, userEvent]()
	register.Combiner3[*userSpans, userEvent, []userSession](&userSessionsFn{})
	register.DoFn2x0[[]userSession, func(schemas.SessionSpeed)](&emitSessionsFn{})
	register.Emitter1[schemas.SessionSpeed]()
}

// userShards is how many keys the batch path groups users by. Each user
// belongs to one shard, and a shard's sessions so far cross the shuffle as
// one accumulator per bundle, not one element per event: the runner then
// keeps a few thousand elements and keys instead of one per event. It is
// below the SDK's combiner lifting cache (2000 keys per bundle), so that
// a bundle sends one accumulator per shard.
const userShards = 256

// shardOfUser is the shard of a user_id: the same on every worker.
func shardOfUser(userID string) int {
	return shard.New().String(userID).Of(userShards)
}

// perUserBatch is PerUser for bounded input with one on-time pane per
// session. It splits each user's events at the gaps, as merging session
// windows would, in the global window: session windows would make the
// batch job's deduplicated events late (dedup groups them in the global
// window and stamps them back to their event time, and a runner may drop
// late elements; Prism does).
func perUserBatch(s beam.Scope, events beam.PCollection, gap time.Duration, processedAtMicros int64) beam.PCollection {
	keyed := beam.ParDo(s, &keyByUserShardFn{}, events)
	perShard := beam.CombinePerKey(s, &userSessionsFn{GapMillis: gap.Milliseconds()}, keyed)
	return beam.ParDo(s, &emitSessionsFn{GapSeconds: int64(gap / time.Second), ProcessedAtMicros: processedAtMicros}, beam.DropKey(s, perShard))
}

// userEvent is the part of an event a session needs, with its user.
type userEvent struct {
	UserID    string
	EventTime int64
	Source    string
}

// keyByUserShardFn keys events by the shard of their user_id and counts,
// and drops, those without.
type keyByUserShardFn struct{}

func (*keyByUserShardFn) ProcessElement(ctx context.Context, ev schemas.Event, emit func(int, userEvent)) {
	if ev.UserID == nil {
		skippedNoUser.Inc(ctx, 1)
		return
	}
	emit(shardOfUser(*ev.UserID), userEvent{UserID: *ev.UserID, EventTime: ev.EventTime, Source: ev.Source})
}

// span is one session being built: its first and last event time
// (microseconds), how many events it has and their distinct sources,
// sorted.
type span struct {
	Start, End int64
	Events     int64
	Sources    []string
}

// userSpans is the accumulator of userSessionsFn: for each user of a
// shard, the sessions of the events seen so far, by start time. No two of
// a user's spans are closer than the gap.
type userSpans struct {
	Users map[string][]span
}

// userSession is one finished session of a user.
type userSession struct {
	UserID string
	Span   span
}

// userSessionsFn is a CombineFn over the events of a shard of users: it
// builds each user's sessions as it goes, joining two spans of one UTC day
// when the pause between them is shorter than the gap (in Beam's millisecond
// timestamps, as session windows compare them). The sessions of a set of
// events do not depend on the order they are added and merged in, so the
// result does not depend on how the runner splits the input.
type userSessionsFn struct {
	GapMillis int64
}

func (*userSessionsFn) CreateAccumulator() *userSpans {
	return &userSpans{Users: map[string][]span{}}
}

func (fn *userSessionsFn) AddInput(acc *userSpans, ev userEvent) *userSpans {
	if acc.Users == nil {
		acc.Users = map[string][]span{}
	}
	acc.Users[ev.UserID] = fn.insert(acc.Users[ev.UserID], span{Start: ev.EventTime, End: ev.EventTime, Events: 1, Sources: []string{ev.Source}})
	return acc
}

func (fn *userSessionsFn) MergeAccumulators(a, b *userSpans) *userSpans {
	if len(a.Users) < len(b.Users) {
		a, b = b, a
	}
	if a.Users == nil {
		a.Users = map[string][]span{}
	}
	for user, spans := range b.Users {
		merged := a.Users[user]
		for _, sp := range spans {
			merged = fn.insert(merged, sp)
		}
		a.Users[user] = merged
	}
	return a
}

func (*userSessionsFn) ExtractOutput(acc *userSpans) []userSession {
	var out []userSession
	for user, spans := range acc.Users {
		for _, sp := range spans {
			out = append(out, userSession{UserID: user, Span: sp})
		}
	}
	slices.SortFunc(out, func(a, b userSession) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Span.Start, b.Span.Start))
	})
	return out
}

// joins reports whether spans a and b, a starting no later than b, are
// one session: no pause of the gap or more lies between them, and no
// midnight (every span lies within one UTC day).
func (fn *userSessionsFn) joins(a, b span) bool {
	return b.Start/1000-a.End/1000 < fn.GapMillis && Day(a.End) == Day(b.Start)
}

// insert adds sp to spans, sorted by start with no two joining, and
// joins it with its neighbours where they are close enough.
func (fn *userSessionsFn) insert(spans []span, sp span) []span {
	i, _ := slices.BinarySearchFunc(spans, sp.Start, func(s span, start int64) int { return cmp.Compare(s.Start, start) })
	if i > 0 && fn.joins(spans[i-1], sp) {
		i--
		sp = union(spans[i], sp)
		spans = slices.Delete(spans, i, i+1)
	}
	for i < len(spans) && fn.joins(sp, spans[i]) {
		sp = union(sp, spans[i])
		spans = slices.Delete(spans, i, i+1)
	}
	return slices.Insert(spans, i, sp)
}

// union is the span of the events of a and b.
func union(a, b span) span {
	return span{
		Start:   min(a.Start, b.Start),
		End:     max(a.End, b.End),
		Events:  a.Events + b.Events,
		Sources: mergeSorted(a.Sources, b.Sources),
	}
}

// mergeSorted returns the distinct strings of two sorted lists, sorted.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, max(len(a), len(b)))
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// emitSessionsFn emits the sessions of a shard of users, each with the
// one on-time pane.
type emitSessionsFn struct {
	GapSeconds int64
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64
}

func (fn *emitSessionsFn) ProcessElement(sessions []userSession, emit func(schemas.SessionSpeed)) {
	for _, us := range sessions {
		total := sessionTotal{Events: us.Span.Events, Start: us.Span.Start, End: us.Span.End, Sources: us.Span.Sources}
		emit(sessionRow(us.UserID, total, fn.GapSeconds, windowing.Pane(windowing.OnTime, fn.ProcessedAtMicros)))
	}
}
