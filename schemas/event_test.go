package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// baseMembers is a valid record with only the required fields, as
// (name, raw JSON) pairs in order.
var baseMembers = [][2]string{
	{"event_id", `"e-1"`},
	{"event_type", `"page.view"`},
	{"event_time", `"2026-11-01T10:00:00Z"`},
	{"source", `"web-shop"`},
}

// baseTime is the canonical event_time of baseMembers.
var baseTime = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro()

// omit as the raw value of a member drops it from the record.
const omit = "\x00omit"

// record builds a JSON object from baseMembers with the given members
// replacing or, when not in the base, following them. Pairs are
// name, raw JSON, name, raw JSON...
func record(pairs ...string) []byte {
	if len(pairs)%2 != 0 {
		panic("record: odd number of arguments") // a bug in the test table, not input
	}
	over := map[string]string{}
	var added []string
	for i := 0; i < len(pairs); i += 2 {
		if _, dup := over[pairs[i]]; !dup {
			added = append(added, pairs[i])
		}
		over[pairs[i]] = pairs[i+1]
	}
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	write := func(name, raw string) {
		if raw == omit {
			return
		}
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", name, raw)
		n++
	}
	inBase := map[string]bool{}
	for _, m := range baseMembers {
		inBase[m[0]] = true
		if raw, ok := over[m[0]]; ok {
			write(m[0], raw)
			continue
		}
		write(m[0], m[1])
	}
	for _, name := range added {
		if !inBase[name] {
			write(name, over[name])
		}
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// baseEvent is the canonical form of record() with no changes.
func baseEvent() Event {
	return Event{EventID: "e-1", EventType: "page.view", EventTime: baseTime, Source: "web-shop"}
}

func ptr[T any](v T) *T { return &v }

func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err) // a bug in the test table, not input
	}
	return t.UnixMicro()
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func showEvent(ev Event) string {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Sprintf("%+v", ev)
	}
	return string(b)
}

type rejectCase struct {
	name    string
	data    []byte
	reason  string
	errPart string
}

