package schemas

// DeadLetter is a record that did not become an event, or a row that
// could not be written, with its raw bytes: a row of dead_letter.
type DeadLetter struct {
	FailedAt    int64   `bq:"failed_at,TIMESTAMP" desc:"When the record failed. The table is partitioned by its day."`
	Layer       string  `bq:"layer" desc:"Which layer saw the failure: batch or speed."`
	Stage       string  `bq:"stage" desc:"The pipeline step that failed: read, decode or write_<table>."`
	Reason      string  `bq:"reason" desc:"Short, stable reason code (for example missing_event_id, invalid_json, too_large, write_failed)."`
	Error       string  `bq:"error" desc:"The full error message: what is wrong with the record."`
	Payload     []byte  `bq:"payload" desc:"The record's raw bytes exactly as received (Pub/Sub message data or lake line), up to 4 MiB; see error when cut."`
	SourceURI   *string `bq:"source_uri" desc:"Lake file and line (gs://bucket/path#L<line>) for the batch layer; NULL in the speed layer."`
	MessageID   *string `bq:"message_id" desc:"Pub/Sub message id, when the record came from Pub/Sub or an archive envelope."`
	PublishTime *int64  `bq:"publish_time,TIMESTAMP" desc:"Pub/Sub publish time, when known."`
	Attributes  *string `bq:"attributes,JSON" desc:"Pub/Sub message attributes as a JSON object, when there were any."`
}

// MaxDeadLetterPayload is the most of a record's bytes a dead letter keeps.
// BigQuery rows are limited to 10 MB; a record over the contract's 1 MiB
// limit is kept whole up to this size and cut beyond it, with the cut
// stated in the error.
const MaxDeadLetterPayload = 4 << 20

// MetricMinute is one one-minute event-time window of one
// (event_type, source, platform, country): a row of metrics_minute_batch.
type MetricMinute struct {
	WindowStart int64   `bq:"window_start,TIMESTAMP" desc:"Start of the one-minute event-time window (inclusive, UTC). The table is partitioned by its day."`
	WindowEnd   int64   `bq:"window_end,TIMESTAMP" desc:"End of the window (exclusive, UTC)."`
	EventType   string  `bq:"event_type" desc:"Event type of the events counted."`
	Source      string  `bq:"source" desc:"Source of the events counted."`
	Platform    *string `bq:"platform" desc:"Platform of the events counted; NULL for events that sent none."`
	Country     *string `bq:"country" desc:"Country of the events counted; NULL for events without a valid code."`
	Events      int64   `bq:"events" desc:"Number of distinct events (after deduplication by event_id) in the window."`
	Users       int64   `bq:"users" desc:"Number of distinct non-NULL user_id values in the window. Not additive across windows: roll up from events."`
	ValueSum    float64 `bq:"value_sum" desc:"Sum of value over the window's events (NULL values count as 0)."`
}

// Pane says which revision of a window a speed-layer row is. Each firing
// of a streaming window writes a new row; the latest pane is the answer.
type Pane struct {
	PaneIndex   int64  `bq:"pane_index" desc:"Index of the pane within one run of the streaming job (0 for the window's first firing in that run). The latest revision is the pane with the latest processed_at: a restarted job counts again from 0."`
	PaneTiming  string `bq:"pane_timing" desc:"EARLY (before the watermark passed the window), ON_TIME, LATE (revised by late data), or UNKNOWN (the runner did not say: Prism loses the pane of merged session windows)."`
	ProcessedAt int64  `bq:"processed_at,TIMESTAMP" desc:"When the speed layer computed this pane."`
}

// MetricMinuteSpeed is a row of metrics_minute_speed: a metric and the
// pane that produced it.
type MetricMinuteSpeed struct {
	MetricMinute
	Pane
}

// Session is one session of one user: events of the same user_id with no
// gap longer than the session gap between them. A row of sessions_batch.
type Session struct {
	SessionStart    int64    `bq:"session_start,TIMESTAMP" desc:"Event time of the session's first event (UTC). The table is partitioned by its day."`
	SessionEnd      int64    `bq:"session_end,TIMESTAMP" desc:"Event time of the session's last event (UTC)."`
	UserID          string   `bq:"user_id" desc:"The user whose session this is. Events without a user_id have no session."`
	DurationSeconds float64  `bq:"duration_seconds" desc:"session_end minus session_start, in seconds (0 for a single-event session)."`
	Events          int64    `bq:"events" desc:"Number of distinct events in the session."`
	Sources         []string `bq:"sources" desc:"The distinct sources the session's events came from, sorted."`
	GapSeconds      int64    `bq:"gap_seconds" desc:"The inactivity gap that closes a session, in seconds, as configured for the run."`
}

// SessionSpeed is a row of sessions_speed: a session and the pane that
// produced it.
type SessionSpeed struct {
	Session
	Pane
}

// BatchWatermark records, per batch table, the instant up to which the
// batch layer is complete: a row of batch_watermark.
type BatchWatermark struct {
	TableName     string `bq:"table_name" desc:"The batch table this watermark is for, for example events_batch."`
	CompleteUntil int64  `bq:"complete_until,TIMESTAMP" desc:"The batch layer holds every record of this table before this instant (exclusive): the end of the unbroken run of covered days (batch_coverage). It only moves forward. The views cut over per covered day; pipeline_health shows this watermark and its lag."`
	UpdatedAt     int64  `bq:"updated_at,TIMESTAMP" desc:"When the batch run that set this watermark finished."`
	RunID         string `bq:"run_id" desc:"The batch run that set it."`
}

// TableDeadLetterReplays names the table of dead-letter replays.
const TableDeadLetterReplays = "dead_letter_replays"

// Outcomes of one replay of one dead letter (dead_letter_replays.outcome).
const (
	// OutcomeReplayed: the record passes now and is in the lake, where the
	// batch run of its day takes it.
	OutcomeReplayed = "replayed"
	// OutcomeStillFailing: the record still fails; reason and error say
	// why now.
	OutcomeStillFailing = "still_failing"
)

// DeadLetterReplay is what one replay run did with one dead letter: a row
// of dead_letter_replays.
type DeadLetterReplay struct {
	DeadLetterID     string  `bq:"dead_letter_id" desc:"The dead letter replayed: hex SHA-256 of its layer, stage, reason, source_uri, message_id and payload (DeadLetterID); the dead_letters view shows the same id."`
	RunID            string  `bq:"run_id" desc:"The replay run."`
	ReplayedAt       int64   `bq:"replayed_at,TIMESTAMP" desc:"When the replay run started. The table is partitioned by its day."`
	Outcome          string  `bq:"outcome" desc:"replayed (the record passes now and is in the lake, for the batch run of its day) or still_failing."`
	Reason           *string `bq:"reason" desc:"Why the record still fails now: a reason code as in dead_letter.reason; NULL when replayed."`
	Error            *string `bq:"error" desc:"The full error of the replay; NULL when replayed."`
	LakeObject       *string `bq:"lake_object" desc:"The lake object the replayed record is in (gs://bucket/raw/dt=DAY/hr=HH/replay-<dead_letter_id>.jsonl.gz); NULL when still failing."`
	FailedAt         int64   `bq:"failed_at,TIMESTAMP" desc:"failed_at of the dead_letter row replayed."`
	DeadLetterReason string  `bq:"dead_letter_reason" desc:"reason of the dead_letter row replayed."`
}
