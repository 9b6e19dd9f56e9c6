package streamjob

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/transforms/pubsubio"
	"github.com/railyard/railyard/transforms/sessions"
	"github.com/railyard/railyard/transforms/windowing"
)

// Config is one streaming run, from its flags.
type Config struct {
	config.Destination
	// Runner is --runner ("" is prism): the job's runner profile
	// (config.ProfileOf, see settings) follows from it.
	Runner string
	// Subscription is projects/P/subscriptions/S (--subscription).
	Subscription string
	// Lake is the lake root the raw messages are archived under (--lake).
	Lake string
	// StopAfterIdle ends the job once the subscription has been idle that
	// long and everything read is written (--stop_after_idle); 0 runs
	// for ever.
	StopAfterIdle time.Duration
	// ReadShards is how many pull loops read the subscription
	// (--read_shards).
	ReadShards int
	// TimestampAttribute names the message attribute that holds the event
	// time (--timestamp_attribute); empty: the publish time.
	TimestampAttribute string
	// EarlyFiring is how often an open window fires an early pane
	// (--early_firing); 0 fires only on time and late.
	EarlyFiring time.Duration
	// AllowedLateness is how long after its end a window still takes late
	// events (--allowed_lateness).
	AllowedLateness time.Duration
	// DedupHorizon is how long in event time an event_id is remembered
	// (--dedup_horizon).
	DedupHorizon time.Duration
	// SessionGap closes a user's session after this much inactivity
	// (--session_gap).
	SessionGap time.Duration
	// MaxFuture is how far ahead of its ingest time an event may be dated
	// and still be aggregated (--max_future); later-dated events are
	// written and archived, and left out of metrics and sessions
	// (windowing.LeaveOutFuture).
	MaxFuture time.Duration
	// ArchiveShards and ArchiveWindow shape the raw archive: files per
	// hour folder and window of ingest time (--archive_shards,
	// --archive_window).
	ArchiveShards int
	ArchiveWindow time.Duration
	// AckDeadline is the lease each message read gets, renewed while this
	// run works on it (--ack_deadline): how soon a killed run's messages
	// come back.
	AckDeadline time.Duration
	// AckExtension is how long a message read stays leased to this run at
	// most before Pub/Sub delivers it again (--ack_extension): longer than
	// an archive window.
	AckExtension time.Duration
	// MaxOutstandingMessages and MaxOutstandingBytes are the read's flow
	// control (--max_outstanding_messages, --max_outstanding_bytes): the
	// most messages, and bytes, one worker process holds read and not yet
	// acknowledged. A backlog enters memory a cap at a time.
	MaxOutstandingMessages int
	MaxOutstandingBytes    int64
	// Recover rebuilds, at start, the windows and sessions an earlier run
	// left open, from events_speed (--recover).
	Recover bool
	// RunID names this run in logs.
	RunID string
	// DryRun only builds the job and hands it to the runner, which
	// translates it without running it (Dataflow's --dry_run prints the
	// job): Run then calls nothing, neither to prepare the dataset nor to
	// read a recovery floor.
	DryRun bool
}

// Defaults of the flags.
const (
	DefaultReadShards      = 4
	DefaultEarlyFiring     = time.Second
	DefaultAllowedLateness = 2 * time.Minute
	DefaultDedupHorizon    = time.Hour
	DefaultSessionGap      = sessions.DefaultGap
	DefaultMaxFuture       = windowing.DefaultMaxFuture
	DefaultArchiveShards   = 4
	DefaultArchiveWindow   = time.Minute
	DefaultAckDeadline     = time.Minute
	DefaultAckExtension    = 10 * time.Minute
	// The flow-control caps: pubsubio's defaults, which let a process
	// hold what 2,500 messages/s bring in a minute's archive window and
	// its close (see pubsubio.DefaultMaxOutstandingMessages).
	DefaultMaxOutstandingMessages = pubsubio.DefaultMaxOutstandingMessages
	DefaultMaxOutstandingBytes    = pubsubio.DefaultMaxOutstandingBytes
)

// Bounds of --max_outstanding_messages and --max_outstanding_bytes: a cap
// under a thousand messages or 16 MiB would throttle any real stream (a
// Pub/Sub message may be 10 MB), and one beyond ten million messages or
// 64 GiB would not protect a worker's memory.
const (
	minOutstandingMessages       = 1000
	maxOutstandingMessages       = 10_000_000
	minOutstandingBytes    int64 = 16 << 20
	maxOutstandingBytes    int64 = 64 << 30
)