// rejectCases are records that break the contract: each rule, each
// reason code ParseEvent returns, and the order in which rules are checked.
func rejectCases() []rejectCase {
	oversize := record("properties", `{"pad":"`+strings.Repeat("x", MaxRecordBytes)+`"}`)
	return []rejectCase{
		// Whole record.
		{"rejects an empty record", []byte{}, ReasonEmpty, "record is empty"},
		{"rejects a nil record", nil, ReasonEmpty, "record is empty"},
		{"rejects a record of only whitespace", []byte(" \t\r\n "), ReasonEmpty, "record is empty"},
		{"rejects a record one byte over 1 MiB", oversize, ReasonTooLarge, "the limit is 1048576"},
		{"rejects invalid UTF-8 inside a string", record("source", "\"web\xff\""), ReasonInvalidUTF8, "not valid UTF-8"},
		{"rejects an overlong UTF-8 encoding", record("source", "\"\xc0\xaf\""), ReasonInvalidUTF8, "not valid UTF-8"},
		{"rejects a lone UTF-16 surrogate encoded as UTF-8", record("source", "\"\xed\xa0\x80\""), ReasonInvalidUTF8, "not valid UTF-8"},
		{"rejects nesting one level deeper than the limit", record("properties", nested(MaxDepth)), ReasonTooDeep, "nests 65 levels deep, the limit is 64"},
		{"rejects deep nesting of arrays", record("x", strings.Repeat("[", 70)+strings.Repeat("]", 70)), ReasonTooDeep, "the limit is 64"},
		{"rejects broken JSON", []byte(`{"event_id" "e-1"}`), ReasonInvalidJSON, "expected colon after object key"},
		{"rejects JSON truncated in a string", []byte(`{"event_id":"e-1","event_type":"page.v`), ReasonInvalidJSON, "unexpected EOF"},
		{"rejects JSON truncated after a member", []byte(`{"event_id":"e-1",`), ReasonInvalidJSON, "EOF"},
		{"rejects an object that is never closed", []byte(`{"event_id":"e-1"`), ReasonInvalidJSON, "EOF"},
		{"rejects a trailing comma", []byte(`{"event_id":"e-1",}`), ReasonInvalidJSON, "invalid character '}'"},
		{"rejects single-quoted strings", []byte(`{'event_id':'e-1'}`), ReasonInvalidJSON, "invalid character '\\''"},
		{"rejects an unquoted member name", []byte(`{event_id:"e-1"}`), ReasonInvalidJSON, "invalid character 'e'"},
		{"rejects a NaN literal", record("value", "NaN"), ReasonInvalidJSON, "invalid character 'N'"},
		{"rejects a UTF-8 byte order mark", append([]byte("\xef\xbb\xbf"), record()...), ReasonInvalidJSON, "invalid character"},
		{"rejects garbage after the object", append(record(), " trailing"...), ReasonInvalidJSON, "after the object"},
		{"rejects a second object after the first", append(record(), record()...), ReasonInvalidJSON, "data after the closing brace"},
		{"rejects a closing bracket after the object", append(record(), ']'), ReasonInvalidJSON, "after the object"},
		{"rejects an array of events", append(append([]byte("["), record()...), ']'), ReasonNotObject, "record is an array, not a JSON object"},
		{"rejects a bare string", []byte(`"page.view"`), ReasonNotObject, "record is a string"},
		{"rejects a bare number", []byte(`42`), ReasonNotObject, "record is a number"},
		{"rejects a bare null", []byte(`null`), ReasonNotObject, "record is null"},
		{"rejects a bare boolean", []byte(` true `), ReasonNotObject, "record is a boolean"},
		{"rejects a duplicate event_id member", []byte(`{"event_id":"a","event_id":"b","event_type":"x","event_time":"2026-11-01T10:00:00Z","source":"s"}`), ReasonDuplicateField, `member "event_id" appears more than once`},
		{"rejects a duplicate member spelled with an escape", []byte(`{"event_id":"a","event_type":"x","event_\u0074ype":"y","event_time":"2026-11-01T10:00:00Z","source":"s"}`), ReasonDuplicateField, `member "event_type" appears more than once`},
		{"rejects names that differ only in lone surrogates, which both decode to U+FFFD", []byte(`{"\ud800":1,"\udbff":2}`), ReasonDuplicateField, "member \"\ufffd\" appears more than once"},
		{"rejects a duplicate member outside the contract", []byte(`{"x":1,"event_id":"e-1","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"web-shop","x":2}`), ReasonDuplicateField, `member "x" appears more than once`},

		// event_id.
		{"rejects a record without event_id", record("event_id", omit), ReasonMissingEventID, "event_id is required"},
		{"rejects a null event_id", record("event_id", "null"), ReasonMissingEventID, "event_id is required"},
		{"rejects an empty event_id", record("event_id", `""`), ReasonMissingEventID, "event_id is empty"},
		{"rejects an event_id of only whitespace", record("event_id", `" \t "`), ReasonMissingEventID, "event_id is empty"},
		{"treats member names as case-sensitive", record("event_id", omit, "Event_ID", `"e-1"`), ReasonMissingEventID, "event_id is required"},
		{"rejects a numeric event_id", record("event_id", "12345"), ReasonBadEventID, "event_id must be a string, got a number"},
		{"rejects an object as event_id", record("event_id", `{"id":"e-1"}`), ReasonBadEventID, "got an object"},
		{"rejects an event_id of 129 characters", record("event_id", `"`+strings.Repeat("a", 129)+`"`), ReasonBadEventID, "event_id is 129 characters, the limit is 128"},
		{"counts event_id length in characters, not bytes", record("event_id", `"`+strings.Repeat("é", 129)+`"`), ReasonBadEventID, "129 characters"},

		// event_type.
		{"rejects a record without event_type", record("event_type", omit), ReasonMissingType, "event_type is required"},
		{"rejects a null event_type", record("event_type", "null"), ReasonMissingType, "event_type is required"},
		{"rejects an empty event_type", record("event_type", `"  "`), ReasonMissingType, "event_type is empty"},
		{"rejects a numeric event_type", record("event_type", "7"), ReasonBadType, "event_type must be a string, got a number"},
		{"rejects an event_type that starts with a digit", record("event_type", `"1page"`), ReasonBadType, "does not match"},
		{"rejects an event_type with a space", record("event_type", `"page view"`), ReasonBadType, `"page view" does not match`},
		{"rejects an event_type with a hyphen", record("event_type", `"page-view"`), ReasonBadType, "does not match"},
		{"rejects an event_type that starts with a dot", record("event_type", `".view"`), ReasonBadType, "does not match"},
		{"rejects an event_type of 65 characters", record("event_type", `"a`+strings.Repeat("b", 64)+`"`), ReasonBadType, "does not match"},
		{"rejects an event_type with a newline inside", record("event_type", `"page\nview"`), ReasonBadType, "does not match"},

		// event_time.
		{"rejects a record without event_time", record("event_time", omit), ReasonMissingTime, "event_time is required"},
		{"rejects a null event_time", record("event_time", "null"), ReasonMissingTime, "event_time is required"},
		{"rejects an unparseable event_time", record("event_time", `"yesterday"`), ReasonBadTime, `"yesterday" is not RFC 3339 with an offset`},
		{"rejects an event_time without an offset", record("event_time", `"2026-11-01T10:00:00"`), ReasonBadTime, "not RFC 3339 with an offset"},
		{"rejects an event_time with a space for T", record("event_time", `"2026-11-01 10:00:00Z"`), ReasonBadTime, "not RFC 3339"},
		{"rejects a date without a time", record("event_time", `"2026-11-01"`), ReasonBadTime, "not RFC 3339"},
		{"rejects a date that does not exist", record("event_time", `"2026-02-30T10:00:00Z"`), ReasonBadTime, "not RFC 3339"},
		{"rejects an empty event_time string", record("event_time", `""`), ReasonBadTime, "not RFC 3339"},
		{"rejects epoch milliseconds with a fraction", record("event_time", "1793527200000.5"), ReasonBadTime, "is not integer epoch milliseconds"},
		{"rejects epoch milliseconds with an exponent", record("event_time", "1.7935272e12"), ReasonBadTime, "is not integer epoch milliseconds"},
		{"rejects epoch milliseconds beyond int64", record("event_time", "99999999999999999999"), ReasonBadTime, "is not integer epoch milliseconds"},
		{"rejects epoch milliseconds as a string", record("event_time", `"1793527200000"`), ReasonBadTime, "not RFC 3339"},
		{"rejects a boolean event_time", record("event_time", "true"), ReasonBadTime, "got a boolean"},
		{"rejects an object as event_time", record("event_time", `{"seconds":1}`), ReasonBadTime, "got an object"},
		{"rejects an event_time in 1999", record("event_time", `"1999-12-31T23:59:59Z"`), ReasonTimeOutOfRange, "outside the years 2000-2100"},
		{"rejects an event_time in 2101", record("event_time", `"2101-01-01T00:00:00Z"`), ReasonTimeOutOfRange, "2101-01-01T00:00:00Z is outside"},
		{"checks the year in UTC, after the offset", record("event_time", `"2100-12-31T23:30:00-01:00"`), ReasonTimeOutOfRange, "2101-01-01T00:30:00Z"},
		{"checks the year of epoch milliseconds", record("event_time", "946684799999"), ReasonTimeOutOfRange, "1999-12-31T23:59:59Z"},
		{"rejects epoch zero", record("event_time", "0"), ReasonTimeOutOfRange, "1970-01-01T00:00:00Z"},
		{"rejects negative epoch milliseconds", record("event_time", "-1"), ReasonTimeOutOfRange, "outside the years"},
		{"rejects epoch seconds, which read as 1970", record("event_time", "1793527200"), ReasonTimeOutOfRange, "1970-01-21"},

		// source.
		{"rejects a record without source", record("source", omit), ReasonMissingSource, "source is required"},
		{"rejects a null source", record("source", "null"), ReasonMissingSource, "source is required"},
		{"rejects a source of only whitespace", record("source", `"   "`), ReasonMissingSource, "source is empty"},
		{"rejects a numeric source", record("source", "3"), ReasonBadSource, "source must be a string, got a number"},
		{"rejects a source of 65 characters", record("source", `"`+strings.Repeat("s", 65)+`"`), ReasonBadSource, "source is 65 characters, the limit is 64"},

		// Optional fields with a wrong type.
		{"rejects a numeric user_id", record("user_id", "42"), ReasonBadUserID, "user_id must be a string, got a number"},
		{"rejects a user_id of 129 characters", record("user_id", `"`+strings.Repeat("u", 129)+`"`), ReasonBadUserID, "user_id is 129 characters, the limit is 128"},
		{"rejects an array as user_id", record("user_id", `["u-1"]`), ReasonBadUserID, "got an array"},
		{"rejects a numeric session_id", record("session_id", "7"), ReasonBadSessionID, "session_id must be a string, got a number"},
		{"rejects a session_id of 129 characters", record("session_id", `"`+strings.Repeat("s", 129)+`"`), ReasonBadSessionID, "session_id is 129 characters"},
		{"rejects a value sent as a string", record("value", `"12.50"`), ReasonBadValue, "value must be a number, got a string"},
		{"rejects a boolean value", record("value", "true"), ReasonBadValue, "got a boolean"},
		{"rejects an object as value", record("value", `{"amount":1}`), ReasonBadValue, "got an object"},
		{"rejects a value too large for float64", record("value", "1e400"), ReasonBadValue, "value 1e400 is not a finite float64"},
		{"rejects a negative value too large for float64", record("value", "-1e400"), ReasonBadValue, "not a finite float64"},
		{"rejects properties sent as an array", record("properties", `[{"a":1}]`), ReasonBadProperties, "properties must be a JSON object, got an array"},
		{"rejects properties sent as a string", record("properties", `"{\"a\":1}"`), ReasonBadProperties, "got a string"},
		{"rejects properties sent as a number", record("properties", "1"), ReasonBadProperties, "got a number"},

		// Order: the first broken rule in contract order is reported.
		{"reports event_id before event_type", record("event_id", omit, "event_type", "1"), ReasonMissingEventID, "event_id"},
		{"reports event_time before source", record("event_time", `"soon"`, "source", omit), ReasonBadTime, "soon"},
		{"reports the size before the bytes", append(oversize[:len(oversize)-2], "\xff\"}"...), ReasonTooLarge, "limit"},
		{"reports the depth before the JSON syntax", []byte(strings.Repeat("[", 100)), ReasonTooDeep, "100 levels"},
	}
}

