package sample

import (
	"encoding/base64"
	"iter"
	"strconv"
	"time"

	"github.com/railyard/railyard/schemas"
)

// Shares of the synthetic stream.
const (
	syntheticBadRate = 0.01
	syntheticDupRate = 0.03
	syntheticUsers   = 20_000
)

// Synthetic returns an iterator over n messages of a synthetic stream for
// benchmarks and soak tests: about 1000 messages a second of publish time
// from 2026-11-01, in the order a subscriber receives them. About 3% are
// duplicates (producer retries with a new message id, and redeliveries
// with the message's id and publish time, received later) and 1% are bad
// records of every message class except the 1 MiB one. The same n and
// seed give the same messages.
//
// It keeps no more than a small window of recent messages, so any n runs
// in constant memory. Message.Attributes maps are shared between messages
// and must not be modified.
func Synthetic(n int, seed int64) iter.Seq[Message] {
	return func(yield func(Message) bool) {
		s := newSynth(seed)
		for range n {
			if !yield(s.next()) {
				return
			}
		}
	}
}

// SyntheticLakeLines returns an iterator over the archive envelope lines
// of Synthetic(n, seed), without newlines: what the streaming job would
// have archived. Each line is the same bytes schemas.MarshalEnvelope
// writes, and is valid only until the next iteration.
func SyntheticLakeLines(n int, seed int64) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		var buf []byte
		for m := range Synthetic(n, seed) {
			buf = appendEnvelope(buf[:0], m)
			if !yield(buf) {
				return
			}
		}
	}
}

