// Package sample generates Railyard's sample data: Pub/Sub-style messages
// of realistic events from several sources, with duplicates, late events
// and bad records of many classes, the raw lake the streaming job would
// archive from them, and a manifest of what a correct pipeline must make
// of them. Tests of both jobs compare their output with the manifest.
//
// Generation is deterministic: the same Config gives the same bytes, on
// any machine and Go release. Nothing reads the clock.
//
// The committed copy under testdata/ is checked against Generate by this
// package's tests; refresh it with
//
//	go test ./internal/sample -update
package sample

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/railyard/railyard/schemas"
)

// Config says what sample to generate. Generate fills zero fields with
// DefaultConfig's values (except Seed: 0 is a seed like any other).
type Config struct {
	// Seed selects the sample; the same Config always gives the same bytes.
	Seed int64
	// FirstDay is the first UTC day of event times (midnight, UTC).
	FirstDay time.Time
	// Days is how many days of event times the sample spans.
	Days int
	// Events is how many valid unique events the messages hold (the
	// import files of bare lines add a few more to the lake).
	Events int
	// Users is how many users have sessions (a few may stay idle).
	Users int
	// DuplicateRate is the share of extra records that repeat an earlier
	// event_id, relative to Events; negative for none.
	DuplicateRate float64
	// LateRate is the share of events published an hour or more after
	// their event time; negative for none (the IoT outage stays).
	LateRate float64
	// BadPerClass is how many records of each bad class the sample holds
	// (the oversize class holds one, to keep the files small); negative
	// for none.
	BadPerClass int
	// ImportFiles is how many lake files of bare event lines to add, as
	// if imported from another tool; negative for none.
	ImportFiles int
	// SessionGap is the inactivity gap that ends a session. Events of a
	// user's session are at most a quarter of it apart, and sessions at
	// least one and a half times it, so the sessions do not depend on how
	// a boundary case is decided.
	SessionGap time.Duration
}

