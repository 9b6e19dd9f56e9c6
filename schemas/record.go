package schemas

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Record is one raw input record before decoding: the bytes as received
// and where they came from. Both jobs turn their source into Records, and
// from there on run the same code.
type Record struct {
	// Data is the record's bytes, exactly as received.
	Data []byte
	// Attributes are the Pub/Sub message attributes (nil for bare lake lines).
	Attributes map[string]string
	// MessageID is the Pub/Sub message id ("" for bare lake lines).
	MessageID string
	// PublishTime is the Pub/Sub publish time in microseconds (0 if unknown).
	PublishTime int64
	// IngestTime is when Railyard received the record, in microseconds:
	// the publish time, or for a bare lake line the file's creation time.
	IngestTime int64
	// SourceURI is the lake file and line (gs://b/o#L12) in the batch layer.
	SourceURI string
	// AckID is the Pub/Sub ack id when the reader leaves acknowledgement
	// to the pipeline (pubsubio.Read), "" otherwise. It names one
	// delivery, not the message, and is never archived.
	AckID string
}

// EnvelopeVersion marks a lake line as an archive envelope rather than a
// bare event.
const EnvelopeVersion = envelopePrefix + "v1"

const envelopePrefix = "railyard/raw/"

// Envelope is how the streaming job archives a Pub/Sub message to the
// lake: one JSON object per line, holding the message as received. Data is
// base64 (standard, padded) in JSON, so any bytes survive, valid UTF-8 or
// not.
type Envelope struct {
	Envelope    string            `json:"envelope"`
	MessageID   string            `json:"message_id"`
	PublishTime time.Time         `json:"publish_time"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Data        []byte            `json:"data"`
}

var envelopeMarker = []byte(`"envelope"`)

// MarshalEnvelope returns the archive line of a received message, without
// the trailing newline.
func MarshalEnvelope(r Record) ([]byte, error) {
	return json.Marshal(Envelope{
		Envelope:    EnvelopeVersion,
		MessageID:   r.MessageID,
		PublishTime: time.UnixMicro(r.PublishTime).UTC(),
		Attributes:  r.Attributes,
		Data:        r.Data,
	})
}

// ParseLakeLine turns one line of a lake file into a Record. A line is
// either an archive envelope (its message is restored as it was received)
// or a bare event (the line itself is the data). A line that is marked as
// an envelope but is not a valid one returns a *ContractError with reason
// bad_envelope, and a Record holding the line as its data.
func ParseLakeLine(line []byte, sourceURI string, fileTime int64) (Record, error) {
	rec := Record{Data: line, SourceURI: sourceURI, IngestTime: fileTime}
	if !bytes.Contains(line, envelopeMarker) {
		return rec, nil
	}
	var probe struct {
		Envelope string `json:"envelope"`
	}
	if json.Unmarshal(line, &probe) != nil || !strings.HasPrefix(probe.Envelope, envelopePrefix) {
		// Not an envelope: a bare event, perhaps with an "envelope" member of its own.
		return rec, nil
	}
	if probe.Envelope != EnvelopeVersion {
		return rec, reject(ReasonBadEnvelope, "unknown envelope version %q", truncate(probe.Envelope, 40))
	}
	var env Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return rec, reject(ReasonBadEnvelope, "%v", err)
	}
	if env.MessageID == "" || env.PublishTime.IsZero() {
		return rec, reject(ReasonBadEnvelope, "envelope lacks message_id or publish_time")
	}
	pt := env.PublishTime.UnixMicro()
	return Record{
		Data:        env.Data,
		Attributes:  env.Attributes,
		MessageID:   env.MessageID,
		PublishTime: pt,
		IngestTime:  pt,
		SourceURI:   sourceURI,
	}, nil
}
