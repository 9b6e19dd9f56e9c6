// Package dedup removes duplicate events: two records with the same
// event_id are one event, and the first by ingest time wins.
//
// Every duplicate removed is counted in the counter railyard/duplicates, so
// that reconciliation holds exactly:
//
//	records in = unique events + duplicates + dead letters
//
// The batch job dedups exactly over its whole input (Mode Exact); the
// streaming job keeps the first arrival of each event_id for a horizon of
// event time (Mode Streaming). See Mode for what "first" means in each.
package dedup

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// Mode says how ByEventID finds the first record of an event.
type Mode int

const (
	// Exact dedups over the whole input: of all records with one event_id,
	// the one with the earliest IngestTime wins, ties broken by MessageID,
	// then SourceURI (NULL first), then the rest of the record, so the
	// output is the same on every run and in any input order. Every record
	// must have been seen before any is emitted, so Exact is for bounded
	// input: the batch job.
	Exact Mode = iota
	// Streaming emits the first record of an event_id to arrive, at once,
	// and drops every later arrival of it until the watermark passes the
	// first one's ingest time (its event time when it has none) plus
	// Config.Horizon. Here "first by ingest time" means
	// first to arrive: a redelivery is dropped even if its IngestTime is
	// earlier. A redelivery after the horizon is emitted again; the
	// serving views remove it.
	Streaming
)

func (m Mode) String() string {
	switch m {
	case Exact:
		return "Exact"
	case Streaming:
		return "Streaming"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config configures ByEventID. The zero Config is the batch job's: Exact.
type Config struct {
	Mode Mode
	// Horizon is, in Streaming mode, how long in event time the first
	// arrival of an event_id is remembered: from its ingest time (its
	// event time when it has none), as the watermark sees it, whatever
	// date the event claims. It must be positive in Streaming mode and
	// zero in Exact mode, which remembers everything.
	Horizon time.Duration
}

// Validate reports whether the configuration can build a pipeline.
func (c Config) Validate() error {
	switch c.Mode {
	case Exact:
		if c.Horizon != 0 {
			return fmt.Errorf("Horizon is %v, but Exact mode dedups the whole input and takes no horizon; use Streaming mode or leave Horizon zero", c.Horizon)
		}
	case Streaming:
		if c.Horizon <= 0 {
			return fmt.Errorf("Horizon is %v, but Streaming mode needs a positive Horizon (for example 24h)", c.Horizon)
		}
	default:
		return fmt.Errorf("unknown Mode %v", c.Mode)
	}
	return nil
}

// ErrInvalidConfig is wrapped by the panic of ByEventID on a bad Config.
var ErrInvalidConfig = errors.New("dedup: invalid config")

// duplicates counts the records dropped as duplicates of an event.
var duplicates = beam.NewCounter(metricnames.Namespace, metricnames.Duplicates)

// ByEventID takes a PCollection<schemas.Event> and returns a
// PCollection<schemas.Event> with one record per event_id, in the global
// window; each record keeps its event time as its timestamp. Records
// dropped are counted in railyard/duplicates. cfg.Mode picks how the first
// record is found (see Mode). It panics, while the pipeline is built, if
// cfg is not valid.
func ByEventID(s beam.Scope, events beam.PCollection, cfg Config) beam.PCollection {
	s = s.Scope("dedup.ByEventID")
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	global := beam.WindowInto(s, window.NewGlobalWindows(), events)
	if cfg.Mode == Streaming {
		first, _ := firstArrivals(s, global, cfg.Horizon)
		return first
	}
	return earliestIngests(s, global)
}

// FirstArrivals is ByEventID in Streaming mode that also returns what it
// drops: unique, a PCollection<schemas.Event>, holds the first arrival of
// each event_id within horizon; dropped, a PCollection<Dropped>, every
// later arrival with the message_id of the first. Both are in the global
// window. The streaming job acknowledges a dropped record's Pub/Sub
// message once the record is archived, since a duplicate has nothing more
// to become, unless it is a redelivery of the first arrival's own
// message, which waits for the first arrival's write. Events of Layer
// schemas.LayerRecovered (the state a restarted job recovers) are
// deduplicated like the others but never counted as duplicates: they are
// not records of this run.
func FirstArrivals(s beam.Scope, events beam.PCollection, horizon time.Duration) (unique, dropped beam.PCollection) {
	s = s.Scope("dedup.FirstArrivals")
	cfg := Config{Mode: Streaming, Horizon: horizon}
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	global := beam.WindowInto(s, window.NewGlobalWindows(), events)
	return firstArrivals(s, global, horizon)
}

// before reports whether a wins over b as the first record of an event in
// Exact mode. It is a total order on records: by IngestTime, then
// MessageID, then SourceURI (NULL first), then every other field, so that
// the winner does not depend on the order the records are seen in.
func before(a, b schemas.Event) bool {
	return compareRecords(a, b) < 0
}

func compareRecords(a, b schemas.Event) int {
	return cmp.Or(
		cmp.Compare(a.IngestTime, b.IngestTime),
		comparePtr(a.MessageID, b.MessageID),
		comparePtr(a.SourceURI, b.SourceURI),
		cmp.Compare(a.EventTime, b.EventTime),
		cmp.Compare(a.EventType, b.EventType),
		cmp.Compare(a.Source, b.Source),
		comparePtr(a.Platform, b.Platform),
		comparePtr(a.UserID, b.UserID),
		comparePtr(a.SessionID, b.SessionID),
		comparePtr(a.Country, b.Country),
		comparePtr(a.Value, b.Value),
		comparePtr(a.Properties, b.Properties),
		comparePtr(a.Extra, b.Extra),
		cmp.Compare(a.Layer, b.Layer),
	)
}

// comparePtr orders nil before any value.
func comparePtr[T cmp.Ordered](a, b *T) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}
