package schemas

import (
	"bytes"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the JSON side of ParseEvent: one pass over a record that
// validates it as JSON (RFC 8259, as encoding/json reads it), splits the
// top-level object into its members, and checks the nesting depth and
// duplicate member names on the way. It reports syntax errors in
// encoding/json's words, so that a dead letter reads the same as before.

// member is one top-level member of a record, in input order.
type member struct {
	// name is the member's name after JSON unescaping; raw is the name as
	// sent, between its quotes, and escaped whether raw holds escapes.
	name, raw []byte
	escaped   bool
	// value is the member's value exactly as sent, without the whitespace
	// around it; spaced reports whitespace inside it, outside strings.
	value  []byte
	spaced bool
	// field is the index of the contract field the member is, or -1.
	field int8
}

// setAfterMembers is how many members a record has before duplicate names
// are looked up in a set rather than by comparing with every earlier name.
const setAfterMembers = 16

// decoder holds the state of one ParseEvent call. Decoders are pooled, so
// a call allocates only what the event it returns keeps.
type decoder struct {
	data []byte
	pos  int
	// depth is the nesting depth at pos; deep is set when it passed MaxDepth.
	depth int
	deep  bool
	// msg is the syntax error, in encoding/json's words.
	msg string
	// spaces counts the runs of whitespace skipped so far.
	spaces int

	members []member
	names   map[string]struct{}
	fields  [numContractFields]int32

	tmp []byte // one unescaped string
	buf []byte // the string data of the event being built
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

func getDecoder(data []byte) *decoder {
	d := decoders.Get().(*decoder)
	d.data, d.pos, d.depth, d.deep, d.msg, d.spaces = data, 0, 0, false, "", 0
	d.members, d.names = d.members[:0], nil
	d.tmp, d.buf = d.tmp[:0], d.buf[:0]
	for i := range d.fields {
		d.fields[i] = -1
	}
	return d
}

// putDecoder returns d to the pool without the record's bytes, and
// without the buffers a rare large record grew.
func putDecoder(d *decoder) {
	clear(d.members)
	if cap(d.members) > 1024 {
		d.members = nil
	}
	if cap(d.buf) > 64<<10 {
		d.buf = nil
	}
	if cap(d.tmp) > 64<<10 {
		d.tmp = nil
	}
	d.data, d.names = nil, nil
	decoders.Put(d)
}

// What split found: a record object, or why the record is not one.
const (
	splitOK = iota
	splitInvalid
	splitNotObject
	splitDuplicate
	splitTooDeep
)

// split reads the record as exactly one JSON object into d.members. On
// failure it returns what is wrong and a message: the same checks, in the
// same order, as reading the record with encoding/json's Decoder.Token.
func (d *decoder) split() (int, string) {
	data := d.data
	d.space()
	if d.pos >= len(data) {
		return splitInvalid, "EOF"
	}
	switch c := data[d.pos]; c {
	case '{':
	case '[':
		return splitNotObject, "record is an array, not a JSON object"
	case '}', ']', ':', ',':
		return splitInvalid, "invalid character " + quoteChar(c) + " looking for beginning of value"
	default:
		start := d.pos
		if !d.value() {
			return d.failure("")
		}
		return splitNotObject, "record is " + kindOf(data[start:]) + ", not a JSON object"
	}
	d.pos++
	d.depth = 1
	d.space()
	if d.pos >= len(data) {
		return splitInvalid, "EOF"
	}
	switch c := data[d.pos]; c {
	case '}':
		return d.end()
	case '"':
	default:
		return splitInvalid, "invalid character " + quoteChar(c)
	}
	for {
		m := member{field: -1}
		start := d.pos + 1
		if !d.str() {
			return d.failure("")
		}
		m.raw = data[start : d.pos-1]
		m.name, m.escaped = m.raw, bytes.IndexByte(m.raw, '\\') >= 0
		if m.escaped {
			m.name = appendUnquoted(nil, m.raw)
		}
		d.space()
		if d.pos >= len(data) {
			return splitInvalid, "member " + strconv.Quote(truncate(string(m.name), 80)) + ": EOF"
		}
		if data[d.pos] != ':' {
			return splitInvalid, "member " + strconv.Quote(truncate(string(m.name), 80)) + ": expected colon after object key"
		}
		d.pos++
		d.space()
		if d.pos >= len(data) {
			return splitInvalid, "member " + strconv.Quote(truncate(string(m.name), 80)) + ": EOF"
		}
		start = d.pos
		spaces := d.spaces
		if !d.value() {
			return d.failure("member " + strconv.Quote(truncate(string(m.name), 80)) + ": ")
		}
		m.value, m.spaced = data[start:d.pos], d.spaces != spaces
		if d.seen(m.name) {
			return splitDuplicate, "member " + strconv.Quote(truncate(string(m.name), 80)) + " appears more than once"
		}
		if f := contractIndex(m.name); f >= 0 {
			m.field = int8(f)
			d.fields[f] = int32(len(d.members))
		}
		d.members = append(d.members, m)
		if d.names != nil {
			d.names[string(m.name)] = struct{}{}
		}

		d.space()
		if d.pos >= len(data) {
			return splitInvalid, "EOF"
		}
		switch c := data[d.pos]; c {
		case ',':
			d.pos++
			d.space()
			if d.pos >= len(data) {
				return splitInvalid, "EOF"
			}
			if c := data[d.pos]; c != '"' {
				return splitInvalid, "invalid character " + quoteChar(c) + " looking for beginning of object key string"
			}
		case '}':
			return d.end()
		default:
			return splitInvalid, "invalid character " + quoteChar(c) + " after object key:value pair"
		}
	}
}

// end checks that nothing but whitespace follows the closing brace at pos.
func (d *decoder) end() (int, string) {
	d.pos++
	d.depth = 0
	d.space()
	if d.pos >= len(d.data) {
		return splitOK, ""
	}
	switch c := d.data[d.pos]; c {
	case '{', '[':
		return splitInvalid, "data after the closing brace"
	case '}', ']', ':', ',':
		return splitInvalid, "after the object: invalid character " + quoteChar(c) + " looking for beginning of value"
	}
	if !d.value() {
		return d.failure("after the object: ")
	}
	return splitInvalid, "data after the closing brace"
}

// failure turns the scanner's error into split's result.
func (d *decoder) failure(prefix string) (int, string) {
	if d.deep {
		return splitTooDeep, ""
	}
	return splitInvalid, prefix + d.msg
}

// seen reports whether a member of the given name was read before.
func (d *decoder) seen(name []byte) bool {
	if d.names == nil {
		for i := range d.members {
			if bytes.Equal(d.members[i].name, name) {
				return true
			}
		}
		if len(d.members) < setAfterMembers {
			return false
		}
		// A 1 MiB record can hold 100k members: from here on, a set.
		d.names = make(map[string]struct{}, 4*setAfterMembers)
		for i := range d.members {
			d.names[string(d.members[i].name)] = struct{}{}
		}
		return false
	}
	_, ok := d.names[string(name)]
	return ok
}

// space skips JSON whitespace.
func (d *decoder) space() {
	start := d.pos
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
			continue
		}
		break
	}
	if d.pos != start {
		d.spaces++
	}
}

