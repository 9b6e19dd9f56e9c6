// Package sessions groups each user's events into sessions: runs of
// events of one user_id with no gap longer than the session gap between
// them, within one UTC day. They are the rows of the sessions_batch and
// sessions_speed tables.
//
// A session also ends at midnight UTC (as web analytics sessions end at
// midnight): a user who never pauses for the gap — a bot, a device that
// reports every few seconds — has one session a day, not one that grows
// for as long as the stream runs and whose every pane reads all of it
// again. Both layers cut at the same instant, so they agree, and no
// session spans two days of the tables' day partitions.
//
// The batch job uses the zero Config, bar the gap: one on-time pane per
// session. The streaming job sets a trigger and an allowed lateness;
// every firing of a session is then a new row, a revision, and the latest
// pane is the answer. A late event can merge two sessions into one.
package sessions

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/windowing"
)

// DefaultGap is the session gap of a Config that sets none.
const DefaultGap = schemas.DefaultSessionGap

// PaneMode says what a later pane of a session holds (see windowing.PaneMode).
type PaneMode = windowing.PaneMode

// The pane modes.
const (
	Accumulating = windowing.Accumulating
	Discarding   = windowing.Discarding
)

// Config holds the session gap and windowing settings of PerUser. The zero
// Config is the batch job's: a 30-minute gap, Beam's default trigger, no
// allowed lateness.
type Config struct {
	// Gap is the longest pause within a session: events further apart
	// are in two sessions. Zero means DefaultGap. It must be a whole
	// number of seconds (it is written as gap_seconds). Event times are
	// compared as Beam timestamps, in milliseconds. A pause of exactly
	// Gap keeps one session on Prism v2.77.0 and splits it on runners
	// that merge windows as Beam Java does (Dataflow, Flink).
	Gap time.Duration
	// Trigger says when a session fires a pane; nil is Beam's default
	// trigger (once when the watermark passes the end of the session,
	// then once per late event within AllowedLateness). Prism v2.77.0
	// rejects at submission, on session windows, any trigger that counts
	// elements or processing time (apache/beam#31438): there, use
	// AfterEndOfWindow with Always late firings, or nil.
	Trigger trigger.Trigger
	// AllowedLateness is how long after the end of a session (last event
	// + Gap) its late events still revise it; the runner drops events
	// later than that.
	AllowedLateness time.Duration
	// Panes says what a later pane of a session holds.
	Panes PaneMode
	// Groupings is how many independent groupings the sessions are split
	// over, by a hash of the user and day; 0 or 1 is one. The sessions
	// are the same either way. It is for runners whose cost of a bundle
	// of a grouping grows with every window it holds (see
	// config.Profile.StateScanPerWindow): n groupings each hold 1/n of
	// the open sessions, so a round of bundles costs 1/n as much. It is
	// ignored when panes fire once (the batch job, which does not group
	// by window).
	Groupings int
	// RunningTotals, with accumulating panes, keeps each session's total
	// in state and groups only each pane's new events (discarding panes;
	// see cumulate.go): a pane then costs its own events, not the whole
	// session so far, and a late event merges into the session it extends
	// even on a runner that fails to merge its window (Prism v2.77.0). It
	// costs a state read and write per pane, which measured the same CPU
	// per event as regrouping in the streaming bench on Prism. Without it
	// each pane regroups the session: O(n²) for a long session with early
	// panes every second. The streaming job sets it.
	RunningTotals bool
	// ProcessedAt, when set, is every pane's processed_at, instead of the
	// wall clock at the time the pane is computed: for tests and golden
	// files.
	ProcessedAt time.Time
}

// Validate reports whether the configuration can build a pipeline.
func (c Config) Validate() error {
	if c.Gap < 0 {
		return fmt.Errorf("Gap is %v, it must not be negative (zero means %v)", c.Gap, DefaultGap)
	}
	if c.Gap%time.Second != 0 {
		return fmt.Errorf("Gap is %v, it must be a whole number of seconds", c.Gap)
	}
	if c.Groupings < 0 || c.Groupings > maxGroupings {
		return fmt.Errorf("Groupings is %d, want 0 to %d", c.Groupings, maxGroupings)
	}
	if err := c.settings().Validate(); err != nil {
		return err
	}
	return nil
}

