package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
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
	// ReplayRun names the replay run (pipelines/replay) that brought a
	// dead letter back into the lake under this envelope; empty, and not
	// written, for a message the streaming job archived. Readers ignore it.
	ReplayRun string `json:"replay_run,omitempty"`
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
	if r, ok := parseWrittenEnvelope(line); ok {
		r.SourceURI = sourceURI
		return r, nil
	}
	return decodeEnvelope(rec, line)
}

// decodeEnvelope reads a line that holds the envelope marker with
// encoding/json: an envelope in any form JSON allows, or a bare event with
// an "envelope" member of its own (rec, unchanged). rec is the line as a
// bare event; an envelope's Record keeps rec's SourceURI.
func decodeEnvelope(rec Record, line []byte) (Record, error) {
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
		SourceURI:   rec.SourceURI,
	}, nil
}

// Parts of an envelope line as MarshalEnvelope writes it.
var (
	writtenEnvelopeStart = []byte(`{"envelope":"` + EnvelopeVersion + `","message_id":"`)
	writtenPublishTime   = []byte(`","publish_time":"`)
	writtenAttributes    = []byte(`,"attributes":{`)
	writtenData          = []byte(`,"data":"`)
)

// parseWrittenEnvelope restores a valid envelope line in the exact form
// MarshalEnvelope writes (its members in its order, strings without
// escapes, nothing after the closing brace), as json.Unmarshal would, in
// one pass. ok is false for any other line, which ParseLakeLine then
// reads with encoding/json.
func parseWrittenEnvelope(line []byte) (rec Record, ok bool) {
	rest, ok := bytes.CutPrefix(line, writtenEnvelopeStart)
	if !ok {
		return rec, false
	}
	id, rest, ok := plainJSONString(rest)
	if !ok || len(id) == 0 {
		return rec, false
	}
	if rest, ok = bytes.CutPrefix(rest, writtenPublishTime[1:]); !ok {
		return rec, false
	}
	start := len(line) - len(rest) - 1 // the time's opening quote
	if _, rest, ok = plainJSONString(rest); !ok {
		return rec, false
	}
	var pt time.Time
	if pt.UnmarshalJSON(line[start:len(line)-len(rest)]) != nil || pt.IsZero() {
		return rec, false
	}
	if rest, ok = bytes.CutPrefix(rest, writtenAttributes); ok {
		rec.Attributes = map[string]string{}
		for len(rest) > 0 && rest[0] != '}' {
			if len(rec.Attributes) > 0 {
				if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
					return Record{}, false
				}
			}
			var k, v []byte
			if rest, ok = bytes.CutPrefix(rest, []byte(`"`)); !ok {
				return Record{}, false
			}
			if k, rest, ok = plainJSONString(rest); !ok {
				return Record{}, false
			}
			if rest, ok = bytes.CutPrefix(rest, []byte(`:"`)); !ok {
				return Record{}, false
			}
			if v, rest, ok = plainJSONString(rest); !ok {
				return Record{}, false
			}
			rec.Attributes[string(k)] = string(v)
		}
		if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
			return Record{}, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, writtenData); !ok {
		return Record{}, false
	}
	b64, rest, ok := plainJSONString(rest)
	if !ok || string(rest) != "}" {
		return Record{}, false
	}
	// As encoding/json decodes a []byte.
	data := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(data, b64)
	if err != nil {
		return Record{}, false
	}
	rec.Data = data[:n]
	rec.MessageID = string(id)
	rec.PublishTime = pt.UnixMicro()
	rec.IngestTime = rec.PublishTime
	return rec, true
}

// plainJSONString reads the content of a JSON string that needs no
// unescaping, up to its closing quote, and returns what follows the
// quote. ok is false for a string with escapes, control characters or
// bytes that are not UTF-8, and for one that does not end.
func plainJSONString(b []byte) (content, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], utf8.Valid(b[:i])
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}
