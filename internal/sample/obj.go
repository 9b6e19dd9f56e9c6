package sample

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// member is one member of a JSON object as the generator writes it: a
// name and its raw JSON value.
type member struct{ name, raw string }

// obj is a JSON object with its members in order, written by hand so that
// the sample can hold what encoding/json never writes: members in any
// order, odd spacing, duplicate names.
type obj []member

// with returns o with name set to raw: replaced in place, or appended.
func (o obj) with(name, raw string) obj {
	out := append(obj(nil), o...)
	for i := range out {
		if out[i].name == name {
			out[i].raw = raw
			return out
		}
	}
	return append(out, member{name, raw})
}

// without returns o without name.
func (o obj) without(name string) obj {
	out := make(obj, 0, len(o))
	for _, m := range o {
		if m.name != name {
			out = append(out, m)
		}
	}
	return out
}

func (o obj) get(name string) (string, bool) {
	for _, m := range o {
		if m.name == name {
			return m.raw, true
		}
	}
	return "", false
}

// style is how a record's whitespace looks.
type style int

const (
	styleCompact style = iota // {"a":1,"b":2}
	styleSpaced               // {"a": 1, "b": 2}
	stylePretty               // one member per line, two-space indent
)

func (o obj) encode(st style) []byte {
	var b bytes.Buffer
	o.write(&b, st, "")
	return b.Bytes()
}

func (o obj) write(b *bytes.Buffer, st style, indent string) {
	if len(o) == 0 {
		b.WriteString("{}")
		return
	}
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
			if st == styleSpaced {
				b.WriteByte(' ')
			}
		}
		if st == stylePretty {
			b.WriteString("\n" + indent + "  ")
		}
		b.WriteString(jstr(m.name))
		b.WriteByte(':')
		if st != styleCompact {
			b.WriteByte(' ')
		}
		b.WriteString(m.raw)
	}
	if st == stylePretty {
		b.WriteString("\n" + indent)
	}
	b.WriteByte('}')
}

// jstr returns s as a JSON string literal.
func jstr(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		// json.Marshal of a string cannot fail; keep a valid literal anyway.
		return strconv.Quote(s)
	}
	return string(b)
}

// compactJSON returns raw without insignificant whitespace.
func compactJSON(raw string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return raw
	}
	return b.String()
}

// extraOf returns the canonical extra column of o: the members outside the
// contract, in order, as one compact JSON object; nil when there are none.
func extraOf(o obj) *string {
	var parts []string
	for _, m := range o {
		if !contractField[m.name] {
			parts = append(parts, jstr(m.name)+":"+compactJSON(m.raw))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	s := "{" + strings.Join(parts, ",") + "}"
	return &s
}

var contractField = map[string]bool{
	"event_id": true, "event_type": true, "event_time": true, "source": true, "platform": true,
	"user_id": true, "session_id": true, "country": true, "value": true, "properties": true,
}
