package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
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
//
// It reads the record in one pass (scan.go) and allocates two blocks for
// a valid event: one string that holds the text of all its string fields,
// and one that holds what its optional fields point to.
func ParseEvent(data []byte) (Event, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Event{}, reject(ReasonEmpty, "record is empty")
	}
	if len(data) > MaxRecordBytes {
		return Event{}, reject(ReasonTooLarge, "record is %d bytes, the limit is %d", len(data), MaxRecordBytes)
	}
	if !utf8.Valid(data) {
		return Event{}, reject(ReasonInvalidUTF8, "record is not valid UTF-8")
	}
	d := getDecoder(data)
	defer putDecoder(d)
	if what, msg := d.split(); what != splitOK {
		// The depth rule comes first, over the whole record, even where
		// the JSON breaks before the deep part.
		if n := nestingDepth(data); n > MaxDepth {
			return Event{}, reject(ReasonTooDeep, "record nests %d levels deep, the limit is %d", n, MaxDepth)
		}
		switch what {
		case splitNotObject:
			return Event{}, &ContractError{Reason: ReasonNotObject, Msg: msg}
		case splitDuplicate:
			return Event{}, &ContractError{Reason: ReasonDuplicateField, Msg: msg}
		default:
			return Event{}, &ContractError{Reason: ReasonInvalidJSON, Msg: msg}
		}
	}
	ev, err := d.event()
	if err != nil { // not a nil *ContractError in an error
		return Event{}, err
	}
	return ev, nil
}

// The contract's fields, as indexes of decoder.fields.
const (
	fieldEventID = iota
	fieldType
	fieldTime
	fieldSource
	fieldPlatform
	fieldUser
	fieldSession
	fieldCountry
	fieldValue
	fieldProps
	numContractFields
)

// contractIndex returns the contract field a member name is, or -1.
func contractIndex(name []byte) int {
	switch string(name) {
	case contractFieldEventID:
		return fieldEventID
	case contractFieldType:
		return fieldType
	case contractFieldTime:
		return fieldTime
	case contractFieldSource:
		return fieldSource
	case contractFieldPlatform:
		return fieldPlatform
	case contractFieldUser:
		return fieldUser
	case contractFieldSession:
		return fieldSession
	case contractFieldCountry:
		return fieldCountry
	case contractFieldValue:
		return fieldValue
	case contractFieldProps:
		return fieldProps
	}
	return -1
}

func isContractField(name string) bool { return contractIndex([]byte(name)) >= 0 }

// optionals holds what an event's optional fields point to, so that one
// allocation serves them all.
type optionals struct {
	platform, userID, sessionID, country, properties, extra string
	value                                                   float64
}

// span is a string field's place in decoder.buf.
type span struct{ start, end int32 }

func (d *decoder) keep(b []byte) span {
	start := len(d.buf)
	d.buf = append(d.buf, b...)
	return span{int32(start), int32(len(d.buf))}
}

// event applies the contract's field rules, in the contract's order, to
// the members split read.
func (d *decoder) event() (Event, *ContractError) {
	var (
		ev   Event
		o    optionals
		cerr *ContractError
		s    []byte

		id, typ, src, user, session, country, props, extra  span
		hasUser, hasSession, hasCountry, hasProps, hasExtra bool
	)
	if s, cerr = d.requiredString(fieldEventID, contractFieldEventID, maxEventIDChars, ReasonMissingEventID, ReasonBadEventID); cerr != nil {
		return ev, cerr
	}
	id = d.keep(s)
	if typ, cerr = d.eventType(); cerr != nil {
		return ev, cerr
	}
	if ev.EventTime, cerr = d.eventTime(); cerr != nil {
		return ev, cerr
	}
	if s, cerr = d.requiredString(fieldSource, contractFieldSource, maxSourceChars, ReasonMissingSource, ReasonBadSource); cerr != nil {
		return ev, cerr
	}
	src = d.keep(s)
	var hasPlatform bool
	o.platform, hasPlatform = d.platform()
	if s, hasUser, cerr = d.optionalString(fieldUser, contractFieldUser, maxUserChars, ReasonBadUserID); cerr != nil {
		return ev, cerr
	}
	if hasUser {
		user = d.keep(s)
	}
	if s, hasSession, cerr = d.optionalString(fieldSession, contractFieldSession, maxUserChars, ReasonBadSessionID); cerr != nil {
		return ev, cerr
	}
	if hasSession {
		session = d.keep(s)
	}
	if c, ok := d.country(); ok {
		hasCountry = true
		country = d.keep(c[:])
	}
	var hasValue bool
	if o.value, hasValue, cerr = d.numberValue(); cerr != nil {
		return ev, cerr
	}
	if props, hasProps, cerr = d.properties(); cerr != nil {
		return ev, cerr
	}
	extra, hasExtra = d.extra()

	all := string(d.buf)
	str := func(sp span) string { return all[sp.start:sp.end] }
	ev.EventID, ev.EventType, ev.Source = str(id), str(typ), str(src)
	if !(hasPlatform || hasUser || hasSession || hasCountry || hasValue || hasProps || hasExtra) {
		return ev, nil
	}
	p := new(optionals)
	*p = o
	if hasPlatform {
		ev.Platform = &p.platform
	}
	if hasUser {
		p.userID = str(user)
		ev.UserID = &p.userID
	}
	if hasSession {
		p.sessionID = str(session)
		ev.SessionID = &p.sessionID
	}
	if hasCountry {
		p.country = str(country)
		ev.Country = &p.country
	}
	if hasValue {
		ev.Value = &p.value
	}
	if hasProps {
		p.properties = str(props)
		ev.Properties = &p.properties
	}
	if hasExtra {
		p.extra = str(extra)
		ev.Extra = &p.extra
	}
	return ev, nil
}

