package pubsubio

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Defaults applied by Read to the zero fields of a Config.
const (
	DefaultShards             = 4
	DefaultMaxMessagesPerPull = 1000
	DefaultPollInterval       = time.Second
	DefaultPullTimeout        = time.Second
	DefaultMaxBundleMessages  = 10_000
	DefaultMaxBundleDuration  = 2 * time.Second
	DefaultIdleWatermarkLag   = 2 * time.Second
	DefaultAckDeadline        = 60 * time.Second
	DefaultAckExtension       = 600 * time.Second
	// DefaultMaxOutstandingMessages and DefaultMaxOutstandingBytes cap
	// what one process holds of a subscription with Read. The
	// Pub/Sub client's defaults (1,000 messages, 1e9 bytes) suit a
	// subscriber that acks within seconds; here a message waits for its
	// archive window (a minute by default) and the window's close, so the
	// process holds about rate × 80 s. 200,000 messages let a process
	// sustain 2,500 messages/s that way, twice what the local stack tops
	// out at on 2 cores, and, renewed every 30 s, cost about 3
	// ModifyAckDeadline requests a second. 512 MiB of payload is the
	// 200,000 messages at 2.6 KiB each, several times the events' usual
	// size; it binds only when messages are large, before they fill the
	// memory they are held in (several copies: the pull, the archive
	// window's GroupByKey, the writes).
	DefaultMaxOutstandingMessages       = 200_000
	DefaultMaxOutstandingBytes    int64 = 512 << 20
)

// Bounds of Config.AckDeadline: Pub/Sub's shortest subscription ack
// deadline (ModifyAckDeadline takes less, but a shorter lease would cut
// the subscription's own deadline short) and its longest ack deadline.
// Config.AckExtension runs from the shortest deadline to an hour, the
// Pub/Sub client's own longest lease extension.
const (
	minAckDeadline  = 10 * time.Second
	maxAckDeadline  = 600 * time.Second
	maxAckExtension = time.Hour
)

// maxShards is the most shards Validate allows.
const maxShards = 256

// Bounds of Config.MaxOutstandingMessages and MaxOutstandingBytes.
const (
	maxOutstandingMessages       = 10_000_000
	minOutstandingBytes    int64 = 1 << 20
	maxOutstandingBytes    int64 = 64 << 30
)