// fail records a syntax error at the byte c.
func (d *decoder) fail(c byte, context string) bool {
	d.msg = "invalid character " + quoteChar(c) + " " + context
	return false
}

// eof records that the record ends inside a value.
func (d *decoder) eof() bool {
	d.msg = "unexpected EOF"
	return false
}

// value scans the JSON value that starts at pos (not at whitespace).
func (d *decoder) value() bool {
	data := d.data
	if d.pos >= len(data) {
		return d.eof()
	}
	switch c := data[d.pos]; c {
	case '"':
		return d.str()
	case '{':
		return d.object()
	case '[':
		return d.array()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return d.number()
		}
		return d.fail(c, "looking for beginning of value")
	}
}

// object scans a nested object; pos is at its opening brace.
func (d *decoder) object() bool {
	data := d.data
	if d.depth++; d.depth > MaxDepth {
		d.deep = true
		return false
	}
	d.pos++
	d.space()
	if d.pos >= len(data) {
		return d.eof()
	}
	if data[d.pos] == '}' {
		d.pos++
		d.depth--
		return true
	}
	for {
		if c := data[d.pos]; c != '"' {
			return d.fail(c, "looking for beginning of object key string")
		}
		if !d.str() {
			return false
		}
		d.space()
		if d.pos >= len(data) {
			return d.eof()
		}
		if c := data[d.pos]; c != ':' {
			return d.fail(c, "after object key")
		}
		d.pos++
		d.space()
		if !d.value() {
			return false
		}
		d.space()
		if d.pos >= len(data) {
			return d.eof()
		}
		switch c := data[d.pos]; c {
		case ',':
			d.pos++
			d.space()
			if d.pos >= len(data) {
				return d.eof()
			}
		case '}':
			d.pos++
			d.depth--
			return true
		default:
			return d.fail(c, "after object key:value pair")
		}
	}
}