func (c Config) gap() time.Duration {
	if c.Gap == 0 {
		return DefaultGap
	}
	return c.Gap
}

// settings are the windowing knobs of the configuration.
func (c Config) settings() windowing.Settings {
	return windowing.Settings{Trigger: c.Trigger, AllowedLateness: c.AllowedLateness, Panes: c.Panes, ProcessedAt: c.ProcessedAt}
}

// ErrInvalidConfig is wrapped by the panic of PerUser on a bad Config.
var ErrInvalidConfig = errors.New("sessions: invalid config")

// skippedNoUser counts the events that have no user_id, hence no session.
var skippedNoUser = beam.NewCounter(metricnames.Namespace, metricnames.SessionsSkippedNoUser)

// paneEvents is the distribution of how many events a pane of a session
// reads (the streaming job's sessions; its max is the cost of the longest
// session's latest pane).
var paneEvents = beam.NewDistribution(metricnames.Namespace, metricnames.SessionsPaneEvents)

func init() {
	register.DoFn3x0[context.Context, schemas.Event, func(string, sessionInput)](&keyByUserFn{})
	register.Emitter2[string, sessionInput]()
	register.Combiner3[sessionAcc, sessionInput, sessionTotal](&sessionFn{})
	register.DoFn4x1[context.Context, typex.PaneInfo, string, func(*sessionInput) bool, schemas.SessionSpeed](&paneSessionFn{})
	register.Iter1[sessionInput]()
	register.Function1x1(withoutPane)
	register.DoFn3x0[string, sessionInput, func(string, sessionInput)](&groupingFn{})
}

// PerUser takes a PCollection<schemas.Event>, deduplicated and stamped with
// event time, and returns a PCollection<schemas.SessionSpeed>: each
// session of each user_id, with the pane that fired it. Events without a
// user_id have no session; they are counted in
// railyard/sessions_skipped_no_user. It panics, while the pipeline is
// built, if cfg is not valid.
func PerUser(s beam.Scope, events beam.PCollection, cfg Config) beam.PCollection {
	s = s.Scope("sessions.PerUser")
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	gapSeconds, processed := int64(cfg.gap()/time.Second), cfg.settings().ProcessedAtMicros()
	if cfg.settings().FiresOnce() {
		return perUserBatch(s, events, cfg.gap(), processed)
	}
	// The Go SDK v2.77.0 combine drops the pane (exec/combine.go builds its
	// output without it), so group, and apply sessionFn per pane. With
	// RunningTotals each pane is grouped discarding, and accumulating
	// panes are running totals in state (see accumulatingPerUser), not a
	// regroup of the session.
	set := cfg.settings()
	if cfg.RunningTotals {
		set.Panes = Discarding
	}
	windowed := beam.WindowInto(s, window.NewSessions(cfg.gap()), events, set.Options()...)
	keyed := beam.ParDo(s, &keyByUserFn{}, windowed)
	grouped := groupPanes(s, keyed, cfg.Groupings)
	if cfg.RunningTotals && cfg.Panes == Accumulating {
		return accumulatingPerUser(s, events, grouped, cfg, windowing.FiresEarly(cfg.Trigger))
	}
	fn := &paneSessionFn{GapSeconds: gapSeconds, ProcessedAtMicros: processed}
	rows := make([]beam.PCollection, len(grouped))
	for i, g := range grouped {
		rows[i] = beam.ParDo(s, fn, g)
	}
	if len(rows) == 1 {
		return rows[0]
	}
	return beam.Flatten(s, rows...)
}

// groupPanes groups the keyed events of each pane over n independent
// groupings (one if n is 0 or 1).
func groupPanes(s beam.Scope, keyed beam.PCollection, n int) []beam.PCollection {
	if n <= 1 {
		return []beam.PCollection{beam.GroupByKey(s, keyed)}
	}
	grouped := make([]beam.PCollection, n)
	for i := range grouped {
		g := s.Scope(fmt.Sprintf("Grouping%02d", i))
		grouped[i] = beam.GroupByKey(g, beam.ParDo(g, &groupingFn{I: i, N: n}, keyed))
	}
	return grouped
}

