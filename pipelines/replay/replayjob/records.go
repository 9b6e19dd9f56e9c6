package replayjob

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/railyard/railyard/schemas"
)

// ReasonNotReplayable is the reason of a dead letter whose payload is not
// a record a replay can bring back: a whole lake object (empty_file,
// not_gzip, corrupt_gzip), or a row of a table other than events (an
// aggregate, which the batch run of its day recomputes).
const ReasonNotReplayable = "not_replayable"

// replayKeyPrefix marks the source_uri a record carries through decode:
// it holds the record's dead-letter id, so that decode's events and dead
// letters join back to their dead letter.
const replayKeyPrefix = "replay:"

// fileReasons are the read-stage reasons whose payload is a lake
// object's bytes.
var fileReasons = map[string]bool{schemas.ReasonEmptyFile: true, schemas.ReasonNotGzip: true, schemas.ReasonCorruptGzip: true}

// recordOf returns the record a dead letter holds, as the jobs received
// it: a decode dead letter's payload with its message id, publish time
// and attributes; a read dead letter's payload read as a lake line; a
// write_events_<layer> dead letter's row turned back into an event
// under the contract. An error is why the dead letter cannot be
// replayed; schemas.ReasonOf gives its reason.
func recordOf(dl schemas.DeadLetter) (schemas.Record, error) {
	rec := schemas.Record{Data: dl.Payload}
	if dl.MessageID != nil {
		rec.MessageID = *dl.MessageID
	}
	if dl.PublishTime != nil {
		rec.PublishTime = *dl.PublishTime
	}
	if dl.Attributes != nil {
		if err := json.Unmarshal([]byte(*dl.Attributes), &rec.Attributes); err != nil {
			return rec, &schemas.ContractError{Reason: ReasonNotReplayable, Msg: fmt.Sprintf("attributes are not a JSON object of strings: %v", err)}
		}
	}
	switch {
	case dl.Stage == schemas.StageDecode:
	case dl.Stage == schemas.StageRead && fileReasons[dl.Reason]:
		return rec, &schemas.ContractError{Reason: ReasonNotReplayable, Msg: "the payload is a lake object's bytes, not a record: repair or move the object, then run the batch job of its day"}
	case dl.Stage == schemas.StageRead:
		line, err := schemas.ParseLakeLine(dl.Payload, "", 0)
		if err != nil {
			return rec, err
		}
		if line.MessageID != "" {
			rec = line
		}
	case dl.Stage == "write_"+schemas.TableEventsBatch || dl.Stage == "write_"+schemas.TableEventsSpeed:
		var err error
		if rec, err = eventRowRecord(dl, rec); err != nil {
			return rec, err
		}
	default:
		return rec, &schemas.ContractError{Reason: ReasonNotReplayable, Msg: fmt.Sprintf("stage %s: only events and the records behind them are replayed; the batch run of a day recomputes its aggregates", dl.Stage)}
	}
	rec.IngestTime = rec.PublishTime
	if rec.IngestTime == 0 {
		rec.IngestTime = dl.FailedAt
	}
	return rec, nil
}

// eventRow is an events_batch or events_speed row as a write_<table>
// dead letter holds it: JSON keyed by column name (bqsink), JSON columns
// as strings, timestamps as RFC 3339.
type eventRow struct {
	EventID    string          `json:"event_id"`
	EventType  string          `json:"event_type"`
	EventTime  string          `json:"event_time"`
	Source     string          `json:"source"`
	Platform   *string         `json:"platform"`
	UserID     *string         `json:"user_id"`
	SessionID  *string         `json:"session_id"`
	Country    *string         `json:"country"`
	Value      json.RawMessage `json:"value"`
	Properties *string         `json:"properties"`
	Extra      *string         `json:"extra"`
	IngestTime string          `json:"ingest_time"`
	MessageID  *string         `json:"message_id"`
}

// eventRowRecord re-validates the row BigQuery refused: it turns it back
// into an event record (the contract's fields, properties, and extra's
// members at the top level) for decode, after checking what BigQuery
// checks and the contract does not: that each JSON column holds a
// document whose every number fits BigQuery's JSON type (float64).
func eventRowRecord(dl schemas.DeadLetter, rec schemas.Record) (schemas.Record, error) {
	failed := func(format string, args ...any) (schemas.Record, error) {
		return rec, &schemas.ContractError{Reason: schemas.ReasonWriteFailed, Msg: fmt.Sprintf(format, args...)}
	}
	var row eventRow
	if err := json.Unmarshal(dl.Payload, &row); err != nil {
		return failed("the payload is not a row as JSON: %v", err)
	}
	members := map[string]json.RawMessage{}
	if row.Extra != nil {
		if err := checkJSONColumn(*row.Extra); err != nil {
			return failed("column extra: %v", err)
		}
		if err := json.Unmarshal([]byte(*row.Extra), &members); err != nil {
			return failed("column extra: not a JSON object: %v", err)
		}
	}
	set := func(name string, v any) {
		b, _ := json.Marshal(v) // strings and pointers to strings
		members[name] = b
	}
	set("event_id", row.EventID)
	set("event_type", row.EventType)
	set("event_time", row.EventTime)
	set("source", row.Source)
	for name, v := range map[string]*string{"platform": row.Platform, "user_id": row.UserID, "session_id": row.SessionID, "country": row.Country} {
		if v != nil {
			set(name, *v)
		}
	}
	if len(row.Value) > 0 && string(row.Value) != "null" {
		members["value"] = row.Value // a non-finite value comes as a string, which the contract refuses
	}
	if row.Properties != nil {
		if err := checkJSONColumn(*row.Properties); err != nil {
			return failed("column properties: %v", err)
		}
		members["properties"] = json.RawMessage(*row.Properties)
	}
	data, err := json.Marshal(members)
	if err != nil {
		return failed("%v", err)
	}
	rec.Data = data
	if rec.MessageID == "" && row.MessageID != nil {
		rec.MessageID = *row.MessageID
	}
	if rec.PublishTime == 0 {
		if t, err := time.Parse(time.RFC3339Nano, row.IngestTime); err == nil {
			rec.PublishTime = t.UnixMicro()
		}
	}
	return rec, nil
}

// checkJSONColumn reports why BigQuery's JSON type would refuse doc: not
// JSON, or a number no float64 holds.
func checkJSONColumn(doc string) error {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return fmt.Errorf("not a JSON document BigQuery takes: %v", err)
	}
	return nil
}

// lakeLine is the line a replayed record is written as: an archive
// envelope naming the run when the record came with a message id (its
// message_id, publish_time and attributes kept), else the record itself
// as a bare line, as it was in the lake.
func lakeLine(rec schemas.Record, runID string) ([]byte, error) {
	if rec.MessageID == "" {
		return rec.Data, nil
	}
	return json.Marshal(schemas.Envelope{
		Envelope:    schemas.EnvelopeVersion,
		MessageID:   rec.MessageID,
		PublishTime: time.UnixMicro(rec.IngestTime).UTC(),
		Attributes:  rec.Attributes,
		Data:        rec.Data,
		ReplayRun:   runID,
	})
}