// DefaultConfig returns the configuration of the committed sample.
func DefaultConfig() Config {
	return Config{
		Seed:          1,
		FirstDay:      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Days:          2,
		Events:        3000,
		Users:         300,
		DuplicateRate: 0.05,
		LateRate:      0.03,
		BadPerClass:   3,
		ImportFiles:   3,
		SessionGap:    schemas.DefaultSessionGap,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.FirstDay.IsZero() {
		c.FirstDay = d.FirstDay
	}
	if c.Days == 0 {
		c.Days = d.Days
	}
	if c.Events == 0 {
		c.Events = d.Events
	}
	if c.Users == 0 {
		c.Users = d.Users
	}
	if c.DuplicateRate == 0 {
		c.DuplicateRate = d.DuplicateRate
	}
	if c.LateRate == 0 {
		c.LateRate = d.LateRate
	}
	if c.BadPerClass == 0 {
		c.BadPerClass = d.BadPerClass
	}
	if c.ImportFiles == 0 {
		c.ImportFiles = d.ImportFiles
	}
	if c.SessionGap == 0 {
		c.SessionGap = d.SessionGap
	}
	c.DuplicateRate = max(c.DuplicateRate, 0)
	c.LateRate = max(c.LateRate, 0)
	c.BadPerClass = max(c.BadPerClass, 0)
	c.ImportFiles = max(c.ImportFiles, 0)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.FirstDay.Location() != time.UTC || !c.FirstDay.Equal(c.FirstDay.Truncate(24*time.Hour)) {
		errs = append(errs, fmt.Errorf("FirstDay %s is not midnight UTC", c.FirstDay))
	}
	if y := c.FirstDay.Year(); y < 2000 || c.FirstDay.AddDate(0, 0, c.Days+1).Year() > 2100 {
		errs = append(errs, fmt.Errorf("FirstDay %s and Days %d leave the contract's years 2000-2100", c.FirstDay.Format(time.DateOnly), c.Days))
	}
	if c.Days < 1 || c.Days > 31 {
		errs = append(errs, fmt.Errorf("Days is %d, want 1-31", c.Days))
	}
	if c.Events < 100 || c.Events > 1_000_000 {
		errs = append(errs, fmt.Errorf("Events is %d, want 100-1000000 (use Synthetic for more)", c.Events))
	}
	if c.Users < 1 || c.Users > c.Events {
		errs = append(errs, fmt.Errorf("Users is %d, want 1-%d", c.Users, c.Events))
	}
	if c.DuplicateRate > 0.5 || c.LateRate > 0.5 {
		errs = append(errs, fmt.Errorf("DuplicateRate %.2f and LateRate %.2f must be at most 0.5", c.DuplicateRate, c.LateRate))
	}
	if c.BadPerClass > 100 || c.ImportFiles > 24*c.Days {
		errs = append(errs, fmt.Errorf("BadPerClass %d (max 100) or ImportFiles %d (max %d) is too large", c.BadPerClass, c.ImportFiles, 24*c.Days))
	}
	if c.SessionGap < time.Minute || c.SessionGap > 6*time.Hour {
		errs = append(errs, fmt.Errorf("SessionGap %s, want 1m-6h", c.SessionGap))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sample: invalid config: %w", err)
	}
	return nil
}

// Kind is what a record is under the event contract.
type Kind string

// Kinds of records.
const (
	// KindEvent is a valid event whose event_id comes first: it wins.
	KindEvent Kind = "event"
	// KindDuplicate is a valid event whose event_id came before.
	KindDuplicate Kind = "duplicate"
	// KindBad breaks the contract: a dead letter.
	KindBad Kind = "bad"
)

// Kinds of duplicates: how an event_id came to be sent twice.
const (
	// DupRedelivery is Pub/Sub delivering the same message again: same
	// data, attributes, message_id and publish time.
	DupRedelivery = "redelivery"
	// DupRetry is the producer sending the same data again after a
	// timeout: a new message, published later.
	DupRetry = "producer_retry"
	// DupChanged is the producer sending the event again with a slightly
	// different payload (a corrected value, an added property, a moved
	// event time). The first by publish time wins.
	DupChanged = "changed_payload"
)

// Message is one Pub/Sub-style message of the sample, or one bare line of
// an import file, with the truth about it.
type Message struct {
	// Data is the message data, exactly as published.
	Data []byte
	// Attributes are the message attributes; nil for bare lines.
	Attributes map[string]string
	// MessageID is the Pub/Sub message id; "" for bare lines.
	MessageID string
	// PublishTime is the publish time in microseconds since the epoch,
	// UTC; 0 for bare lines.
	PublishTime int64

	// Kind is what the record is under the contract.
	Kind Kind
	// Class is the bad class of a KindBad record, or the duplicate kind
	// (DupRedelivery, DupRetry, DupChanged) of a KindDuplicate.
	Class string
	// Reason is the reason code a KindBad record dead-letters with.
	Reason string
	// EventID is the canonical event_id of a valid event or duplicate.
	EventID string

	seq int // creation order, to order messages published in the same microsecond
}

// Record returns the message as the pipeline receives it from Pub/Sub:
// its ingest time is its publish time.
func (m Message) Record() schemas.Record {
	return schemas.Record{
		Data:        m.Data,
		Attributes:  m.Attributes,
		MessageID:   m.MessageID,
		PublishTime: m.PublishTime,
		IngestTime:  m.PublishTime,
	}
}

// ImportFile is a lake file of bare lines, as if imported from another
// tool, or restored from an older archive: its lines are not messages.
type ImportFile struct {
	// Path is the file's path under the lake root, in the lake layout:
	// raw/dt=YYYY-MM-DD/hr=HH/<name>.jsonl.gz.
	Path string
	// Lines are the file's lines (without newlines), with their truth.
	Lines []Message
}

// Sample is a generated sample: the messages the streaming job reads, the
// extra files of the lake, and the truth about them.
type Sample struct {
	// Config is the configuration it was generated from, defaults filled in.
	Config Config
	// Messages are the Pub/Sub messages in publish order (messages
	// published in the same microsecond in the order they were sent).
	Messages []Message
	// Imports are the lake files of bare lines, sorted by path.
	Imports []ImportFile

	winners []Winner
}

// Generate makes the sample cfg describes.
func Generate(cfg Config) (*Sample, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := newGenerator(cfg)
	if err := g.run(); err != nil {
		return nil, fmt.Errorf("sample: generate with seed %d: %w", cfg.Seed, err)
	}
	s := &Sample{Config: cfg, Messages: g.messages, Imports: g.imports, winners: g.winners()}
	return s, nil
}

// Winners returns the valid unique events of the lake (the messages' and
// the import files'), in canonical form, sorted by event time and event_id.
func (s *Sample) Winners() []Winner { return slices.Clone(s.winners) }

// sortMessages puts messages in publish order, ties in creation order.
func sortMessages(ms []Message) {
	slices.SortStableFunc(ms, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.PublishTime, b.PublishTime), cmp.Compare(a.seq, b.seq))
	})
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