// maxGroupings bounds Config.Groupings: each is a step of the graph.
const maxGroupings = 64

// groupingFn keeps the keys of grouping I of N: those whose FNV-1a hash
// is I modulo N.
type groupingFn struct{ I, N int }

func (fn *groupingFn) ProcessElement(key string, in sessionInput, emit func(string, sessionInput)) {
	if grouping(key, fn.N) == fn.I {
		emit(key, in)
	}
}

func grouping(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// WithoutPane takes a PCollection<schemas.SessionSpeed> and returns the
// PCollection<schemas.Session> of its sessions, for the batch table.
func WithoutPane(s beam.Scope, sessions beam.PCollection) beam.PCollection {
	s = s.Scope("sessions.WithoutPane")
	return beam.ParDo(s, withoutPane, sessions)
}

func withoutPane(ss schemas.SessionSpeed) schemas.Session {
	return ss.Session
}

// sessionInput is the part of an event a session needs.
type sessionInput struct {
	EventTime int64
	Source    string
}

// Day is the UTC day of an event time in microseconds (schemas.SessionDay):
// a session ends where Day changes.
func Day(eventTimeMicros int64) int64 { return schemas.SessionDay(eventTimeMicros) }

// keyByUserFn keys events by user_id and UTC day (userDayKey), and
// counts, and drops, those without a user_id.
type keyByUserFn struct{}

func (*keyByUserFn) ProcessElement(ctx context.Context, ev schemas.Event, emit func(string, sessionInput)) {
	if ev.UserID == nil {
		skippedNoUser.Inc(ctx, 1)
		return
	}
	emit(eventKey(ev), sessionInput{EventTime: ev.EventTime, Source: ev.Source})
}

// eventKey is the userDayKey of an event with a user_id.
func eventKey(ev schemas.Event) string {
	return userDayKey(*ev.UserID, Day(ev.EventTime))
}

// userDayKey is the key a session window merges under: the day, a colon
// and the user_id, so that sessions of one user on two days never merge.
func userDayKey(userID string, day int64) string {
	return strconv.FormatInt(day, 10) + ":" + userID
}

// userOfKey is the user_id of a userDayKey. A key without a day (state
// of a job from before sessions were cut at midnight) is the user_id.
func userOfKey(key string) string {
	day, user, ok := strings.Cut(key, ":")
	if _, err := strconv.ParseInt(day, 10, 64); !ok || err != nil {
		return key
	}
	return user
}

type paneSessionFn struct {
	GapSeconds int64
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64
}

func (fn *paneSessionFn) ProcessElement(ctx context.Context, pn typex.PaneInfo, key string, inputs func(*sessionInput) bool) schemas.SessionSpeed {
	return sessionRow(userOfKey(key), paneTotal(ctx, inputs), fn.GapSeconds, windowing.Pane(pn, fn.ProcessedAtMicros))
}

// paneTotal is the session total of a pane's events, which it counts in
// sessions_pane_events.
func paneTotal(ctx context.Context, inputs func(*sessionInput) bool) sessionTotal {
	var combine sessionFn
	acc := combine.CreateAccumulator()
	var in sessionInput
	for inputs(&in) {
		acc = combine.AddInput(acc, in)
	}
	paneEvents.Update(ctx, acc.Events)
	return combine.ExtractOutput(acc)
}

func sessionRow(userID string, total sessionTotal, gapSeconds int64, p schemas.Pane) schemas.SessionSpeed {
	return schemas.SessionSpeed{
		Session: schemas.Session{
			SessionStart:    total.Start,
			SessionEnd:      total.End,
			UserID:          userID,
			DurationSeconds: float64(total.End-total.Start) / 1e6,
			Events:          total.Events,
			Sources:         total.Sources,
			GapSeconds:      gapSeconds,
		},
		Pane: p,
	}
}
