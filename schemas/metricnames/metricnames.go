// Package metricnames declares every Beam metric Railyard emits: its name
// (or the pattern of a family of names, such as rows_written_<table>), its
// kind and what it counts. The names are contracts, like table names:
// Cloud Monitoring alert policies select counters by name, the local runner
// prints some, and the jobs log them. Code that creates a metric takes its
// name from here:
//
//	beam.NewCounter(metricnames.Namespace, metricnames.RecordsIn)
//	beam.NewCounter(metricnames.Namespace, metricnames.RowsWritten(table))
//
// All lists them, for tests and documentation.
package metricnames

import (
	"fmt"
	"slices"
	"strings"

	"github.com/railyard/railyard/schemas"
)

// Namespace is the Beam metrics namespace of every Railyard metric.
const Namespace = "railyard"

// Names of single metrics, in Namespace. All says what each counts.
const (
	RecordsIn             = "records_in"
	EventsValid           = "events_valid"
	DeadLetters           = "dead_letters"
	EventLagMs            = "event_lag_ms"
	Duplicates            = "duplicates"
	LakeFilesRead         = "lake_files_read"
	LakeLinesRead         = "lake_lines_read"
	LakeBlocksRead        = "lake_blocks_read"
	LakeFilesWritten      = "lake_files_written"
	LakeRecordsArchived   = "lake_records_archived"
	FutureEvents          = "future_events"
	SessionsSkippedNoUser = "sessions_skipped_no_user"
	SessionsPaneEvents    = "sessions_pane_events"
	WriteRetries          = "write_retries"
	WriteFailed           = "write_failed"
	// SinkUnavailableRetries growing for minutes is an outage that holds
	// the speed layer: nothing is acknowledged meanwhile.
	SinkUnavailableRetries    = "sink_unavailable_retries"
	RecoveredEvents           = "recovered_events"
	PubsubMessagesRead        = "pubsub_messages_read"
	PubsubAcks                = "pubsub_acks"
	PubsubAckFailures         = "pubsub_ack_failures"
	PubsubPullsEmpty          = "pubsub_pulls_empty"
	PubsubPullErrors          = "pubsub_pull_errors"
	PubsubFlowControlWaits    = "pubsub_flow_control_waits"
	PubsubOutstandingMessages = "pubsub_outstanding_messages"
	ReplayReplayed            = "replay_replayed"
	ReplayStillFailing        = "replay_still_failing"
	ReplayAlreadyInLake       = "replay_already_in_lake"
)

// Prefixes of the families of names; the functions below build the names.
const (
	deadLetterPrefix            = "dead_letter_"
	rowsWrittenPrefix           = "rows_written_"
	lateEventsPrefix            = "late_events_"
	tooLatePrefix               = "too_late_"
	recoveredFloorSkippedPrefix = "recovered_floor_skipped_"
	windowClosingPrefix         = "window_closing_"
	pubsubShardReadPrefix       = "pubsub_messages_read_shard_"
	benchPrefix                 = "bench_"
)

// DeadLetter is the counter of the records decode rejects with reason, one
// of DecodeReasons.
func DeadLetter(reason string) string { return deadLetterPrefix + reason }

// RowsWritten is the counter of the rows the BigQuery sinks wrote to
// table, one of WrittenTables.
func RowsWritten(table string) string { return rowsWrittenPrefix + table }

// LateEvents is the streaming job's counter of the events that arrived
// after their window of aggregation (one of Aggregations) ended.
func LateEvents(aggregation string) string { return lateEventsPrefix + aggregation }

// TooLate is the streaming job's counter of the events left out of
// aggregation because they arrived after the allowed lateness.
func TooLate(aggregation string) string { return tooLatePrefix + aggregation }

// RecoveredFloorSkipped is the streaming job's counter of the events left
// out of aggregation because they are before a restarted job's recovery
// floor.
func RecoveredFloorSkipped(aggregation string) string {
	return recoveredFloorSkippedPrefix + aggregation
}

// WindowClosing is the streaming job's counter of the events left out of
// aggregation because their window closes within the close margin.
func WindowClosing(aggregation string) string { return windowClosingPrefix + aggregation }

// PubsubShardRead is the counter of the messages read shard of the Pub/Sub
// read has read: pubsub_messages_read_shard_07.
func PubsubShardRead(shard int) string { return fmt.Sprintf(pubsubShardReadPrefix+"%02d", shard) }

// Bench is a counter of the benchmark (runners/bench), one of BenchCounts;
// the jobs never emit it.
func Bench(count string) string { return benchPrefix + count }

