package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// The layers, as the layer column of the tables names them.
const (
	LayerBatch = "batch"
	LayerSpeed = "speed"
	// LayerRecovered marks the events a restarted streaming job reads back
	// from events_speed to rebuild the windows and sessions its previous
	// run left open. They are aggregated, never written again.
	LayerRecovered = "recovered"
)

// Limits of the event contract v1.
const (
	// MaxRecordBytes is the largest record accepted; larger ones are dead letters.
	MaxRecordBytes = 1 << 20
	// MaxDepth is the deepest nesting of objects and arrays accepted in a
	// record. BigQuery's JSON type stops at 500 levels; nothing sensible
	// needs more than a few.
	MaxDepth              = 64
	maxEventIDChars       = 128
	maxSourceChars        = 64
	maxUserChars          = 128
	minEventYear          = 2000
	maxEventYear          = 2100
	PlatformOther         = "other"
	contractFieldEventID  = "event_id"
	contractFieldType     = "event_type"
	contractFieldTime     = "event_time"
	contractFieldSource   = "source"
	contractFieldPlatform = "platform"
	contractFieldUser     = "user_id"
	contractFieldSession  = "session_id"
	contractFieldCountry  = "country"
	contractFieldValue    = "value"
	contractFieldProps    = "properties"
)

var (
	eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)
	knownPlatforms   = map[string]bool{"web": true, "ios": true, "android": true, "server": true, "iot": true}
)

// Event is one event in canonical form, and a row of events_batch and
// events_speed. Timestamps are microseconds since the Unix epoch, UTC;
// nil pointers are NULL.
type Event struct {
	EventID    string   `bq:"event_id" desc:"Unique id of the event, as sent by the producer (trimmed). Two records with the same id are one event: the first by ingest time wins."`
	EventType  string   `bq:"event_type" desc:"What happened, lowercase, matching ^[a-z][a-z0-9_.]{0,63}$ (for example page.view)."`
	EventTime  int64    `bq:"event_time,TIMESTAMP" desc:"When the event happened (UTC, microsecond precision), from the producer's event_time. Tables are partitioned by its day."`
	Source     string   `bq:"source" desc:"The app, site or service that sent the event (trimmed, 1-64 characters)."`
	Platform   *string  `bq:"platform" desc:"web, ios, android, server or iot; other for any other value; NULL when not sent."`
	UserID     *string  `bq:"user_id" desc:"The producer's user id (trimmed); NULL when absent or empty."`
	SessionID  *string  `bq:"session_id" desc:"The producer's own session id (trimmed); NULL when absent or empty. Railyard's computed sessions are in the sessions view."`
	Country    *string  `bq:"country" desc:"ISO 3166-1 alpha-2 country code, uppercase; NULL when absent or not a valid code."`
	Value      *float64 `bq:"value" desc:"The event's numeric value (a finite float64, unit defined by the producer); NULL when not sent."`
	Properties *string  `bq:"properties,JSON" desc:"The producer's properties object, kept as JSON."`
	Extra      *string  `bq:"extra,JSON" desc:"Every top-level field outside the contract, kept as a JSON object so nothing the producer sent is dropped."`
	IngestTime int64    `bq:"ingest_time,TIMESTAMP" desc:"When Railyard received the record: the Pub/Sub publish time, or for a bare lake line the file's creation time."`
	Layer      string   `bq:"layer" desc:"Which layer wrote the row: batch or speed."`
	MessageID  *string  `bq:"message_id" desc:"The Pub/Sub message id the event arrived in; NULL for bare lake lines."`
	SourceURI  *string  `bq:"source_uri" desc:"Where the batch layer read the record: lake file and line as gs://bucket/path#L<line>; NULL in the speed layer."`
}