// get returns the value of a contract field, or nil when the record does
// not have it.
func (d *decoder) get(f int) []byte {
	if i := d.fields[f]; i >= 0 {
		return d.members[i].value
	}
	return nil
}

// unquote returns the content of the scanned JSON string raw, unescaped.
// The result is valid until the next call.
func (d *decoder) unquote(raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	d.tmp = appendUnquoted(d.tmp[:0], s)
	return d.tmp
}

func isNull(raw []byte) bool { return string(raw) == "null" }

func (d *decoder) requiredString(f int, name string, maxChars int, missing, bad string) ([]byte, *ContractError) {
	v := d.get(f)
	if v == nil || isNull(v) {
		return nil, reject(missing, "%s is required", name)
	}
	if v[0] != '"' {
		return nil, reject(bad, "%s must be a string, got %s", name, kindOf(v))
	}
	s := bytes.TrimSpace(d.unquote(v))
	n := utf8.RuneCount(s)
	if n == 0 {
		return nil, reject(missing, "%s is empty", name)
	}
	if n > maxChars {
		return nil, reject(bad, "%s is %d characters, the limit is %d", name, n, maxChars)
	}
	return s, nil
}

func (d *decoder) optionalString(f int, name string, maxChars int, bad string) ([]byte, bool, *ContractError) {
	v := d.get(f)
	if v == nil || isNull(v) {
		return nil, false, nil
	}
	if v[0] != '"' {
		return nil, false, reject(bad, "%s must be a string, got %s", name, kindOf(v))
	}
	s := bytes.TrimSpace(d.unquote(v))
	if len(s) == 0 {
		return nil, false, nil
	}
	if n := utf8.RuneCount(s); n > maxChars {
		return nil, false, reject(bad, "%s is %d characters, the limit is %d", name, n, maxChars)
	}
	return s, true, nil
}

// eventType lowercases the event type into the event's text and checks
// it against eventTypePattern.
func (d *decoder) eventType() (span, *ContractError) {
	s, cerr := d.requiredString(fieldType, contractFieldType, 1<<10, ReasonMissingType, ReasonBadType)
	if cerr != nil {
		return span{}, cerr
	}
	start := len(d.buf)
	if isASCII(s) {
		for _, c := range s {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			d.buf = append(d.buf, c)
		}
	} else {
		// Unicode case mapping can make ASCII of other letters (the Kelvin sign).
		d.buf = append(d.buf, strings.ToLower(string(s))...)
	}
	lower := d.buf[start:]
	if !isEventType(lower) {
		return span{}, reject(ReasonBadType, "event_type %q does not match %s", truncate(string(lower), 80), eventTypePattern)
	}
	return span{int32(start), int32(len(d.buf))}, nil
}

