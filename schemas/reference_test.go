package schemas

// This file keeps the decoder that ParseEvent and ParseLakeLine replaced,
// unchanged but for the names, as the reference of the differential
// tests: the json.Decoder token API, slow but plainly correct.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// referenceParseEvent checks data against the event contract v1 and returns the
// event in canonical form. The ingest fields (IngestTime, Layer, MessageID,
// SourceURI) are left for the caller. A record that breaks the contract
// returns a *ContractError; referenceParseEvent never panics on any input.
func referenceParseEvent(data []byte) (Event, error) {
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
	if d := refNestingDepth(data); d > MaxDepth {
		return ev, reject(ReasonTooDeep, "record nests %d levels deep, the limit is %d", d, MaxDepth)
	}
	fields, err := refSplitObject(data)
	if err != nil {
		return ev, err
	}

	var cerr *ContractError
	if ev.EventID, cerr = refRequiredString(fields, contractFieldEventID, maxEventIDChars, ReasonMissingEventID, ReasonBadEventID); cerr != nil {
		return ev, cerr
	}
	if ev.EventType, cerr = refEventType(fields); cerr != nil {
		return ev, cerr
	}
	if ev.EventTime, cerr = refEventTime(fields); cerr != nil {
		return ev, cerr
	}
	if ev.Source, cerr = refRequiredString(fields, contractFieldSource, maxSourceChars, ReasonMissingSource, ReasonBadSource); cerr != nil {
		return ev, cerr
	}
	ev.Platform = refPlatform(fields)
	if ev.UserID, cerr = refOptionalString(fields, contractFieldUser, maxUserChars, ReasonBadUserID); cerr != nil {
		return ev, cerr
	}
	if ev.SessionID, cerr = refOptionalString(fields, contractFieldSession, maxUserChars, ReasonBadSessionID); cerr != nil {
		return ev, cerr
	}
	ev.Country = refCountry(fields)
	if ev.Value, cerr = refValue(fields); cerr != nil {
		return ev, cerr
	}
	if ev.Properties, cerr = refProperties(fields); cerr != nil {
		return ev, cerr
	}
	ev.Extra = refExtra(fields)
	return ev, nil
}

// refField is one top-level member of a record, in input order.
type refField struct {
	name  string
	value json.RawMessage
	used  bool
}

type refObject []refField

func (o refObject) get(name string) *refField {
	for i := range o {
		if o[i].name == name {
			o[i].used = true
			return &o[i]
		}
	}
	return nil
}

// refSplitObject reads data as exactly one JSON object and returns its
// members in order. Duplicate member names are rejected: which of two
// event_id values is meant cannot be known.
func refSplitObject(data []byte) (refObject, *ContractError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, reject(ReasonInvalidJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, reject(ReasonNotObject, "record is %s, not a JSON object", refDescribeToken(tok))
	}
	var obj refObject
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
			return nil, reject(ReasonInvalidJSON, "member %q: %v", refTruncate(name, 80), err)
		}
		if _, dup := seen[name]; dup {
			return nil, reject(ReasonDuplicateField, "member %q appears more than once", refTruncate(name, 80))
		}
		seen[name] = struct{}{}
		obj = append(obj, refField{name: name, value: raw})
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