// appendEnvelope appends m's archive line, byte for byte what
// schemas.MarshalEnvelope writes for it (attributes of simple ASCII keys
// and values, as Synthetic makes them).
func appendEnvelope(b []byte, m Message) []byte {
	b = append(b, `{"envelope":"`+schemas.EnvelopeVersion+`","message_id":"`...)
	b = append(b, m.MessageID...)
	b = append(b, `","publish_time":"`...)
	b = time.UnixMicro(m.PublishTime).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if src, ok := m.Attributes["source_system"]; ok && len(m.Attributes) == 1 {
		b = append(b, `,"attributes":{"source_system":"`...)
		b = append(b, src...)
		b = append(b, `"}`...)
	}
	b = append(b, `,"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.Data)
	return append(b, `"}`...)
}

type synthSource struct {
	name, platform string
	types          []string
	attrs          map[string]string
}

type synth struct {
	r *rng
	t int64 // publish clock, microseconds
	// step bounds the publish clock's advance per message, microseconds.
	stepMin, stepMax int64
	// lateShare of events are published lateMin to lateMax microseconds
	// after their event time, besides the hours-late ones (Live).
	lateShare        float64
	lateMin, lateMax int64
	nextID           int64
	recent           [512]Message
	nRecent          int
	sources          []synthSource
	bad              []badClass
	buf              []byte
}

func newSynth(seed int64) *synth {
	s := &synth{
		r:       newRNG(seed, 1000),
		t:       time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro(),
		stepMin: 200, stepMax: 1800,
		nextID: 18_000_000_000_000_000,
		sources: []synthSource{
			{name: "web-shop", platform: "web", types: []string{"page.view", "page.view", "product.view", "search", "cart.add", "purchase"}},
			{name: "ios-app", platform: "iOS", types: []string{"screen.view", "screen.view", "app.open", "product.view", "purchase"}},
			{name: "android-app", platform: "android", types: []string{"screen.view", "app.open", "product.view", "purchase"}},
			{name: "billing-service", platform: "server", types: []string{"payment.succeeded", "invoice.created"}},
			{name: "iot-gateway", platform: "iot", types: []string{"sensor.reading", "sensor.reading", "device.heartbeat"}},
			{name: "partner-kiosk", platform: "kiosk-os", types: []string{"kiosk.scan"}},
		},
	}
	for i := range s.sources {
		s.sources[i].attrs = map[string]string{"source_system": s.sources[i].name}
	}
	for _, c := range badCatalog {
		if c.Via == ViaMessage && c.Name != "oversize_record" {
			s.bad = append(s.bad, c)
		}
	}
	return s
}

func (s *synth) next() Message {
	r := s.r
	s.t += r.between(s.stepMin, s.stepMax)
	x := r.float()
	if x < syntheticDupRate && s.nRecent > 0 {
		orig := s.recent[r.intn(min(s.nRecent, len(s.recent)))]
		m := orig
		m.Kind = KindDuplicate
		if r.chance(0.5) {
			m.Class = DupRedelivery
		} else {
			m.Class = DupRetry
			m.MessageID = s.newID()
			m.PublishTime = s.t
		}
		return m
	}
	src := &s.sources[r.intn(len(s.sources))]
	typ := src.types[r.intn(len(src.types))]
	eventTime := s.t - r.between(50_000, 3_000_000)
	if r.chance(0.01) { // late: buffered for hours
		eventTime -= r.between(3600_000_000, 3*3600_000_000)
	}
	if s.lateShare > 0 && r.chance(s.lateShare) {
		eventTime -= r.between(s.lateMin, s.lateMax)
	}
	if x < syntheticDupRate+syntheticBadRate {
		c := s.bad[r.intn(len(s.bad))]
		d := s.draft(src, typ, eventTime)
		return Message{Data: c.make(r, d), Attributes: src.attrs, MessageID: s.newID(), PublishTime: s.t,
			Kind: KindBad, Class: c.Name, Reason: c.Reason}
	}
	data, id := s.event(src, typ, eventTime)
	m := Message{Data: data, Attributes: src.attrs, MessageID: s.newID(), PublishTime: s.t, Kind: KindEvent, EventID: id}
	s.recent[s.nRecent%len(s.recent)] = m
	s.nRecent++
	return m
}

func (s *synth) newID() string {
	s.nextID += 1 + int64(s.r.intn(5))
	return strconv.FormatInt(s.nextID, 10)
}

// event writes a valid event quickly, by appending.
func (s *synth) event(src *synthSource, typ string, eventTime int64) (data []byte, id string) {
	r := s.r
	b := make([]byte, 0, 256)
	b = append(b, `{"event_id":"s-`...)
	start := len(b) - 2
	b = appendHex(b, r.next())
	id = string(b[start:])
	b = append(b, `","event_type":"`...)
	b = append(b, typ...)
	b = append(b, `","event_time":`...)
	if r.next()&1 == 0 {
		b = strconv.AppendInt(b, eventTime/1000, 10)
	} else {
		b = append(b, '"')
		b = time.UnixMicro(eventTime).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '"')
	}
	b = append(b, `,"source":"`...)
	b = append(b, src.name...)
	b = append(b, `","platform":"`...)
	b = append(b, src.platform...)
	b = append(b, '"')
	if r.intn(5) != 0 {
		b = append(b, `,"user_id":"u-`...)
		b = strconv.AppendInt(b, int64(r.intn(syntheticUsers)), 10)
		b = append(b, `","country":"`...)
		b = append(b, countries[r.intn(len(countries))].code...)
		b = append(b, '"')
	}
	switch typ {
	case "purchase", "payment.succeeded", "invoice.created", "sensor.reading":
		b = append(b, `,"value":`...)
		b = strconv.AppendFloat(b, float64(r.intn(40000))/100, 'f', 2, 64)
	}
	b = append(b, `,"properties":{"sku":"SKU-`...)
	b = strconv.AppendInt(b, int64(1000+r.intn(9000)), 10)
	b = append(b, `"}}`...)
	return b, id
}

// draft returns an event to break, for a bad record.
func (s *synth) draft(src *synthSource, typ string, eventTime int64) *draft {
	r := s.r
	d := &draft{style: styleCompact, attrs: src.attrs}
	d.w = Winner{EventID: "s-" + r.hex(16), EventType: typ, EventTime: eventTime / 1000 * 1000, Source: src.name}
	d.members = obj{
		{"event_id", jstr(d.w.EventID)}, {"event_type", jstr(typ)},
		{"event_time", strconv.FormatInt(eventTime/1000, 10)}, {"source", jstr(src.name)},
		{"user_id", jstr("u-" + strconv.Itoa(r.intn(syntheticUsers)))}, {"session_id", jstr("S-" + r.hex(8))},
		{"value", "1.5"}, {"properties", `{"sku":"SKU-1001"}`},
	}
	return d
}

func appendHex(b []byte, v uint64) []byte {
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[(v>>uint(i))&15])
	}
	return b
}