func TestParseEventRejects(t *testing.T) {
	for _, tc := range rejectCases() {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseEvent(tc.data)
			if err == nil {
				t.Fatalf("ParseEvent accepted the record: %s", showEvent(ev))
			}
			var ce *ContractError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ContractError", err, err)
			}
			if ce.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (error: %v)", ce.Reason, tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("error %q does not contain %q", err, tc.errPart)
			}
			if !strings.HasPrefix(err.Error(), tc.reason+": ") {
				t.Errorf("error %q does not start with its reason code", err)
			}
		})
	}
}

type acceptCase struct {
	name string
	data []byte
	want func(*Event)
}

// acceptCases are valid records and their canonical forms, each as a change
// to baseEvent.
func acceptCases() []acceptCase {
	// record() of an empty pad is len(record("properties", `{"pad":""}`))
	// bytes; the pad fills it to exactly MaxRecordBytes.
	pad := MaxRecordBytes - len(record("properties", `{"pad":""}`))
	atLimit := record("properties", `{"pad":"`+strings.Repeat("x", pad)+`"}`)
	if len(atLimit) != MaxRecordBytes {
		panic(fmt.Sprintf("record at the limit is %d bytes", len(atLimit))) // a bug in the test table
	}
	return []acceptCase{
		{"accepts the required fields alone", record(), func(*Event) {}},
		{"accepts a record of exactly 1 MiB", atLimit, func(e *Event) {
			e.Properties = ptr(`{"pad":"` + strings.Repeat("x", pad) + `"}`)
		}},
		{"accepts nesting at the limit of 64 levels", record("properties", nested(MaxDepth-1)), func(e *Event) {
			e.Properties = ptr(nested(MaxDepth - 1))
		}},
		{"does not count brackets inside strings as nesting", record("properties", `{"s":"`+strings.Repeat("[{", 100)+`\"]"}`), func(e *Event) {
			e.Properties = ptr(`{"s":"` + strings.Repeat("[{", 100) + `\"]"}`)
		}},
		{"accepts whitespace around the object and its members", []byte("\n\t { \"event_id\" : \"e-1\" ,\r\n \"event_type\":\"page.view\", \"event_time\" : \"2026-11-01T10:00:00Z\", \"source\":\"web-shop\" } \n"), func(*Event) {}},
		{"accepts members in any order", []byte(`{"source":"web-shop","event_time":"2026-11-01T10:00:00Z","event_type":"page.view","event_id":"e-1"}`), func(*Event) {}},

		// event_id and source.
		{"trims event_id", record("event_id", `"  e-1\t"`), func(*Event) {}},
		{"keeps the case and inner spaces of event_id", record("event_id", `" Order 7/A "`), func(e *Event) { e.EventID = "Order 7/A" }},
		{"accepts an event_id of 128 characters", record("event_id", `"`+strings.Repeat("é", 128)+`"`), func(e *Event) { e.EventID = strings.Repeat("é", 128) }},
		{"accepts an event_id of 128 characters after trimming", record("event_id", `"  `+strings.Repeat("a", 128)+`  "`), func(e *Event) { e.EventID = strings.Repeat("a", 128) }},
		{"accepts a one-character event_id", record("event_id", `"x"`), func(e *Event) { e.EventID = "x" }},
		{"decodes escapes in event_id", record("event_id", `"e\u002d1"`), func(*Event) {}},
		{"trims source", record("source", `" web-shop "`), func(*Event) {}},
		{"accepts a source of 64 characters", record("source", `"`+strings.Repeat("s", 64)+`"`), func(e *Event) { e.Source = strings.Repeat("s", 64) }},

		// event_type.
		{"lowercases event_type", record("event_type", `"Page.View"`), func(*Event) {}},
		{"trims event_type before matching", record("event_type", `"  PAGE.VIEW\n"`), func(*Event) {}},
		{"accepts an event_type of one letter", record("event_type", `"x"`), func(e *Event) { e.EventType = "x" }},
		{"accepts an event_type of 64 characters", record("event_type", `"a`+strings.Repeat("_", 63)+`"`), func(e *Event) { e.EventType = "a" + strings.Repeat("_", 63) }},
		{"accepts digits, dots and underscores in event_type", record("event_type", `"checkout.step_2.done"`), func(e *Event) { e.EventType = "checkout.step_2.done" }},

		// event_time.
		{"reads RFC 3339 in UTC", record("event_time", `"2026-11-01T10:00:00Z"`), func(*Event) {}},
		{"converts a positive offset to UTC", record("event_time", `"2026-11-01T15:30:00+05:30"`), func(*Event) {}},
		{"converts a negative offset to UTC", record("event_time", `"2026-11-01T02:00:00-08:00"`), func(*Event) {}},
		{"moves an event across the day boundary when converting to UTC", record("event_time", `"2026-11-02T01:30:00+02:00"`), func(e *Event) {
			e.EventTime = micros("2026-11-01T23:30:00Z")
		}},
		{"keeps microseconds", record("event_time", `"2026-11-01T10:00:00.123456Z"`), func(e *Event) { e.EventTime = baseTime + 123456 }},
		{"truncates nanoseconds to microseconds", record("event_time", `"2026-11-01T10:00:00.123456789Z"`), func(e *Event) { e.EventTime = baseTime + 123456 }},
		{"keeps milliseconds of RFC 3339", record("event_time", `"2026-11-01T11:00:00.5+01:00"`), func(e *Event) { e.EventTime = baseTime + 500000 }},
		{"reads integer epoch milliseconds", record("event_time", "1793527200000"), func(*Event) {}},
		{"keeps the milliseconds of epoch milliseconds", record("event_time", "1793527200123"), func(e *Event) { e.EventTime = baseTime + 123000 }},
		{"accepts the first instant of 2000", record("event_time", `"2000-01-01T00:00:00Z"`), func(e *Event) { e.EventTime = micros("2000-01-01T00:00:00Z") }},
		{"accepts the first millisecond of 2000 as epoch milliseconds", record("event_time", "946684800000"), func(e *Event) { e.EventTime = micros("2000-01-01T00:00:00Z") }},
		{"accepts the last microsecond of 2100", record("event_time", `"2100-12-31T23:59:59.999999Z"`), func(e *Event) { e.EventTime = micros("2100-12-31T23:59:59.999999Z") }},

		// platform.
		{"keeps a known platform", record("platform", `"web"`), func(e *Event) { e.Platform = ptr("web") }},
		{"lowercases a known platform", record("platform", `"IOS"`), func(e *Event) { e.Platform = ptr("ios") }},
		{"trims a known platform", record("platform", `" Android "`), func(e *Event) { e.Platform = ptr("android") }},
		{"keeps the server platform", record("platform", `"server"`), func(e *Event) { e.Platform = ptr("server") }},
		{"keeps the iot platform", record("platform", `"IoT"`), func(e *Event) { e.Platform = ptr("iot") }},
		{"maps an unknown platform to other", record("platform", `"smart-tv"`), func(e *Event) { e.Platform = ptr(PlatformOther) }},
		{"maps a platform of another type to other", record("platform", "3"), func(e *Event) { e.Platform = ptr(PlatformOther) }},
		{"leaves an absent platform NULL", record(), func(*Event) {}},
		{"leaves a null platform NULL", record("platform", "null"), func(*Event) {}},
		{"treats an empty platform as absent", record("platform", `" "`), func(*Event) {}},

		// user_id and session_id.
		{"trims user_id", record("user_id", `"  u-7 "`), func(e *Event) { e.UserID = ptr("u-7") }},
		{"turns an empty user_id into NULL", record("user_id", `""`), func(*Event) {}},
		{"turns a whitespace user_id into NULL", record("user_id", `"   "`), func(*Event) {}},
		{"turns a null user_id into NULL", record("user_id", "null"), func(*Event) {}},
		{"accepts a user_id of 128 characters", record("user_id", `"`+strings.Repeat("u", 128)+`"`), func(e *Event) { e.UserID = ptr(strings.Repeat("u", 128)) }},
		{"trims session_id", record("session_id", `" s-9 "`), func(e *Event) { e.SessionID = ptr("s-9") }},
		{"turns an empty session_id into NULL", record("session_id", `""`), func(*Event) {}},

		// country.
		{"uppercases country", record("country", `"de"`), func(e *Event) { e.Country = ptr("DE") }},
		{"trims country", record("country", `" fr "`), func(e *Event) { e.Country = ptr("FR") }},
		{"keeps any two letters as country", record("country", `"XK"`), func(e *Event) { e.Country = ptr("XK") }},
		{"turns a three-letter country into NULL instead of rejecting", record("country", `"USA"`), func(*Event) {}},
		{"turns a country name into NULL", record("country", `"Germany"`), func(*Event) {}},
		{"turns a country with a digit into NULL", record("country", `"U1"`), func(*Event) {}},
		{"turns an empty country into NULL", record("country", `""`), func(*Event) {}},
		{"turns a numeric country into NULL", record("country", "276"), func(*Event) {}},
		{"turns a null country into NULL", record("country", "null"), func(*Event) {}},
		{"turns non-ASCII letters that uppercase to ASCII into NULL", record("country", `"ıt"`), func(*Event) {}},
		{"turns accented letters into NULL", record("country", `"ÉS"`), func(*Event) {}},

		// value.
		{"reads a decimal value", record("value", "12.5"), func(e *Event) { e.Value = ptr(12.5) }},
		{"reads an integer value", record("value", "42"), func(e *Event) { e.Value = ptr(42.0) }},
		{"reads a negative value", record("value", "-3.25"), func(e *Event) { e.Value = ptr(-3.25) }},
		{"reads a zero value", record("value", "0"), func(e *Event) { e.Value = ptr(0.0) }},
		{"reads a value with an exponent", record("value", "1.5e3"), func(e *Event) { e.Value = ptr(1500.0) }},
		{"reads the largest float64", record("value", "1.7976931348623157e308"), func(e *Event) { e.Value = ptr(1.7976931348623157e308) }},
		{"reads an underflowing value as zero", record("value", "1e-400"), func(e *Event) { e.Value = ptr(0.0) }},
		{"leaves a null value NULL", record("value", "null"), func(*Event) {}},

		// properties and extra.
		{"keeps properties as compact JSON", record("properties", `{ "sku" : "A-1", "tags": [ "x", 2 ], "n": {"deep": null} }`), func(e *Event) {
			e.Properties = ptr(`{"sku":"A-1","tags":["x",2],"n":{"deep":null}}`)
		}},
		{"keeps empty properties", record("properties", "{}"), func(e *Event) { e.Properties = ptr("{}") }},
		{"keeps escapes in properties as sent", record("properties", `{"q":"a\u0026b \"c\""}`), func(e *Event) { e.Properties = ptr(`{"q":"a\u0026b \"c\""}`) }},
		{"keeps duplicate names inside properties", record("properties", `{"a":1,"a":2}`), func(e *Event) { e.Properties = ptr(`{"a":1,"a":2}`) }},
		{"leaves null properties NULL", record("properties", "null"), func(*Event) {}},
		{"keeps an unknown field in extra", record("app_version", `"5.2.1"`), func(e *Event) { e.Extra = ptr(`{"app_version":"5.2.1"}`) }},
		{"keeps unknown fields in extra in input order", record("zeta", "1", "alpha", ` { "b" : [ 1 , 2 ] } `, "mid", "null"), func(e *Event) {
			e.Extra = ptr(`{"zeta":1,"alpha":{"b":[1,2]},"mid":null}`)
		}},
		{"keeps unknown fields that come before the contract fields", []byte(`{"sdk":"js","event_id":"e-1","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"web-shop","tags":["a"]}`), func(e *Event) {
			e.Extra = ptr(`{"sdk":"js","tags":["a"]}`)
		}},
		{"keeps a member that differs from a contract field only in case", record("Country", `"DE"`), func(e *Event) { e.Extra = ptr(`{"Country":"DE"}`) }},
		{"keeps an envelope member of a bare event in extra", record("envelope", `"other"`), func(e *Event) { e.Extra = ptr(`{"envelope":"other"}`) }},
		{"keeps numbers outside float64 in extra as sent", record("big", "1e400"), func(e *Event) { e.Extra = ptr(`{"big":1e400}`) }},
		{"writes names in extra as json.Marshal does, HTML characters escaped", record("a<b&c", "1"), func(e *Event) { e.Extra = ptr(`{"a\u003cb\u0026c":1}`) }},
		{"writes escaped names in extra unescaped", []byte(`{"event_id":"e-1","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"web-shop","\u0061pp":"x","t\tab":1}`), func(e *Event) {
			e.Extra = ptr(`{"app":"x","t\tab":1}`)
		}},
		{"lowercases an event_type by Unicode rules, the Kelvin sign to k", record("event_type", `"\u212a"`), func(e *Event) { e.EventType = "k" }},
		{"keeps a member with an empty name in extra", record("", `"x"`), func(e *Event) { e.Extra = ptr(`{"":"x"}`) }},
		{"does not put contract fields that were dropped as invalid into extra", record("country", `"USA"`, "platform", `"tv"`), func(e *Event) { e.Platform = ptr(PlatformOther) }},

		// Everything at once.
		{"canonicalizes a full record", []byte(`{"event_id":" ord-9 ","event_type":"Purchase","event_time":"2026-11-01T12:00:00.25+02:00","source":" ios-app","platform":"iOS","user_id":" u-1 ","session_id":"","country":"gb","value":19.99,"properties":{"sku": "A"},"app":"2.0"}`), func(e *Event) {
			*e = Event{EventID: "ord-9", EventType: "purchase", EventTime: baseTime + 250000, Source: "ios-app",
				Platform: ptr("ios"), UserID: ptr("u-1"), Country: ptr("GB"), Value: ptr(19.99),
				Properties: ptr(`{"sku":"A"}`), Extra: ptr(`{"app":"2.0"}`)}
		}},
	}
}