// DecodeReasons are the reasons decode can give a dead letter: those of
// schemas.ParseEvent and schemas.NewDeadLetter's default.
var DecodeReasons = []string{
	schemas.ReasonBadEventID, schemas.ReasonBadTime, schemas.ReasonBadType, schemas.ReasonBadProperties,
	schemas.ReasonBadSessionID, schemas.ReasonBadSource, schemas.ReasonBadUserID, schemas.ReasonBadValue,
	schemas.ReasonDuplicateField, schemas.ReasonEmpty, schemas.ReasonTimeOutOfRange, schemas.ReasonInvalidJSON,
	schemas.ReasonInvalidUTF8, schemas.ReasonMissingEventID, schemas.ReasonMissingTime, schemas.ReasonMissingType,
	schemas.ReasonMissingSource, schemas.ReasonNotObject, schemas.ReasonTooDeep, schemas.ReasonTooLarge,
	schemas.ReasonUnreadableInput,
}

// WrittenTables are the tables the jobs write through the BigQuery sinks.
var WrittenTables = []string{
	schemas.TableDeadLetter, schemas.TableEventsBatch, schemas.TableEventsSpeed, schemas.TableMetricsMinuteBatch,
	schemas.TableMetricsMinuteSpeed, schemas.TableSessionsBatch, schemas.TableSessionsSpeed,
}

// The streaming job's aggregations, as its lateness counters name them.
const (
	AggregationMetrics  = "metrics"
	AggregationSessions = "sessions"
)

// Aggregations are the streaming job's aggregations.
var Aggregations = []string{AggregationMetrics, AggregationSessions}

// BenchCounts are what the benchmark counts.
var BenchCounts = []string{"unique", "dead", "metric_rows", "session_rows"}

// Kind is a kind of Beam metric.
type Kind string

// The kinds of metric Railyard emits.
const (
	Counter      Kind = "counter"
	Distribution Kind = "distribution"
)

// Metric is one metric, or a family of names with one parameter.
type Metric struct {
	// Name is the name, or a family's pattern: its prefix, then its
	// parameter in angle brackets (rows_written_<table>).
	Name string
	Kind Kind
	// Values are the values a family's parameter takes; nil when it is a
	// number of Digits or more digits.
	Values []string
	Digits int
	// Package is the package that creates it, relative to the module.
	Package string
	// Meaning says what it counts, in one line.
	Meaning string
	// BenchOnly is set on what only the benchmark emits: no alert may
	// watch it.
	BenchOnly bool
}

// Family reports whether m is a family of names.
func (m Metric) Family() bool { return strings.HasSuffix(m.Name, ">") }

// Matches reports whether name is m's name or one of its family's names.
func (m Metric) Matches(name string) bool {
	prefix, _, family := strings.Cut(m.Name, "<")
	if !family {
		return name == m.Name
	}
	param, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if m.Values != nil {
		return slices.Contains(m.Values, param)
	}
	return len(param) >= m.Digits && strings.Trim(param, "0123456789") == ""
}

const (
	decodePkg   = "transforms/decode"
	lakePkg     = "transforms/lake"
	bqsinkPkg   = "transforms/bqsink"
	streamPkg   = "pipelines/streaming/streamjob"
	pubsubioPkg = "transforms/pubsubio"
	replayPkg   = "pipelines/replay/replayjob"
)

