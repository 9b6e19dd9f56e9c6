package sample

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/railyard/railyard/schemas"
)

// Where a bad class's records are.
const (
	// ViaMessage is a message whose data breaks the contract: it is in
	// the messages and, archived in its envelope, in the lake.
	ViaMessage = "message"
	// ViaLakeLine is a lake line that is not a readable record: it is
	// only in the lake, in an import or restored file.
	ViaLakeLine = "lake_line"
)

// Class is a class of bad records: what is wrong and the reason code the
// record dead-letters with.
type Class struct {
	Name        string `json:"name"`
	Reason      string `json:"reason"`
	Via         string `json:"via"`
	Description string `json:"description"`
	// Count is how many records of the class a sample holds.
	Count int `json:"count"`
}

// badClass is a Class and how to make a record of it from a valid event.
type badClass struct {
	Class
	make func(r *rng, d *draft) []byte
}

// Classes returns the catalog of bad classes (without counts).
func Classes() []Class {
	out := make([]Class, len(badCatalog))
	for i, c := range badCatalog {
		out[i] = c.Class
	}
	return out
}

func class(name, reason, via, desc string, mk func(r *rng, d *draft) []byte) badClass {
	return badClass{Class{Name: name, Reason: reason, Via: via, Description: desc}, mk}
}

// setTo returns a maker that writes d with field set to one of raws.
func setTo(field string, raws ...string) func(r *rng, d *draft) []byte {
	return func(r *rng, d *draft) []byte { return d.members.with(field, pick(r, raws...)).encode(d.style) }
}

func without(field string) func(r *rng, d *draft) []byte {
	return func(r *rng, d *draft) []byte { return d.members.without(field).encode(d.style) }
}

func compact(d *draft) string { return string(d.members.encode(styleCompact)) }

// oversizeBytes is the size of the oversize record's padding: over the
// contract's 1 MiB limit, and compressible, to keep the files small.
const oversizeBytes = schemas.MaxRecordBytes + 64<<10

