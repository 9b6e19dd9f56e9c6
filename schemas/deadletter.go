package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Stages of the pipeline named in dead_letter.stage.
const (
	StageRead   = "read"
	StageDecode = "decode"
)

// NewDeadLetter returns the dead_letter row of a record that failed at
// stage with err, keeping the record's raw bytes and origin. failedAt is
// in microseconds. A payload over MaxDeadLetterPayload is cut, and the cut
// is stated in the error.
func NewDeadLetter(rec Record, layer, stage string, err error, failedAt int64) DeadLetter {
	reason := ReasonOf(err)
	if reason == "" {
		reason = ReasonUnreadableInput
	}
	msg := err.Error()
	payload := rec.Data
	if len(payload) > MaxDeadLetterPayload {
		msg = fmt.Sprintf("%s (payload cut to its first %d of %d bytes)", msg, MaxDeadLetterPayload, len(payload))
		payload = payload[:MaxDeadLetterPayload]
	}
	if payload == nil {
		payload = []byte{}
	}
	dl := DeadLetter{
		FailedAt:  failedAt,
		Layer:     layer,
		Stage:     stage,
		Reason:    reason,
		Error:     msg,
		Payload:   payload,
		SourceURI: nonEmpty(rec.SourceURI),
		MessageID: nonEmpty(rec.MessageID),
	}
	if rec.PublishTime != 0 {
		pt := rec.PublishTime
		dl.PublishTime = &pt
	}
	if len(rec.Attributes) > 0 {
		if b, err := json.Marshal(rec.Attributes); err == nil {
			s := string(b)
			dl.Attributes = &s
		}
	}
	return dl
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// DeadLetterID identifies a dead letter: the hex SHA-256 of its layer,
// stage, reason, source_uri, message_id and the hex SHA-256 of its
// payload, joined by "|". failed_at is left out, so a record the batch
// layer dead-letters again for the same reason (each run over its file
// replaces its dead letters) keeps its id, and so does a message Pub/Sub
// delivered twice. The dead_letters view computes the same id in SQL
// (DeadLetterIDSQL).
func DeadLetterID(d DeadLetter) string {
	payload := sha256.Sum256(d.Payload)
	key := strings.Join([]string{d.Layer, d.Stage, d.Reason, deref(d.SourceURI), deref(d.MessageID), hex.EncodeToString(payload[:])}, "|")
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// DeadLetterIDSQL is DeadLetterID in GoogleSQL over a dead_letter row
// aliased alias.
func DeadLetterIDSQL(alias string) string {
	return fmt.Sprintf(`TO_HEX(SHA256(CONCAT(%[1]s.layer, '|', %[1]s.stage, '|', %[1]s.reason, '|', COALESCE(%[1]s.source_uri, ''), '|', COALESCE(%[1]s.message_id, ''), '|', TO_HEX(SHA256(COALESCE(%[1]s.payload, b''))))))`, alias)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