// DefaultConfig returns the flags' defaults.
func DefaultConfig() Config {
	return Config{
		Destination:     config.Destination{Dataset: "railyard"},
		Runner:          config.RunnerName(""),
		ReadShards:      DefaultReadShards,
		EarlyFiring:     DefaultEarlyFiring,
		AllowedLateness: DefaultAllowedLateness,
		DedupHorizon:    DefaultDedupHorizon,
		SessionGap:      DefaultSessionGap,
		MaxFuture:       DefaultMaxFuture,
		ArchiveShards:   DefaultArchiveShards,
		ArchiveWindow:   DefaultArchiveWindow,
		AckDeadline:     DefaultAckDeadline,
		AckExtension:    DefaultAckExtension,
		Recover:         true,

		MaxOutstandingMessages: DefaultMaxOutstandingMessages,
		MaxOutstandingBytes:    DefaultMaxOutstandingBytes,
	}
}

var subscriptionPattern = regexp.MustCompile(`^projects/[^/]+/subscriptions/[^/]+$`)

// Validate checks the configuration and returns every problem, joined,
// each worded for the person who typed the flags.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	set := c.settings()
	if err := c.Destination.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := config.ValidateRunner(c.Runner); err != nil {
		errs = append(errs, err)
	}
	if !subscriptionPattern.MatchString(c.Subscription) {
		add("--subscription=%q must be a full name: projects/PROJECT/subscriptions/NAME", c.Subscription)
	} else if err := set.read.Validate(); err != nil {
		add("--subscription=%q: %v", c.Subscription, err)
	}
	if err := config.ValidateLake(c.Lake); err != nil {
		errs = append(errs, err)
	} else if !strings.HasPrefix(c.Lake, "gs://") {
		add("--lake=%q must be a Cloud Storage root, gs://BUCKET[/prefix]: the archive is written with the Cloud Storage client", c.Lake)
	}
	if c.StopAfterIdle < 0 {
		add("--stop_after_idle=%v must not be negative (0 runs for ever)", c.StopAfterIdle)
	}
	if c.ReadShards < 1 || c.ReadShards > 1000 {
		add("--read_shards=%d must be between 1 and 1000", c.ReadShards)
	}
	if c.EarlyFiring < 0 {
		add("--early_firing=%v must not be negative (0 turns early panes off)", c.EarlyFiring)
	}
	if c.AllowedLateness < 0 {
		add("--allowed_lateness=%v must not be negative", c.AllowedLateness)
	}
	if c.DedupHorizon <= 0 {
		add("--dedup_horizon=%v must be positive: how long an event_id is remembered", c.DedupHorizon)
	}
	if c.SessionGap <= 0 || c.SessionGap%time.Second != 0 {
		add("--session_gap=%v must be a positive whole number of seconds", c.SessionGap)
	}
	if c.MaxFuture <= 0 || c.MaxFuture > windowing.MaxMaxFuture {
		add("--max_future=%v must be positive and at most %v: how far ahead of its ingest time an event may be dated and still be aggregated", c.MaxFuture, windowing.MaxMaxFuture)
	}
	if c.ArchiveShards < 1 || c.ArchiveShards > 999 {
		add("--archive_shards=%d must be between 1 and 999", c.ArchiveShards)
	}
	if c.ArchiveWindow < time.Second || c.ArchiveWindow > time.Hour {
		add("--archive_window=%v must be between 1s and 1h", c.ArchiveWindow)
	}
	if c.AckDeadline < 10*time.Second || c.AckDeadline > 10*time.Minute {
		add("--ack_deadline=%v must be between 10s and 10m (Pub/Sub's bounds)", c.AckDeadline)
	}
	if c.AckExtension < c.AckDeadline || c.AckExtension > time.Hour {
		add("--ack_extension=%v must be between --ack_deadline=%v and 1h", c.AckExtension, c.AckDeadline)
	} else if c.AckExtension < 2*c.ArchiveWindow+10*time.Second {
		add("--ack_extension=%v must be at least twice --archive_window=%v plus 10s: a message is acknowledged once its archive window is written", c.AckExtension, c.ArchiveWindow)
	}
	if c.MaxOutstandingMessages < minOutstandingMessages || c.MaxOutstandingMessages > maxOutstandingMessages {
		add("--max_outstanding_messages=%d must be between %d and %d: the most messages a worker holds read and not yet acknowledged", c.MaxOutstandingMessages, minOutstandingMessages, maxOutstandingMessages)
	}
	if c.MaxOutstandingBytes < minOutstandingBytes || c.MaxOutstandingBytes > maxOutstandingBytes {
		add("--max_outstanding_bytes=%d must be between %d (16 MiB) and %d (64 GiB): the most bytes of messages a worker holds read and not yet acknowledged", c.MaxOutstandingBytes, minOutstandingBytes, maxOutstandingBytes)
	}
	if err := c.timerRaceSafe(set.profile); err != nil {
		errs = append(errs, err)
	}
	if c.RunID == "" {
		add("streamjob: RunID is empty")
	} else if err := config.ValidateRunID(c.RunID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