var badCatalog = []badClass{
	class("broken_json", schemas.ReasonInvalidJSON, ViaMessage, "JSON with a member's colon missing",
		func(r *rng, d *draft) []byte { return []byte(strings.Replace(compact(d), ":", " ", 1)) }),
	class("truncated_json", schemas.ReasonInvalidJSON, ViaMessage, "a record cut off part way, as by a full buffer",
		func(r *rng, d *draft) []byte { s := compact(d); return []byte(s[:len(s)*(40+r.intn(40))/100]) }),
	class("array_of_events", schemas.ReasonNotObject, ViaMessage, "a batch of events sent as one JSON array",
		func(r *rng, d *draft) []byte { return []byte("[" + compact(d) + "," + compact(d) + "]") }),
	class("bare_string", schemas.ReasonNotObject, ViaMessage, "the event encoded twice: a JSON string holding the JSON",
		func(r *rng, d *draft) []byte { return []byte(jstr(compact(d))) }),
	class("bare_number", schemas.ReasonNotObject, ViaMessage, "a bare number (a stray timestamp)",
		func(r *rng, d *draft) []byte { return []byte(strconv.FormatInt(d.w.EventTime/1000, 10)) }),
	class("bare_null", schemas.ReasonNotObject, ViaMessage, "the JSON literal null",
		func(r *rng, d *draft) []byte { return []byte("null") }),
	class("bare_boolean", schemas.ReasonNotObject, ViaMessage, "the JSON literal true",
		func(r *rng, d *draft) []byte { return []byte("true") }),
	class("empty_data", schemas.ReasonEmpty, ViaMessage, "a message with attributes and no data",
		func(r *rng, d *draft) []byte { return []byte{} }),
	class("whitespace_only", schemas.ReasonEmpty, ViaMessage, "data of only spaces, tabs and newlines",
		func(r *rng, d *draft) []byte { return []byte(pick(r, " ", "\n", " \t\r\n ")) }),

	class("event_id_not_string", schemas.ReasonBadEventID, ViaMessage, "event_id sent as a number",
		setTo("event_id", "12345678", "9007199254740993")),
	class("event_type_not_string", schemas.ReasonBadType, ViaMessage, "event_type sent as a number or an array",
		setTo("event_type", "3", `["page.view"]`)),
	class("event_time_object", schemas.ReasonBadTime, ViaMessage, "event_time as a protobuf Timestamp object",
		func(r *rng, d *draft) []byte {
			return d.members.with("event_time", fmt.Sprintf(`{"seconds":%d,"nanos":0}`, d.w.EventTime/1_000_000)).encode(d.style)
		}),
	class("source_not_string", schemas.ReasonBadSource, ViaMessage, "source sent as an object",
		func(r *rng, d *draft) []byte {
			return d.members.with("source", `{"name":`+jstr(d.w.Source)+`}`).encode(d.style)
		}),
	class("missing_event_id", schemas.ReasonMissingEventID, ViaMessage, "no event_id member", without("event_id")),
	class("missing_event_type", schemas.ReasonMissingType, ViaMessage, "no event_type member", without("event_type")),
	class("missing_event_time", schemas.ReasonMissingTime, ViaMessage, "no event_time member", without("event_time")),
	class("missing_source", schemas.ReasonMissingSource, ViaMessage, "no source member", without("source")),
	class("empty_event_id", schemas.ReasonMissingEventID, ViaMessage, `event_id ""`, setTo("event_id", `""`)),
	class("whitespace_event_id", schemas.ReasonMissingEventID, ViaMessage, "event_id of only whitespace",
		setTo("event_id", `"   "`, `"\t"`, `" \n "`)),
	class("null_event_id", schemas.ReasonMissingEventID, ViaMessage, "event_id null", setTo("event_id", "null")),
	class("event_id_129_chars", schemas.ReasonBadEventID, ViaMessage, "event_id of 129 characters, one over the limit",
		func(r *rng, d *draft) []byte {
			return d.members.with("event_id", jstr("w-"+r.hex(127))).encode(d.style)
		}),
	class("event_type_bad_pattern", schemas.ReasonBadType, ViaMessage, "event_type with a space, a hyphen or a leading digit",
		setTo("event_type", `"Add to cart"`, `"page-view"`, `"1st.visit"`, `"_internal"`)),
	class("event_time_unparseable", schemas.ReasonBadTime, ViaMessage, "event_time in a format that is not RFC 3339",
		setTo("event_time", `"yesterday"`, `"Sun, 01 Nov 2026 10:00:00 GMT"`, `"01/11/2026 10:00"`)),
	class("event_time_without_offset", schemas.ReasonBadTime, ViaMessage, "event_time without a UTC offset",
		func(r *rng, d *draft) []byte {
			t := time.UnixMicro(d.w.EventTime).UTC()
			return d.members.with("event_time", jstr(t.Format(pick(r, "2006-01-02T15:04:05", "2006-01-02 15:04:05.000")))).encode(d.style)
		}),
	class("event_time_float", schemas.ReasonBadTime, ViaMessage, "event_time as fractional epoch seconds (Python's time.time())",
		func(r *rng, d *draft) []byte {
			return d.members.with("event_time", strconv.FormatFloat(float64(d.w.EventTime)/1e6, 'f', 3, 64)).encode(d.style)
		}),
	class("event_time_numeric_string", schemas.ReasonBadTime, ViaMessage, "epoch milliseconds sent as a string",
		func(r *rng, d *draft) []byte {
			return d.members.with("event_time", jstr(strconv.FormatInt(d.w.EventTime/1000, 10))).encode(d.style)
		}),
	class("event_time_epoch_seconds", schemas.ReasonTimeOutOfRange, ViaMessage, "epoch seconds where milliseconds belong: a time in January 1970",
		func(r *rng, d *draft) []byte {
			return d.members.with("event_time", strconv.FormatInt(d.w.EventTime/1_000_000, 10)).encode(d.style)
		}),
	class("event_time_year_1999", schemas.ReasonTimeOutOfRange, ViaMessage, "event_time in 1999, before the contract's range",
		setTo("event_time", `"1999-12-31T23:59:59Z"`, `"1999-06-01T08:00:00+02:00"`)),
	class("event_time_year_2101", schemas.ReasonTimeOutOfRange, ViaMessage, "event_time in 2101, after the contract's range",
		setTo("event_time", `"2101-01-01T00:00:00Z"`, `"2126-11-01T10:00:00Z"`)),
	class("source_too_long", schemas.ReasonBadSource, ViaMessage, "source of more than 64 characters",
		func(r *rng, d *draft) []byte {
			return d.members.with("source", jstr(d.w.Source+"/checkout/"+r.hex(60))).encode(d.style)
		}),
	class("user_id_number", schemas.ReasonBadUserID, ViaMessage, "user_id sent as a number", setTo("user_id", "42", "1001")),
	class("user_id_too_long", schemas.ReasonBadUserID, ViaMessage, "user_id of more than 128 characters (a token sent by mistake)",
		func(r *rng, d *draft) []byte {
			return d.members.with("user_id", jstr("eyJhbGciOiJIUzI1NiJ9."+r.alnum(180))).encode(d.style)
		}),
	class("session_id_number", schemas.ReasonBadSessionID, ViaMessage, "session_id sent as a number", setTo("session_id", "7", "314159")),
	class("value_string", schemas.ReasonBadValue, ViaMessage, "value sent as a string",
		setTo("value", `"19.90"`, `"12,50"`, `"EUR 5"`)),
	class("value_huge", schemas.ReasonBadValue, ViaMessage, "value beyond float64 (1e400)", setTo("value", "1e400", "-2e308")),
	class("properties_array", schemas.ReasonBadProperties, ViaMessage, "properties sent as an array",
		setTo("properties", `[{"sku":"SKU-1001","qty":1}]`, `[]`)),
	class("properties_string", schemas.ReasonBadProperties, ViaMessage, "properties encoded twice: a string holding JSON",
		setTo("properties", `"{\"sku\":\"SKU-1001\"}"`)),
	class("duplicate_member", schemas.ReasonDuplicateField, ViaMessage, "event_id twice, with different values",
		func(r *rng, d *draft) []byte {
			return append(d.members, member{"event_id", jstr("w-" + r.hex(16))}).encode(d.style)
		}),
	class("deep_nesting", schemas.ReasonTooDeep, ViaMessage, "properties nested 80 levels deep",
		func(r *rng, d *draft) []byte {
			deep := strings.Repeat(`{"child":`, 79) + `{"leaf":true}` + strings.Repeat("}", 79)
			return d.members.with("properties", deep).encode(d.style)
		}),
	class("oversize_record", schemas.ReasonTooLarge, ViaMessage, "a record over 1 MiB (an image inlined as base64)",
		func(r *rng, d *draft) []byte {
			img := "iVBORw0KGgoAAAANSUhEUgAA" + strings.Repeat("A", oversizeBytes)
			return d.members.with("properties", `{"image_base64":"`+img+`"}`).encode(d.style)
		}),
	class("non_utf8_bytes", schemas.ReasonInvalidUTF8, ViaMessage, "Latin-1 text in a string (M\\xfcnchen)",
		func(r *rng, d *draft) []byte {
			return d.members.with("properties", "{\"city\":\"M\xfcnchen\",\"street\":\"Stra\xdfe 1\"}").encode(d.style)
		}),
	class("utf8_bom", schemas.ReasonInvalidJSON, ViaMessage, "a UTF-8 byte order mark before the object",
		func(r *rng, d *draft) []byte { return append([]byte("\xef\xbb\xbf"), d.members.encode(d.style)...) }),
	class("trailing_garbage", schemas.ReasonInvalidJSON, ViaMessage, "bytes after the closing brace",
		func(r *rng, d *draft) []byte {
			return append(d.members.encode(d.style), pick(r, "}", ",", "\x00", " EOF")...)
		}),
	class("two_objects", schemas.ReasonInvalidJSON, ViaMessage, "two events in one message, one after the other",
		func(r *rng, d *draft) []byte { return []byte(compact(d) + pick(r, "", "\n") + compact(d)) }),
	class("single_quotes", schemas.ReasonInvalidJSON, ViaMessage, "a Python dict's repr instead of JSON",
		func(r *rng, d *draft) []byte {
			s := fmt.Sprintf("{'event_id': '%s', 'event_type': '%s', 'event_time': '%s', 'source': '%s', 'value': None, 'test': True}",
				d.w.EventID, d.w.EventType, time.UnixMicro(d.w.EventTime).UTC().Format(time.RFC3339), d.w.Source)
			return []byte(s)
		}),
	class("nan_value", schemas.ReasonInvalidJSON, ViaMessage, "value NaN, which JSON does not have", setTo("value", "NaN", "Infinity")),

	class("envelope_unknown_version", schemas.ReasonBadEnvelope, ViaLakeLine, "an archive envelope of a version this reader does not know",
		func(r *rng, d *draft) []byte {
			return bytes.Replace(envelopeOf(d, "9"+r.hex(6)), []byte(schemas.EnvelopeVersion), []byte("railyard/raw/v0"), 1)
		}),
	class("envelope_missing_message_id", schemas.ReasonBadEnvelope, ViaLakeLine, "an archive envelope without a message id",
		func(r *rng, d *draft) []byte { return envelopeOf(d, "") }),
	class("envelope_bad_base64", schemas.ReasonBadEnvelope, ViaLakeLine, "an archive envelope whose data is JSON text, not base64",
		func(r *rng, d *draft) []byte {
			line := envelopeOf(d, "9"+r.hex(6))
			enc := base64.StdEncoding.EncodeToString(d.members.encode(styleCompact))
			return bytes.Replace(line, []byte(jstr(enc)), []byte(jstr(compact(d))), 1)
		}),
	class("csv_header_line", schemas.ReasonInvalidJSON, ViaLakeLine, "a CSV header line in a JSON lines file",
		func(r *rng, d *draft) []byte { return []byte("event_id,event_type,event_time,source,user_id,value") }),
}