// Reason codes of records that break the event contract. They are the
// reason column of dead_letter: short, stable, and safe to group by.
const (
	ReasonEmpty           = "empty"
	ReasonTooLarge        = "too_large"
	ReasonInvalidUTF8     = "invalid_utf8"
	ReasonInvalidJSON     = "invalid_json"
	ReasonNotObject       = "not_object"
	ReasonTooDeep         = "too_deep"
	ReasonDuplicateField  = "duplicate_field"
	ReasonMissingEventID  = "missing_event_id"
	ReasonBadEventID      = "bad_event_id"
	ReasonMissingType     = "missing_event_type"
	ReasonBadType         = "bad_event_type"
	ReasonMissingTime     = "missing_event_time"
	ReasonBadTime         = "bad_event_time"
	ReasonTimeOutOfRange  = "event_time_out_of_range"
	ReasonMissingSource   = "missing_source"
	ReasonBadSource       = "bad_source"
	ReasonBadUserID       = "bad_user_id"
	ReasonBadSessionID    = "bad_session_id"
	ReasonBadValue        = "bad_value"
	ReasonBadProperties   = "bad_properties"
	ReasonBadEnvelope     = "bad_envelope"
	ReasonWriteFailed     = "write_failed"
	ReasonUnreadableInput = "unreadable_input"
	// Lake objects that cannot be read as files of lines (lake.Read): a
	// .gz object of 0 bytes, one that is not gzip, and a gzip stream that
	// breaks (truncated, corrupt) after the lines read before the break.
	ReasonEmptyFile   = "empty_file"
	ReasonNotGzip     = "not_gzip"
	ReasonCorruptGzip = "corrupt_gzip"
)

// ContractError is why a record is not a valid event: a reason code from
// the list above and a human-readable message.
type ContractError struct {
	Reason string
	Msg    string
}

func (e *ContractError) Error() string { return e.Reason + ": " + e.Msg }