var all = []Metric{
	{Name: RecordsIn, Kind: Counter, Package: decodePkg, Meaning: "records decode read: events_valid + dead_letters"},
	{Name: EventsValid, Kind: Counter, Package: decodePkg, Meaning: "records that are valid events"},
	{Name: DeadLetters, Kind: Counter, Package: decodePkg, Meaning: "records that break the event contract (decode's dead letters only)"},
	{Name: deadLetterPrefix + "<reason>", Kind: Counter, Values: DecodeReasons, Package: decodePkg, Meaning: "dead_letters by reason code"},
	{Name: EventLagMs, Kind: Distribution, Package: decodePkg, Meaning: "ingest time minus event time of valid events, in milliseconds"},
	{Name: Duplicates, Kind: Counter, Package: "transforms/dedup", Meaning: "events dropped as duplicates of an event_id"},
	{Name: LakeFilesRead, Kind: Counter, Package: lakePkg, Meaning: "lake files the batch job read"},
	{Name: LakeLinesRead, Kind: Counter, Package: lakePkg, Meaning: "lake lines the batch job read, those with a broken envelope included"},
	{Name: LakeBlocksRead, Kind: Counter, Package: lakePkg, Meaning: "blocks the batch job read plain lake files over 64 MiB in (each block is read on its own, by any worker)"},
	{Name: LakeFilesWritten, Kind: Counter, Package: lakePkg, Meaning: "lake files the streaming job archived"},
	{Name: LakeRecordsArchived, Kind: Counter, Package: lakePkg, Meaning: "raw messages the streaming job archived to the lake"},
	{Name: FutureEvents, Kind: Counter, Package: "transforms/windowing", Meaning: "events dated too far ahead of their ingest time, left out of the aggregations"},
	{Name: SessionsSkippedNoUser, Kind: Counter, Package: "transforms/sessions", Meaning: "events without user_id, hence in no session"},
	{Name: SessionsPaneEvents, Kind: Distribution, Package: "transforms/sessions", Meaning: "events a pane of a session reads"},
	{Name: rowsWrittenPrefix + "<table>", Kind: Counter, Values: WrittenTables, Package: bqsinkPkg, Meaning: "rows written to table"},
	{Name: WriteRetries, Kind: Counter, Package: bqsinkPkg, Meaning: "BigQuery calls retried"},
	{Name: WriteFailed, Kind: Counter, Package: bqsinkPkg, Meaning: "rows BigQuery refused, sent to dead_letter"},
	{Name: SinkUnavailableRetries, Kind: Counter, Package: bqsinkPkg, Meaning: "appends retried while BigQuery is unavailable to the streaming job"},
	{Name: RecoveredEvents, Kind: Counter, Package: streamPkg, Meaning: "events a restarted streaming job read back from events_speed"},
	{Name: lateEventsPrefix + "<aggregation>", Kind: Counter, Values: Aggregations, Package: streamPkg, Meaning: "events that arrived after their window ended"},
	{Name: tooLatePrefix + "<aggregation>", Kind: Counter, Values: Aggregations, Package: streamPkg, Meaning: "events left out: arrived after the allowed lateness"},
	{Name: recoveredFloorSkippedPrefix + "<aggregation>", Kind: Counter, Values: Aggregations, Package: streamPkg, Meaning: "events left out: before a restarted job's recovery floor"},
	{Name: windowClosingPrefix + "<aggregation>", Kind: Counter, Values: Aggregations, Package: streamPkg, Meaning: "events left out: their window closes within the close margin"},
	{Name: PubsubMessagesRead, Kind: Counter, Package: pubsubioPkg, Meaning: "Pub/Sub messages read"},
	{Name: pubsubShardReadPrefix + "<shard>", Kind: Counter, Digits: 2, Package: pubsubioPkg, Meaning: "Pub/Sub messages read by one shard"},
	{Name: PubsubAcks, Kind: Counter, Package: pubsubioPkg, Meaning: "Pub/Sub messages acknowledged"},
	{Name: PubsubAckFailures, Kind: Counter, Package: pubsubioPkg, Meaning: "Pub/Sub messages an acknowledgement failed for"},
	{Name: PubsubPullsEmpty, Kind: Counter, Package: pubsubioPkg, Meaning: "pulls that returned no message"},
	{Name: PubsubPullErrors, Kind: Counter, Package: pubsubioPkg, Meaning: "pulls that failed"},
	{Name: PubsubFlowControlWaits, Kind: Counter, Package: pubsubioPkg, Meaning: "parts of a shard that waited in vain at the flow-control cap"},
	{Name: PubsubOutstandingMessages, Kind: Distribution, Package: pubsubioPkg, Meaning: "messages held (pulled, not yet acknowledged) at the end of each part"},
	{Name: ReplayReplayed, Kind: Counter, Package: replayPkg, Meaning: "dead letters a replay found passing now and wrote to the lake (a dry run: would pass)"},
	{Name: ReplayStillFailing, Kind: Counter, Package: replayPkg, Meaning: "dead letters a replay found still failing"},
	{Name: ReplayAlreadyInLake, Kind: Counter, Package: replayPkg, Meaning: "replayed records whose lake object an earlier, interrupted replay had written"},
	{Name: benchPrefix + "<count>", Kind: Counter, Values: BenchCounts, Package: "runners/bench", Meaning: "what the benchmark counts", BenchOnly: true},
}

// All returns every metric, the benchmark's included.
func All() []Metric { return slices.Clone(all) }

// Lookup returns the metric or family name belongs to.
func Lookup(name string) (Metric, bool) {
	for _, m := range all {
		if m.Matches(name) {
			return m, true
		}
	}
	return Metric{}, false
}