// isEventType reports whether s matches eventTypePattern.
func isEventType(s []byte) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s[1:] {
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// eventTime reads an RFC 3339 string with an offset, or integer epoch
// milliseconds, and returns UTC microseconds.
func (d *decoder) eventTime() (int64, *ContractError) {
	v := d.get(fieldTime)
	if v == nil || isNull(v) {
		return 0, reject(ReasonMissingTime, "event_time is required")
	}
	var t time.Time
	switch c := v[0]; {
	case c == '"':
		s := d.unquote(v)
		parsed, err := time.Parse(time.RFC3339Nano, string(bytes.TrimSpace(s)))
		if err != nil {
			return 0, reject(ReasonBadTime, "event_time %q is not RFC 3339 with an offset", truncate(string(s), 80))
		}
		t = parsed
	case c == '-' || isDigit(c):
		ms, ok := parseInt64(v)
		if !ok {
			return 0, reject(ReasonBadTime, "event_time %s is not integer epoch milliseconds", truncate(string(v), 80))
		}
		t = time.UnixMilli(ms)
	default:
		return 0, reject(ReasonBadTime, "event_time must be an RFC 3339 string or epoch milliseconds, got %s", kindOf(v))
	}
	t = t.UTC()
	if y := t.Year(); y < minEventYear || y > maxEventYear {
		return 0, reject(ReasonTimeOutOfRange, "event_time %s is outside the years %d-%d", t.Format(time.RFC3339), minEventYear, maxEventYear)
	}
	return t.UnixMicro(), nil
}

// parseInt64 reads a scanned JSON number as an int64, as json.Unmarshal
// does: no fraction, no exponent, no overflow.
func parseInt64(num []byte) (int64, bool) {
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = num[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range digits {
		if !isDigit(c) {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// platform returns the canonical platform and whether the field is set.
func (d *decoder) platform() (string, bool) {
	v := d.get(fieldPlatform)
	if v == nil || isNull(v) {
		return "", false
	}
	if v[0] != '"' {
		return PlatformOther, true
	}
	s := bytes.TrimSpace(d.unquote(v))
	if len(s) == 0 {
		return "", false
	}
	if !isASCII(s) {
		if p := strings.ToLower(string(s)); knownPlatforms[p] {
			return p, true
		}
		return PlatformOther, true
	}
	for _, p := range platforms {
		if bytes.EqualFold(s, []byte(p)) {
			return p, true
		}
	}
	return PlatformOther, true
}

// platforms are the keys of knownPlatforms, in a fixed order.
var platforms = []string{"web", "ios", "android", "server", "iot"}

// country keeps a two-letter code, uppercased; anything else is NULL, not
// a reject. Letters are checked, not the ISO list, so that newly assigned
// codes pass without a release. The letters are checked before
// uppercasing: Unicode case mapping turns "ıt" (dotless i) into "IT".
func (d *decoder) country() ([2]byte, bool) {
	v := d.get(fieldCountry)
	if v == nil || v[0] != '"' {
		return [2]byte{}, false
	}
	s := bytes.TrimSpace(d.unquote(v))
	if len(s) != 2 || !isASCIILetter(s[0]) || !isASCIILetter(s[1]) {
		return [2]byte{}, false
	}
	return [2]byte{upper(s[0]), upper(s[1])}, true
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

func (d *decoder) numberValue() (float64, bool, *ContractError) {
	v := d.get(fieldValue)
	if v == nil || isNull(v) {
		return 0, false, nil
	}
	if c := v[0]; c != '-' && !isDigit(c) {
		return 0, false, reject(ReasonBadValue, "value must be a number, got %s", kindOf(v))
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, reject(ReasonBadValue, "value %s is not a finite float64", truncate(string(v), 80))
	}
	return f, true, nil
}

// properties keeps the properties object as compact JSON.
func (d *decoder) properties() (span, bool, *ContractError) {
	i := d.fields[fieldProps]
	if i < 0 || isNull(d.members[i].value) {
		return span{}, false, nil
	}
	m := &d.members[i]
	if m.value[0] != '{' {
		return span{}, false, reject(ReasonBadProperties, "properties must be a JSON object, got %s", kindOf(m.value))
	}
	start := len(d.buf)
	d.appendValue(m)
	return span{int32(start), int32(len(d.buf))}, true, nil
}

// appendValue appends a member's value to the event's text as compact JSON.
func (d *decoder) appendValue(m *member) {
	if m.spaced {
		d.buf = appendCompact(d.buf, m.value)
	} else {
		d.buf = append(d.buf, m.value...)
	}
}

// extra gathers every member the contract does not name into one JSON
// object, in input order: names as json.Marshal writes them, values as
// sent, compacted.
func (d *decoder) extra() (span, bool) {
	start := len(d.buf)
	n := 0
	for i := range d.members {
		m := &d.members[i]
		if m.field >= 0 {
			continue
		}
		if n == 0 {
			d.buf = append(d.buf, '{')
		} else {
			d.buf = append(d.buf, ',')
		}
		if m.escaped || needsEscape(m.raw) {
			name, _ := json.Marshal(string(m.name)) // a string always marshals
			d.buf = append(d.buf, name...)
		} else {
			d.buf = append(d.buf, '"')
			d.buf = append(d.buf, m.raw...)
			d.buf = append(d.buf, '"')
		}
		d.buf = append(d.buf, ':')
		d.appendValue(m)
		n++
	}
	if n == 0 {
		return span{}, false
	}
	d.buf = append(d.buf, '}')
	return span{int32(start), int32(len(d.buf))}, true
}

// needsEscape reports whether json.Marshal would escape something in the
// unescaped string content s: the HTML characters, U+2028 and U+2029.
func needsEscape(s []byte) bool {
	for i, c := range s {
		switch {
		case c == '<' || c == '>' || c == '&':
			return true
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8:
			return true
		}
	}
	return false
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