// envelopeOf returns the archive line of d's record as message id.
func envelopeOf(d *draft, id string) []byte {
	line, err := schemas.MarshalEnvelope(schemas.Record{
		Data:        d.members.encode(styleCompact),
		Attributes:  d.attrs,
		MessageID:   id,
		PublishTime: d.w.EventTime + d.delay,
	})
	if err != nil {
		// The sample's times are in 2000-2100; MarshalEnvelope cannot fail on them.
		return []byte(fmt.Sprintf(`{"envelope":"railyard/raw/v1","error":%s}`, jstr(err.Error())))
	}
	return line
}

func lookupClass(name string) (badClass, error) {
	for _, c := range badCatalog {
		if c.Name == name {
			return c, nil
		}
	}
	return badClass{}, fmt.Errorf("no bad class %q", name)
}

// badBase returns a valid event for a bad record to start from, at a
// random time of the sample.
func (g *generator) badBase(r *rng) *draft { return g.badBaseAt(r, g.diurnalTime(r)) }

// badBaseAt returns a valid event at t for a bad record to start from.
func (g *generator) badBaseAt(r *rng, t int64) *draft {
	src := pick(r, srcWeb, srcWeb, srcIOS, srcAndroid, srcBilling)
	u := g.users[r.intn(len(g.users))]
	typ := pick(r, "page.view", "product.view", "purchase", "search")
	if src.kind == kindBilling {
		typ = "payment.succeeded"
	}
	d := g.newDraft(r, src, t, u, typ)
	d.setSession("S-" + strings.ToUpper(r.hex(10)))
	g.eventDetails(r, d, typ, "o-"+r.hex(10), float64(500+r.intn(20000))/100)
	if d.w.Value == nil {
		d.setValue(float64(r.intn(1000))/100, 2)
	}
	if d.props == nil {
		d.setProps(obj{{"sku", jstr(pick(r, skus...))}})
	}
	return d
}

