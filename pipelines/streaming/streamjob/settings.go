package streamjob

import (
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/transforms/bqsink"
	"github.com/railyard/railyard/transforms/pubsubio"
)

// settings are the plain values the steps of one run get, made once, in
// Config.settings, from the run's Config and its runner profile
// (config.ProfileOf): the read, the acknowledgement rule, the triggers,
// the close margin and the sink. No transform asks which runner or which
// BigQuery server it is on.
type settings struct {
	profile config.Profile
	// nativeRead reads with Dataflow's own Pub/Sub source, which
	// acknowledges by itself; otherwise pubsubio.Read, and the pipeline
	// acknowledges each message once it is archived and written.
	nativeRead bool
	read       pubsubio.Config
	// closeMargin: see Config.closeMargin.
	closeMargin     time.Duration
	metricsTrigger  trigger.Trigger
	sessionsTrigger trigger.Trigger
	// sessionGroupings splits the sessions over independent groupings
	// (sessions.Config.Groupings) where the runner's cost of a grouping's
	// bundle grows with every session window it holds.
	sessionGroupings int
	sink             bqsink.Config
}

// prismSessionGroupings: on Prism each of 16 groupings holds 1/16 of the
// open sessions, so a round of firings costs 1/16 of one grouping's
// (runners/KNOWN_ISSUES.md).
const prismSessionGroupings = 16

// settings derives the run's settings from c and its runner profile.
func (c Config) settings() settings {
	p := config.ProfileOf(c.Runner)
	sink := c.Sink(c.RunID)
	sink.Server = p.Sink
	read := pubsubio.Config{
		Project:            c.Project,
		Subscription:       c.Subscription,
		Shards:             c.ReadShards,
		EventTimeAttribute: c.TimestampAttribute,
		StopAfterIdle:      c.StopAfterIdle,
		MaxWatermarkSpeed:  c.watermarkSpeed(p),
		AckDeadline:        c.AckDeadline,
		AckExtension:       c.AckExtension,

		MaxOutstandingMessages: c.MaxOutstandingMessages,
		MaxOutstandingBytes:    c.MaxOutstandingBytes,
	}
	metricsTrigger := c.metricsTrigger()
	sessionsTrigger := metricsTrigger
	if !p.SessionEarlyFirings {
		// A session then appears when it closes.
		sessionsTrigger = trigger.AfterEndOfWindow().LateFiring(trigger.Always())
	}
	set := settings{
		profile:         p,
		nativeRead:      p.NativePubSub,
		read:            read,
		closeMargin:     c.closeMargin(p),
		metricsTrigger:  metricsTrigger,
		sessionsTrigger: sessionsTrigger,
		sink:            sink,
	}
	if p.StateScanPerWindow {
		set.sessionGroupings = prismSessionGroupings
	}
	return set
}

// metricsTrigger fires a window early every EarlyFiring, on time, and
// once per late event.
func (c Config) metricsTrigger() trigger.Trigger {
	t := trigger.AfterEndOfWindow().LateFiring(trigger.Always())
	if c.EarlyFiring > 0 {
		t = t.EarlyFiring(trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(c.EarlyFiring)))
	}
	return t
}

// On a runner with the early-timer race (config.Profile.EarlyTimerRace,
// Prism v2.77.0), raceLatenessFactor is how many early-firing delays the
// allowed lateness must hold, and minRaceLateness its floor: see
// timerRaceSafe.
const (
	raceLatenessFactor = 10
	minRaceLateness    = 30 * time.Second
	// minRaceIdleFirings is how many early-firing delays the job must
	// stay idle before it stops: when it stops, the watermark jumps to the
	// end of time and every window is collected at once, so the early
	// firings of the last events must have run by then, however far
	// behind a busy runner is. Three delays were not enough on 2 busy
	// cores (TestPrismEarlyFiringCrash).
	minRaceIdleFirings = 10
	// minCloseMargin is the shortest closeMargin.
	minCloseMargin = 10 * time.Second
)

// racesTimers reports whether the run meets the early-timer race: its
// runner has it and the run fires early panes.
func (c Config) racesTimers(p config.Profile) bool {
	return p.EarlyTimerRace && c.EarlyFiring > 0
}

// timerRaceSafe keeps a run away from the early-timer race: the job fails
// when a window's state is collected while an early-firing
// (processing-time) timer is still pending for it. A window is collected
// once the watermark passes its end plus the allowed lateness, and its
// early timer fires at most EarlyFiring after its last element. So the
// lateness must hold many early-firing delays (the measured mitigation,
// runners/KNOWN_ISSUES.md), the watermark must not outrun the wall clock
// by more than lateness/EarlyFiring (the job caps its speed, see
// watermarkSpeed), and a run that stops when idle must stay idle longer
// than a firing delay.
func (c Config) timerRaceSafe(p config.Profile) error {
	if !c.racesTimers(p) {
		return nil
	}
	var errs []error
	if need := max(minRaceLateness, raceLatenessFactor*c.EarlyFiring); c.AllowedLateness < need {
		errs = append(errs, fmt.Errorf("--allowed_lateness=%v is too short for --early_firing=%v on Prism: it must be at least %v "+
			"(Prism v2.77.0 fails the job when a window closes while an early firing is pending); raise it or set --early_firing=0", c.AllowedLateness, c.EarlyFiring, need))
	}
	if c.StopAfterIdle > 0 && c.StopAfterIdle < minRaceIdleFirings*c.EarlyFiring {
		errs = append(errs, fmt.Errorf("--stop_after_idle=%v must be at least %d × --early_firing=%v on Prism, so no early firing is pending when the job ends", c.StopAfterIdle, minRaceIdleFirings, c.EarlyFiring))
	}
	return errors.Join(errs...)
}

// closeMargin is how long before its window closes (its end plus the
// allowed lateness, by the wall clock) an event stops being taken by the
// metrics aggregation on a runner with the early-timer race, 0 elsewhere.
// An event taken by a window sets that window's early-firing timer, due
// one EarlyFiring later; the window must not close before it has fired.
// The watermark never runs ahead of the wall clock (it follows publish
// times), so a window that takes an event closes no sooner than margin
// after it: a busy runner has margin - EarlyFiring to run the timer.
// Without the margin, events a producer sends about the allowed lateness
// after their minute can crash Prism within seconds
// (TestPrismEarlyFiringCrash, case "no close margin"). Sessions have no
// early firings there and need no margin.
func (c Config) closeMargin(p config.Profile) time.Duration {
	if !c.racesTimers(p) {
		return 0
	}
	return min(max(minCloseMargin, raceLatenessFactor*c.EarlyFiring), c.AllowedLateness/2)
}

// watermarkSpeed is the most event time the Pub/Sub read's watermark may
// advance per second of wall clock, 0 for no limit. With the early-timer
// race, a window whose early timer was set at most 3 firing delays ago
// (room for a busy runner) must not be collected yet: the watermark may
// cover at most the allowed lateness in that time. Elsewhere the
// watermark runs free, which lets a job catch up on a backlog at full
// speed.
func (c Config) watermarkSpeed(p config.Profile) float64 {
	if !c.racesTimers(p) {
		return 0
	}
	return float64(c.AllowedLateness) / float64(3*c.EarlyFiring)
}