// array scans an array; pos is at its opening bracket.
func (d *decoder) array() bool {
	data := d.data
	if d.depth++; d.depth > MaxDepth {
		d.deep = true
		return false
	}
	d.pos++
	d.space()
	if d.pos >= len(data) {
		return d.eof()
	}
	if data[d.pos] == ']' {
		d.pos++
		d.depth--
		return true
	}
	for {
		if !d.value() {
			return false
		}
		d.space()
		if d.pos >= len(data) {
			return d.eof()
		}
		switch c := data[d.pos]; c {
		case ',':
			d.pos++
			d.space()
		case ']':
			d.pos++
			d.depth--
			return true
		default:
			return d.fail(c, "after array element")
		}
	}
}

// plainString marks the bytes that stand for themselves inside a JSON
// string: not the quote, the backslash or a control character.
var plainString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans a string; pos is at its opening quote.
func (d *decoder) str() bool {
	data := d.data
	i := d.pos + 1
	for {
		for i < len(data) && plainString[data[i]] {
			i++
		}
		if i >= len(data) {
			return d.eof()
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return true
		case c == '\\':
			i++
			if i >= len(data) {
				return d.eof()
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(data) {
						return d.eof()
					}
					if !isHex(data[i]) {
						return d.fail(data[i], "in \\u hexadecimal character escape")
					}
					i++
				}
			default:
				return d.fail(data[i], "in string escape code")
			}
		default:
			return d.fail(c, "in string literal")
		}
	}
}

// number scans a number; pos is at its minus sign or first digit.
func (d *decoder) number() bool {
	data := d.data
	i := d.pos
	if data[i] == '-' {
		i++
		if i >= len(data) {
			return d.eof()
		}
		if !isDigit(data[i]) {
			return d.fail(data[i], "in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			return d.eof()
		}
		if !isDigit(data[i]) {
			return d.fail(data[i], "after decimal point in numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return d.eof()
		}
		if !isDigit(data[i]) {
			return d.fail(data[i], "in exponent of numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	d.pos = i
	return true
}

// literal scans true, false or null; pos is at its first letter.
func (d *decoder) literal(lit string) bool {
	data := d.data
	for k := 1; k < len(lit); k++ {
		i := d.pos + k
		if i >= len(data) {
			return d.eof()
		}
		if data[i] != lit[k] {
			return d.fail(data[i], "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	d.pos += len(lit)
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

// quoteChar formats c for a syntax error, as encoding/json does.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// kindOf names the kind of the JSON value that starts raw[0], for messages.
func kindOf(raw []byte) string {
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

// appendUnquoted appends the JSON string content s (between the quotes,
// already scanned) unescaped, as encoding/json unescapes it: a \u escape
// of a lone surrogate becomes U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		i++
		switch c := s[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+1 : i+5])
			i += 5
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2 : i+6])
				}
				if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
					dst = utf8.AppendRune(dst, pair)
					i += 6
					continue
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // the quote, the backslash and the slash
			dst = append(dst, c)
		}
		i++
	}
	return dst
}

// hex4 reads four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case isDigit(c):
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendCompact appends the scanned JSON value raw without the whitespace
// outside its strings, as json.Compact does.
func appendCompact(dst, raw []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, raw[start:i]...)
			start = i + 1
		}
	}
	return append(dst, raw[start:]...)
}
