package schemas

import (
	"encoding/json"
	"fmt"
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