func refDescribeToken(tok json.Token) string {
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

// refNestingDepth returns the deepest nesting of objects and arrays in data,
// ignoring brackets inside strings. It does not validate the JSON.
func refNestingDepth(data []byte) int {
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

func refIsNull(raw json.RawMessage) bool { return string(raw) == "null" }

// refStringField decodes f as a JSON string; ok is false when it is another type.
func refStringField(f *refField) (s string, ok bool) {
	if len(f.value) == 0 || f.value[0] != '"' {
		return "", false
	}
	if err := json.Unmarshal(f.value, &s); err != nil {
		return "", false
	}
	return s, true
}

func refRequiredString(o refObject, name string, maxChars int, missing, bad string) (string, *ContractError) {
	f := o.get(name)
	if f == nil || refIsNull(f.value) {
		return "", reject(missing, "%s is required", name)
	}
	s, ok := refStringField(f)
	if !ok {
		return "", reject(bad, "%s must be a string, got %s", name, refJsonKind(f.value))
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

func refOptionalString(o refObject, name string, maxChars int, bad string) (*string, *ContractError) {
	f := o.get(name)
	if f == nil || refIsNull(f.value) {
		return nil, nil
	}
	s, ok := refStringField(f)
	if !ok {
		return nil, reject(bad, "%s must be a string, got %s", name, refJsonKind(f.value))
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

func refEventType(o refObject) (string, *ContractError) {
	s, err := refRequiredString(o, contractFieldType, 1<<10, ReasonMissingType, ReasonBadType)
	if err != nil {
		return "", err
	}
	s = strings.ToLower(s)
	if !eventTypePattern.MatchString(s) {
		return "", reject(ReasonBadType, "event_type %q does not match %s", refTruncate(s, 80), eventTypePattern)
	}
	return s, nil
}

// refEventTime reads an RFC 3339 string with an offset, or integer epoch
// milliseconds, and returns UTC microseconds.
func refEventTime(o refObject) (int64, *ContractError) {
	f := o.get(contractFieldTime)
	if f == nil || refIsNull(f.value) {
		return 0, reject(ReasonMissingTime, "event_time is required")
	}
	var t time.Time
	switch c := f.value[0]; {
	case c == '"':
		s, _ := refStringField(f)
		parsed, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return 0, reject(ReasonBadTime, "event_time %q is not RFC 3339 with an offset", refTruncate(s, 80))
		}
		t = parsed
	case c == '-' || (c >= '0' && c <= '9'):
		var ms int64
		if err := json.Unmarshal(f.value, &ms); err != nil {
			return 0, reject(ReasonBadTime, "event_time %s is not integer epoch milliseconds", refTruncate(string(f.value), 80))
		}
		t = time.UnixMilli(ms)
	default:
		return 0, reject(ReasonBadTime, "event_time must be an RFC 3339 string or epoch milliseconds, got %s", refJsonKind(f.value))
	}
	t = t.UTC()
	if y := t.Year(); y < minEventYear || y > maxEventYear {
		return 0, reject(ReasonTimeOutOfRange, "event_time %s is outside the years %d-%d", t.Format(time.RFC3339), minEventYear, maxEventYear)
	}
	return t.UnixMicro(), nil
}

func refPlatform(o refObject) *string {
	f := o.get(contractFieldPlatform)
	if f == nil || refIsNull(f.value) {
		return nil
	}
	s, ok := refStringField(f)
	s = strings.ToLower(strings.TrimSpace(s))
	if ok && s == "" {
		return nil
	}
	if !knownPlatforms[s] {
		s = PlatformOther
	}
	return &s
}

// refCountry keeps a two-letter code, uppercased; anything else is NULL, not
// a reject. Letters are checked, not the ISO list, so that newly assigned
// codes pass without a release. The letters are checked before
// uppercasing: Unicode case mapping turns "ıt" (dotless i) into "IT".
func refCountry(o refObject) *string {
	f := o.get(contractFieldCountry)
	if f == nil {
		return nil
	}
	s, ok := refStringField(f)
	s = strings.TrimSpace(s)
	if !ok || len(s) != 2 || !refIsASCIILetter(s[0]) || !refIsASCIILetter(s[1]) {
		return nil
	}
	s = strings.ToUpper(s)
	return &s
}

func refIsASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func refValue(o refObject) (*float64, *ContractError) {
	f := o.get(contractFieldValue)
	if f == nil || refIsNull(f.value) {
		return nil, nil
	}
	var v float64
	if c := f.value[0]; c != '-' && (c < '0' || c > '9') {
		return nil, reject(ReasonBadValue, "value must be a number, got %s", refJsonKind(f.value))
	}
	if err := json.Unmarshal(f.value, &v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, reject(ReasonBadValue, "value %s is not a finite float64", refTruncate(string(f.value), 80))
	}
	return &v, nil
}

func refProperties(o refObject) (*string, *ContractError) {
	f := o.get(contractFieldProps)
	if f == nil || refIsNull(f.value) {
		return nil, nil
	}
	if f.value[0] != '{' {
		return nil, reject(ReasonBadProperties, "properties must be a JSON object, got %s", refJsonKind(f.value))
	}
	s, err := refCompactJSON(f.value)
	if err != nil {
		return nil, reject(ReasonBadProperties, "%v", err)
	}
	return &s, nil
}

// refExtra gathers every member the contract does not name into one JSON
// object, in input order.
func refExtra(o refObject) *string {
	var buf bytes.Buffer
	n := 0
	for _, f := range o {
		if f.used || refIsContractField(f.name) {
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

func refIsContractField(name string) bool {
	switch name {
	case contractFieldEventID, contractFieldType, contractFieldTime, contractFieldSource, contractFieldPlatform,
		contractFieldUser, contractFieldSession, contractFieldCountry, contractFieldValue, contractFieldProps:
		return true
	}
	return false
}

func refCompactJSON(raw json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func refJsonKind(raw json.RawMessage) string {
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

func refTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// referenceParseLakeLine is ParseLakeLine as it was before the one-pass
// reader of written envelopes: every line with the envelope marker goes
// through the encoding/json path, decodeEnvelope.
func referenceParseLakeLine(line []byte, sourceURI string, fileTime int64) (Record, error) {
	rec := Record{Data: line, SourceURI: sourceURI, IngestTime: fileTime}
	if !bytes.Contains(line, envelopeMarker) {
		return rec, nil
	}
	return decodeEnvelope(rec, line)
}