// Config configures Read.
type Config struct {
	// Project is the project the client bills to. Empty: the
	// subscription's own project.
	Project string
	// Subscription is the full name: projects/PROJECT/subscriptions/NAME.
	Subscription string
	// Shards is how many pull loops read the subscription in parallel
	// (default 4). Each is one restriction of the reading splittable DoFn.
	Shards int
	// MaxMessagesPerPull is the max_messages of each Pull (default 1000).
	MaxMessagesPerPull int
	// EventTimeAttribute, if set, names the attribute that holds the event
	// time, as RFC 3339 or integer epoch milliseconds. A message without
	// it, or with a value that does not parse or lies outside the years
	// 2000–2100 of the event contract, is timestamped with its publish time.
	EventTimeAttribute string
	// StopAfterIdle, if positive, ends the read once a shard's pulls have
	// returned nothing for that long (and no shard in the same worker has
	// read a message, nor had one acknowledged, in that time); the
	// pipeline then drains and ends. For local runs and tests. 0 reads for
	// ever.
	StopAfterIdle time.Duration
	// PollInterval is how long an idle shard waits before it pulls again
	// (default 1s).
	PollInterval time.Duration
	// PullTimeout bounds one Pull call; one that times out counts as an
	// empty pull (default 1s). Pub/Sub holds a Pull open while it has
	// nothing to send; messages it sends just as the call is cut short
	// come back after their ack deadline.
	PullTimeout time.Duration
	// MaxBundleMessages and MaxBundleDuration bound what one shard reads
	// before it checkpoints (defaults 10000 and 2s). A checkpoint ends the
	// shard's part of the bundle, which lets the runner commit it and
	// pass its Records on.
	MaxBundleMessages int
	MaxBundleDuration time.Duration
	// IdleWatermarkLag is how far the watermark stays behind the wall
	// clock: that much while the subscription is idle, at least that much
	// while it is not (default 2s). Room for the clock skew between Pub/Sub
	// and the worker, and for messages published just before an empty pull.
	IdleWatermarkLag time.Duration
	// MaxWatermarkSpeed, if positive, is the most event time the
	// watermark may advance per unit of wall-clock time, as when a job
	// catches up on a backlog or an idle subscription's watermark jumps to
	// the present. The streaming job sets it on Prism, where a window
	// collected while an early firing is pending fails the job. 0 leaves
	// the watermark free.
	MaxWatermarkSpeed float64
	// AckDeadline is the lease Read sets on each message right after its
	// Pull and renews every half of it while the message is not
	// acknowledged: how soon a crashed worker's messages come back
	// (default 60s; 10s to 600s, Pub/Sub's limits).
	AckDeadline time.Duration
	// AckExtension is how long Read keeps renewing a message's lease from
	// its Pull: the time the pipeline has to make it durable and ack it
	// (Ack) before Pub/Sub delivers it again (default 600s; from
	// AckDeadline to an hour).
	AckExtension time.Duration
	// MaxOutstandingMessages and MaxOutstandingBytes are Read's flow
	// control, as the Pub/Sub client's ReceiveSettings of the same
	// names: the most messages, and bytes of messages (their encoded
	// size), one worker process keeps pulled and not yet acknowledged,
	// nacked or lapsed, over all the shards of the Reads of the
	// subscription in that process (defaults 200,000 and 512 MiB; up to
	// 10,000,000 and from 1 MiB to 64 GiB). A shard pulls only into
	// room under both: the count never exceeds its cap; the bytes exceed
	// theirs only by what messages larger than the average so far bring
	// (see leaseBook), and one message always gets through.
	// A shard at the cap waits up to PollInterval for the pipeline to
	// acknowledge something, then checkpoints for capResumeDelay; it is
	// not idle (StopAfterIdle), and its watermark advances as an idle
	// shard's (see readFn.process).
	MaxOutstandingMessages int
	MaxOutstandingBytes    int64
}

// subscriptionRE is a full subscription name. Pub/Sub names start with a
// letter, are 3–255 characters of letters, digits and -_.~+%, and do not
// start with "goog".
var subscriptionRE = regexp.MustCompile(`^projects/([^/]+)/subscriptions/([A-Za-z][A-Za-z0-9\-_.~+%]{2,254})$`)