// badMessages adds BadPerClass messages of every message class (one of
// the oversize class).
func (g *generator) badMessages() {
	r := newRNG(g.cfg.Seed, streamBad)
	for _, c := range badCatalog {
		if c.Via != ViaMessage {
			continue
		}
		n := g.cfg.BadPerClass
		if c.Name == "oversize_record" {
			n = min(n, 1)
		}
		for range n {
			d := g.badBase(r)
			g.messages = append(g.messages, Message{
				Data:        c.make(r, d),
				Attributes:  d.attrs,
				PublishTime: d.w.EventTime + d.delay,
				Kind:        KindBad,
				Class:       c.Name,
				Reason:      c.Reason,
				seq:         g.nextSeq(),
			})
		}
	}
}

// badLine returns a bare lake line of class c, made from an event of the
// hour that starts at hour: the hour of the file it is in.
func (g *generator) badLine(r *rng, c badClass, hour int64) Message {
	d := g.badBaseAt(r, hour+r.between(0, int64(50*time.Minute/time.Microsecond)))
	return Message{Data: c.make(r, d), Kind: KindBad, Class: c.Name, Reason: c.Reason}
}

// restoredFile adds a file of archive lines damaged in a restore: every
// envelope class, BadPerClass times.
func (g *generator) restoredFile() {
	if g.cfg.BadPerClass == 0 {
		return
	}
	r := newRNG(g.cfg.Seed, streamImport+100)
	const hour = int64(time.Hour / time.Microsecond)
	at := g.start + int64(g.cfg.Days-1)*24*hour + 5*hour
	f := ImportFile{Path: schemas.LakeHourPath(at) + "restored-archive-0001.jsonl.gz"}
	for _, c := range badCatalog {
		if c.Via != ViaLakeLine || c.Name == "csv_header_line" {
			continue
		}
		for range g.cfg.BadPerClass {
			f.Lines = append(f.Lines, g.badLine(r, c, at))
		}
	}
	g.imports = append(g.imports, f)
}