func TestParseEventCanonicalForm(t *testing.T) {
	for _, tc := range acceptCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEvent(tc.data)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			want := baseEvent()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseEvent:\n got %s\nwant %s", showEvent(got), showEvent(want))
			}
			if got.IngestTime != 0 || got.Layer != "" || got.MessageID != nil || got.SourceURI != nil {
				t.Errorf("ParseEvent set ingest fields, which are the caller's: %s", showEvent(got))
			}
		})
	}
}

func TestParseEventLeavesInputUnchanged(t *testing.T) {
	data := record("event_id", `" e-1 "`, "event_type", `"PAGE.VIEW"`, "extra", `{ "a" : 1 }`)
	before := string(data)
	if _, err := ParseEvent(data); err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	if string(data) != before {
		t.Errorf("ParseEvent changed its input:\n got %s\nwant %s", data, before)
	}
}

// manyMembers returns a valid record of just under 1 MiB made of about
// 100k small members.
func manyMembers() []byte {
	var b strings.Builder
	b.Write(record()[:len(record())-1])
	for i := 0; b.Len() < MaxRecordBytes-16; i++ {
		fmt.Fprintf(&b, `,"m%d":0`, i)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestParseEventAcceptsARecordOfManyMembers(t *testing.T) {
	// The duplicate check was quadratic: this record took about 30 s.
	// BenchmarkParseEventManyMembers measures it.
	ev, err := ParseEvent(manyMembers())
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	if ev.Extra == nil || !strings.HasPrefix(*ev.Extra, `{"m0":0,"m1":0,`) || !json.Valid([]byte(*ev.Extra)) {
		t.Errorf("extra does not hold the members as a JSON object")
	}
}

func BenchmarkParseEventManyMembers(b *testing.B) {
	data := manyMembers()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// maxAllocsPerEvent is what decoding one valid record may allocate.
const maxAllocsPerEvent = 10

func TestParseEventAllocations(t *testing.T) {
	// The json.Decoder token API took 176 allocations for this record.
	data := record("platform", `"iOS"`, "user_id", `" u-1 "`, "session_id", `"s-1"`, "country", `"de"`, "value", "19.99",
		"properties", `{ "sku" : "A-1", "qty" : 2 }`, "app_version", `"5.2.1"`)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a valid record with every field allocates at most 10 times", data},
		{"a valid record of the required fields allocates at most 10 times", record()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEvent(tc.data); err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if n := testing.AllocsPerRun(200, func() { _, _ = ParseEvent(tc.data) }); n > maxAllocsPerEvent {
				t.Errorf("ParseEvent allocates %.1f times per record, the budget is %d", n, maxAllocsPerEvent)
			}
		})
	}
}

func TestContractError(t *testing.T) {
	t.Run("formats as reason and message", func(t *testing.T) {
		err := reject(ReasonBadValue, "value %s is odd", "x")
		if got, want := err.Error(), "bad_value: value x is odd"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("gives the reason of a wrapped error", func(t *testing.T) {
		err := fmt.Errorf("decode gs://b/o#L3: %w", reject(ReasonTooDeep, "deep"))
		if got := ReasonOf(err); got != ReasonTooDeep {
			t.Errorf("ReasonOf = %q, want %q", got, ReasonTooDeep)
		}
	})
	t.Run("gives no reason for other errors", func(t *testing.T) {
		if got := ReasonOf(errors.New("boom")); got != "" {
			t.Errorf("ReasonOf = %q, want empty", got)
		}
		if got := ReasonOf(nil); got != "" {
			t.Errorf("ReasonOf(nil) = %q, want empty", got)
		}
	})
}

// parserReasons are the reason codes ParseEvent and ParseLakeLine give;
// write_failed and unreadable_input belong to the pipeline's IO steps.
var parserReasons = []string{
	ReasonEmpty, ReasonTooLarge, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonNotObject, ReasonTooDeep,
	ReasonDuplicateField, ReasonMissingEventID, ReasonBadEventID, ReasonMissingType, ReasonBadType,
	ReasonMissingTime, ReasonBadTime, ReasonTimeOutOfRange, ReasonMissingSource, ReasonBadSource,
	ReasonBadUserID, ReasonBadSessionID, ReasonBadValue, ReasonBadProperties, ReasonBadEnvelope,
}

func TestEveryReasonCodeIsTested(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range rejectCases() {
		tested[tc.reason] = true
	}
	for _, tc := range lakeLineRejectCases() {
		tested[tc.reason] = true
	}
	for _, r := range parserReasons {
		if !tested[r] {
			t.Errorf("reason %q has no test case", r)
		}
	}
	if got, want := len(tested), len(parserReasons); got != want {
		t.Errorf("tests use %d reason codes, parserReasons lists %d: %v", got, want, tested)
	}
}