// projectRE is a project id (or a legacy domain-scoped one).
var projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.:\-]{0,98}[a-z0-9]$`)

// subscriptionProject returns the project part of a full subscription
// name, or "" if the name is not one.
func subscriptionProject(subscription string) string {
	m := subscriptionRE.FindStringSubmatch(subscription)
	if m == nil {
		return ""
	}
	return m[1]
}

// Validate reports every problem of the configuration, joined, each
// prefixed "pubsubio:". Read calls it while the pipeline is built.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("pubsubio: "+format, args...))
	}
	switch m := subscriptionRE.FindStringSubmatch(c.Subscription); {
	case c.Subscription == "":
		bad("Subscription is required (projects/PROJECT/subscriptions/NAME)")
	case m == nil:
		bad("Subscription %q is not a full subscription name projects/PROJECT/subscriptions/NAME (NAME: 3-255 letters, digits or -_.~+%%, starting with a letter)", c.Subscription)
	case !projectRE.MatchString(m[1]):
		bad("Subscription %q: %q is not a project id", c.Subscription, m[1])
	case strings.HasPrefix(m[2], "goog"):
		bad("Subscription %q: a name may not start with \"goog\"", c.Subscription)
	}
	if c.Project != "" && !projectRE.MatchString(c.Project) {
		bad("Project %q is not a project id", c.Project)
	}
	if c.Shards < 0 || c.Shards > maxShards {
		bad("Shards is %d; want 1 to %d (0 for the default, %d)", c.Shards, maxShards, DefaultShards)
	}
	if c.MaxMessagesPerPull < 0 {
		bad("MaxMessagesPerPull is %d; want a positive number (0 for the default, %d)", c.MaxMessagesPerPull, DefaultMaxMessagesPerPull)
	}
	if c.MaxBundleMessages < 0 {
		bad("MaxBundleMessages is %d; want a positive number (0 for the default, %d)", c.MaxBundleMessages, DefaultMaxBundleMessages)
	}
	if c.MaxOutstandingMessages < 0 || c.MaxOutstandingMessages > maxOutstandingMessages {
		bad("MaxOutstandingMessages is %d; want 1 to %d (0 for the default, %d)", c.MaxOutstandingMessages, maxOutstandingMessages, DefaultMaxOutstandingMessages)
	}
	if c.MaxOutstandingBytes != 0 && (c.MaxOutstandingBytes < minOutstandingBytes || c.MaxOutstandingBytes > maxOutstandingBytes) {
		bad("MaxOutstandingBytes is %d; want %d (1 MiB) to %d (64 GiB) (0 for the default, %d)", c.MaxOutstandingBytes, minOutstandingBytes, maxOutstandingBytes, DefaultMaxOutstandingBytes)
	}
	if c.MaxWatermarkSpeed < 0 || math.IsNaN(c.MaxWatermarkSpeed) || math.IsInf(c.MaxWatermarkSpeed, 0) {
		bad("MaxWatermarkSpeed is %v; want a finite positive number, or 0 for no limit", c.MaxWatermarkSpeed)
	}
	if c.EventTimeAttribute != strings.TrimSpace(c.EventTimeAttribute) {
		bad("EventTimeAttribute %q has leading or trailing spaces", c.EventTimeAttribute)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"StopAfterIdle", c.StopAfterIdle},
		{"PollInterval", c.PollInterval},
		{"PullTimeout", c.PullTimeout},
		{"MaxBundleDuration", c.MaxBundleDuration},
		{"IdleWatermarkLag", c.IdleWatermarkLag},
		{"AckDeadline", c.AckDeadline},
		{"AckExtension", c.AckExtension},
	} {
		if d.v < 0 {
			bad("%s is %v; want 0 or more", d.name, d.v)
		}
	}
	if c.AckDeadline > 0 && (c.AckDeadline < minAckDeadline || c.AckDeadline > maxAckDeadline) {
		bad("AckDeadline is %v; want %v to %v, Pub/Sub's limits (0 for the default, %v)", c.AckDeadline, minAckDeadline, maxAckDeadline, DefaultAckDeadline)
	}
	deadline := cmp.Or(c.AckDeadline, DefaultAckDeadline)
	if c.AckExtension > 0 && (c.AckExtension < deadline || c.AckExtension > maxAckExtension) {
		bad("AckExtension is %v; want the ack deadline (%v) to %v (0 for the default, %v)", c.AckExtension, deadline, maxAckExtension, DefaultAckExtension)
	}
	return errors.Join(errs...)
}

// withDefaults returns the configuration with its zero fields set.
func (c Config) withDefaults() Config {
	if c.Project == "" {
		c.Project = subscriptionProject(c.Subscription)
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.Shards, DefaultShards)
	setInt(&c.MaxMessagesPerPull, DefaultMaxMessagesPerPull)
	setInt(&c.MaxBundleMessages, DefaultMaxBundleMessages)
	setDur(&c.PollInterval, DefaultPollInterval)
	setDur(&c.PullTimeout, DefaultPullTimeout)
	setDur(&c.MaxBundleDuration, DefaultMaxBundleDuration)
	setDur(&c.IdleWatermarkLag, DefaultIdleWatermarkLag)
	setDur(&c.AckDeadline, DefaultAckDeadline)
	setDur(&c.AckExtension, DefaultAckExtension)
	setInt(&c.MaxOutstandingMessages, DefaultMaxOutstandingMessages)
	if c.MaxOutstandingBytes == 0 {
		c.MaxOutstandingBytes = DefaultMaxOutstandingBytes
	}
	return c
}