func reject(reason, format string, args ...any) *ContractError {
	return &ContractError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason code of err, or "" if it is not a ContractError.
func ReasonOf(err error) string {
	var ce *ContractError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// ParseEvent checks data against the event contract v1 and returns the
// event in canonical form. The ingest fields (IngestTime, Layer, MessageID,
// SourceURI) are left for the caller. A record that breaks the contract
// returns a *ContractError; ParseEvent never panics on any input.
func ParseEvent(data []byte) (Event, error) {
	var ev Event
	if len(bytes.TrimSpace(data)) == 0 {
		return ev, reject(ReasonEmpty, "record is empty")
	}
	if len(data) > MaxRecordBytes {
		return ev, reject(ReasonTooLarge, "record is %d bytes, the limit is %d", len(data), MaxRecordBytes)
	}
	if !utf8.Valid(data) {
		return ev, reject(ReasonInvalidUTF8, "record is not valid UTF-8")
	}
	if d := nestingDepth(data); d > MaxDepth {
		return ev, reject(ReasonTooDeep, "record nests %d levels deep, the limit is %d", d, MaxDepth)
	}
	fields, err := splitObject(data)
	if err != nil {
		return ev, err
	}

	var cerr *ContractError
	if ev.EventID, cerr = requiredString(fields, contractFieldEventID, maxEventIDChars, ReasonMissingEventID, ReasonBadEventID); cerr != nil {
		return ev, cerr
	}
	if ev.EventType, cerr = eventType(fields); cerr != nil {
		return ev, cerr
	}
	if ev.EventTime, cerr = eventTime(fields); cerr != nil {
		return ev, cerr
	}
	if ev.Source, cerr = requiredString(fields, contractFieldSource, maxSourceChars, ReasonMissingSource, ReasonBadSource); cerr != nil {
		return ev, cerr
	}
	ev.Platform = platform(fields)
	if ev.UserID, cerr = optionalString(fields, contractFieldUser, maxUserChars, ReasonBadUserID); cerr != nil {
		return ev, cerr
	}
	if ev.SessionID, cerr = optionalString(fields, contractFieldSession, maxUserChars, ReasonBadSessionID); cerr != nil {
		return ev, cerr
	}
	ev.Country = country(fields)
	if ev.Value, cerr = value(fields); cerr != nil {
		return ev, cerr
	}
	if ev.Properties, cerr = properties(fields); cerr != nil {
		return ev, cerr
	}
	ev.Extra = extra(fields)
	return ev, nil
}

// field is one top-level member of a record, in input order.
type field struct {
	name  string
	value json.RawMessage
	used  bool
}

type object []field

func (o object) get(name string) *field {
	for i := range o {
		if o[i].name == name {
			o[i].used = true
			return &o[i]
		}
	}
	return nil
}

// splitObject reads data as exactly one JSON object and returns its
// members in order. Duplicate member names are rejected: which of two
// event_id values is meant cannot be known.
func splitObject(data []byte) (object, *ContractError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, reject(ReasonInvalidJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, reject(ReasonNotObject, "record is %s, not a JSON object", describeToken(tok))
	}
	var obj object
	// A set, not a scan of obj: a 1 MiB record can hold 100k members, and
	// a quadratic check took half a minute on one such record.
	seen := make(map[string]struct{})
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, reject(ReasonInvalidJSON, "%v", err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, reject(ReasonInvalidJSON, "member %q: %v", truncate(name, 80), err)
		}
		if _, dup := seen[name]; dup {
			return nil, reject(ReasonDuplicateField, "member %q appears more than once", truncate(name, 80))
		}
		seen[name] = struct{}{}
		obj = append(obj, field{name: name, value: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, reject(ReasonInvalidJSON, "%v", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, reject(ReasonInvalidJSON, "data after the closing brace")
	} else if !errors.Is(err, io.EOF) {
		return nil, reject(ReasonInvalidJSON, "after the object: %v", err)
	}
	return obj, nil
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// nestingDepth returns the deepest nesting of objects and arrays in data,
// ignoring brackets inside strings. It does not validate the JSON.
func nestingDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > deepest {
				deepest = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// stringField decodes f as a JSON string; ok is false when it is another type.
func stringField(f *field) (s string, ok bool) {
	if len(f.value) == 0 || f.value[0] != '"' {
		return "", false
	}
	if err := json.Unmarshal(f.value, &s); err != nil {
		return "", false
	}
	return s, true
}

func requiredString(o object, name string, maxChars int, missing, bad string) (string, *ContractError) {
	f := o.get(name)
	if f == nil || isNull(f.value) {
		return "", reject(missing, "%s is required", name)
	}
	s, ok := stringField(f)
	if !ok {
		return "", reject(bad, "%s must be a string, got %s", name, jsonKind(f.value))
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", reject(missing, "%s is empty", name)
	}
	if n > maxChars {
		return "", reject(bad, "%s is %d characters, the limit is %d", name, n, maxChars)
	}
	return s, nil
}

func optionalString(o object, name string, maxChars int, bad string) (*string, *ContractError) {
	f := o.get(name)
	if f == nil || isNull(f.value) {
		return nil, nil
	}
	s, ok := stringField(f)
	if !ok {
		return nil, reject(bad, "%s must be a string, got %s", name, jsonKind(f.value))
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if n := utf8.RuneCountInString(s); n > maxChars {
		return nil, reject(bad, "%s is %d characters, the limit is %d", name, n, maxChars)
	}
	return &s, nil
}

func eventType(o object) (string, *ContractError) {
	s, err := requiredString(o, contractFieldType, 1<<10, ReasonMissingType, ReasonBadType)
	if err != nil {
		return "", err
	}
	s = strings.ToLower(s)
	if !eventTypePattern.MatchString(s) {
		return "", reject(ReasonBadType, "event_type %q does not match %s", truncate(s, 80), eventTypePattern)
	}
	return s, nil
}

// eventTime reads an RFC 3339 string with an offset, or integer epoch
// milliseconds, and returns UTC microseconds.
func eventTime(o object) (int64, *ContractError) {
	f := o.get(contractFieldTime)
	if f == nil || isNull(f.value) {
		return 0, reject(ReasonMissingTime, "event_time is required")
	}
	var t time.Time
	switch c := f.value[0]; {
	case c == '"':
		s, _ := stringField(f)
		parsed, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return 0, reject(ReasonBadTime, "event_time %q is not RFC 3339 with an offset", truncate(s, 80))
		}
		t = parsed
	case c == '-' || (c >= '0' && c <= '9'):
		var ms int64
		if err := json.Unmarshal(f.value, &ms); err != nil {
			return 0, reject(ReasonBadTime, "event_time %s is not integer epoch milliseconds", truncate(string(f.value), 80))
		}
		t = time.UnixMilli(ms)
	default:
		return 0, reject(ReasonBadTime, "event_time must be an RFC 3339 string or epoch milliseconds, got %s", jsonKind(f.value))
	}
	t = t.UTC()
	if y := t.Year(); y < minEventYear || y > maxEventYear {
		return 0, reject(ReasonTimeOutOfRange, "event_time %s is outside the years %d-%d", t.Format(time.RFC3339), minEventYear, maxEventYear)
	}
	return t.UnixMicro(), nil
}

func platform(o object) *string {
	f := o.get(contractFieldPlatform)
	if f == nil || isNull(f.value) {
		return nil
	}
	s, ok := stringField(f)
	s = strings.ToLower(strings.TrimSpace(s))
	if ok && s == "" {
		return nil
	}
	if !knownPlatforms[s] {
		s = PlatformOther
	}
	return &s
}

// country keeps a two-letter code, uppercased; anything else is NULL, not
// a reject. Letters are checked, not the ISO list, so that newly assigned
// codes pass without a release. The letters are checked before
// uppercasing: Unicode case mapping turns "ıt" (dotless i) into "IT".
func country(o object) *string {
	f := o.get(contractFieldCountry)
	if f == nil {
		return nil
	}
	s, ok := stringField(f)
	s = strings.TrimSpace(s)
	if !ok || len(s) != 2 || !isASCIILetter(s[0]) || !isASCIILetter(s[1]) {
		return nil
	}
	s = strings.ToUpper(s)
	return &s
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func value(o object) (*float64, *ContractError) {
	f := o.get(contractFieldValue)
	if f == nil || isNull(f.value) {
		return nil, nil
	}
	var v float64
	if c := f.value[0]; c != '-' && (c < '0' || c > '9') {
		return nil, reject(ReasonBadValue, "value must be a number, got %s", jsonKind(f.value))
	}
	if err := json.Unmarshal(f.value, &v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, reject(ReasonBadValue, "value %s is not a finite float64", truncate(string(f.value), 80))
	}
	return &v, nil
}

func properties(o object) (*string, *ContractError) {
	f := o.get(contractFieldProps)
	if f == nil || isNull(f.value) {
		return nil, nil
	}
	if f.value[0] != '{' {
		return nil, reject(ReasonBadProperties, "properties must be a JSON object, got %s", jsonKind(f.value))
	}
	s, err := compactJSON(f.value)
	if err != nil {
		return nil, reject(ReasonBadProperties, "%v", err)
	}
	return &s, nil
}

// extra gathers every member the contract does not name into one JSON
// object, in input order.
func extra(o object) *string {
	var buf bytes.Buffer
	n := 0
	for _, f := range o {
		if f.used || isContractField(f.name) {
			continue
		}
		if n == 0 {
			buf.WriteByte('{')
		} else {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(f.name)
		buf.Write(name)
		buf.WriteByte(':')
		_ = json.Compact(&buf, f.value) // f.value was decoded as valid JSON
		n++
	}
	if n == 0 {
		return nil
	}
	buf.WriteByte('}')
	s := buf.String()
	return &s
}

func isContractField(name string) bool {
	switch name {
	case contractFieldEventID, contractFieldType, contractFieldTime, contractFieldSource, contractFieldPlatform,
		contractFieldUser, contractFieldSession, contractFieldCountry, contractFieldValue, contractFieldProps:
		return true
	}
	return false
}

func compactJSON(raw json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
