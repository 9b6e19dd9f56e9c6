package sample

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Streams of the generator's random numbers, one per part of the sample.
const (
	streamUsers = iota
	streamSessions
	streamIoT
	streamKiosk
	streamAnon
	streamLate
	streamDup
	streamBad
	streamImport
	streamFormat
	streamIDs
)

// source is a producer of events.
type source struct {
	name string
	kind sourceKind
}

type sourceKind int

const (
	kindWeb sourceKind = iota
	kindIOS
	kindAndroid
	kindBilling
	kindIoT
	kindKiosk
	kindCRM
)

var (
	srcWeb     = &source{"web-shop", kindWeb}
	srcIOS     = &source{"ios-app", kindIOS}
	srcAndroid = &source{"android-app", kindAndroid}
	srcBilling = &source{"billing-service", kindBilling}
	srcIoT     = &source{"iot-gateway", kindIoT}
	srcKiosk   = &source{"partner-kiosk", kindKiosk}
	srcCRM     = &source{"legacy-crm", kindCRM}
)

// user is a person with sessions.
type user struct {
	id       string
	country  countryStyle
	zone     *time.Location
	primary  *source
	second   *source // a second app or site the user also uses; nil if none
	nextFree int64   // the earliest start of the user's next session
}

// countryStyle is how a user's producer writes the country: raw JSON (""
// when the member is left out) and the canonical value.
type countryStyle struct {
	raw   string
	canon *string
}

type country struct {
	code   string
	offset int // minutes east of UTC in November
	weight int
}

var countries = []country{
	{"US", -300, 22}, {"DE", 60, 16}, {"GB", 0, 10}, {"FR", 60, 9}, {"IN", 330, 8},
	{"BR", -180, 6}, {"JP", 540, 6}, {"NL", 60, 5}, {"ES", 60, 5}, {"CA", -300, 4}, {"AU", 660, 3},
}

// draft is one valid event being built: its canonical truth and how it is
// written.
type draft struct {
	w       Winner
	src     *source
	members obj
	props   obj // the properties object, nil when absent
	style   style
	pad     string // whitespace written around the record
	attrs   map[string]string
	delay   int64 // publish time minus event time, before any late delay
	late    int64 // extra delay of a late event
	publish int64 // set once fixed: overrides event time + delays
}

func ptr[T any](v T) *T { return &v }

// newDraft starts an event of src at time t (microseconds). The time
// format and the canonical event time follow the source's habits.
func (g *generator) newDraft(r *rng, src *source, t int64, u *user, typ string) *draft {
	d := &draft{src: src, attrs: map[string]string{"source_system": src.name}}
	id := g.newEventID(src)
	d.w.EventID = id
	d.w.Source = src.name
	d.w.EventType = typ

	rawID := jstr(id)
	if r.chance(0.04) {
		rawID = jstr(pick(r, " ", "  ", "\t") + id + pick(r, "", " ", "\n"))
	}
	rawType := jstr(typ)
	switch x := r.float(); {
	case x < 0.04:
		rawType = jstr(titleCase(typ))
	case x < 0.06:
		rawType = jstr(strings.ToUpper(typ))
	case x < 0.08:
		rawType = jstr(" " + typ + " ")
	}
	rawSource := jstr(src.name)
	if r.chance(0.03) {
		rawSource = jstr(" " + src.name + " ")
	}
	var zone *time.Location
	if u != nil {
		zone = u.zone
	}
	rawTime, canon := g.formatTime(r, src, t, zone)
	d.w.EventTime = canon

	d.members = obj{{"event_id", rawID}, {"event_type", rawType}, {"event_time", rawTime}, {"source", rawSource}}
	if raw, canon := platformOf(r, src); raw != "" {
		d.members = d.members.with("platform", raw)
		d.w.Platform = canon
	}
	if u != nil {
		raw := jstr(u.id)
		if r.chance(0.03) {
			raw = jstr(" " + u.id + "  ")
		}
		d.members = d.members.with("user_id", raw)
		d.w.UserID = ptr(u.id)
		if u.country.raw != "" {
			d.members = d.members.with("country", u.country.raw)
			d.w.Country = u.country.canon
		}
	}
	d.delay = publishDelay(r, src)
	switch src.kind {
	case kindWeb:
		d.style = pick(r, styleCompact, styleCompact, styleSpaced)
		if r.chance(0.6) {
			d.members = append(obj{{"sdk", `{"name":"railyard-js","version":"` + pick(r, "3.4.1", "3.4.1", "3.5.0") + `"}`}}, d.members...)
		}
		if r.chance(0.15) {
			d.members = d.members.with("experiment", `{"id":"checkout-v2","arm":"`+pick(r, "a", "b")+`"}`)
		}
	case kindIOS, kindAndroid:
		d.style = styleCompact
		if src.kind == kindIOS && r.chance(0.2) {
			d.style = stylePretty
		}
		d.members = d.members.with("app_version", jstr(pick(r, "5.2.1", "5.2.1", "5.3.0", "4.9.7")))
		if r.chance(0.3) {
			model := pick(r, "iPhone15,2", "iPhone14,5", "iPad13,1")
			if src.kind == kindAndroid {
				model = pick(r, "Pixel 8", "SM-S918B", "moto g54")
			}
			d.members = d.members.with("device", `{"model":`+jstr(model)+`,"locale":"`+pick(r, "en_US", "de_DE", "fr_FR", "ja_JP")+`"}`)
		}
	case kindBilling:
		d.style = styleCompact
		d.members = d.members.with("trace_id", jstr(r.hex(32)))
		if r.chance(0.05) {
			d.members = d.members.with("received_by", "null")
		}
	case kindIoT:
		d.style = styleCompact
		if r.chance(0.1) {
			d.pad = pick(r, "\n", " ", "\r\n")
		}
		if r.chance(0.5) {
			d.members = d.members.with("firmware", jstr(pick(r, "1.4.2", "1.5.0")))
		}
		d.members = d.members.with("rssi", strconv.Itoa(-40-r.intn(50)))
	case kindKiosk:
		d.style = styleSpaced
		d.members = d.members.with("store_id", jstr(fmt.Sprintf("store-%04d", 1+r.intn(40))))
	case kindCRM:
		d.style = styleCompact
		d.members = append(obj{{"owner", jstr(fmt.Sprintf("crm-user-%d", 1+r.intn(9)))}}, d.members...)
		d.members = d.members.with("tags", `["import","legacy"]`)
	}
	return d
}

// setValue writes a value with the given number of decimals.
func (d *draft) setValue(v float64, decimals int) {
	raw := strconv.FormatFloat(v, 'f', decimals, 64)
	canon, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsInf(canon, 0) {
		return // cannot happen for the values the generator makes
	}
	d.members = d.members.with("value", raw)
	d.w.Value = &canon
}

// setProps sets the properties object.
func (d *draft) setProps(p obj) {
	d.props = p
	raw := string(p.encode(d.style))
	if d.style == stylePretty {
		raw = string(p.encode(styleCompact))
	}
	d.members = d.members.with("properties", raw)
	d.w.Properties = ptr(string(p.encode(styleCompact)))
}

func (d *draft) setSession(id string) {
	d.members = d.members.with("session_id", jstr(id))
	d.w.SessionID = ptr(id)
}

// data returns the record as the producer writes it, and fills in the
// truth that depends on the final members.
func (d *draft) data() []byte {
	d.w.Extra = extraOf(d.members)
	b := d.members.encode(d.style)
	if d.pad != "" {
		b = append(append([]byte(d.pad), b...), d.pad...)
	}
	return b
}

func titleCase(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

// formatTime writes t the way src does, and returns the canonical event
// time of what it wrote (microseconds, truncated to what was written).
func (g *generator) formatTime(r *rng, src *source, t int64, zone *time.Location) (raw string, canon int64) {
	if zone == nil {
		zone = time.UTC
	}
	ms := t / 1000
	sec := t / 1_000_000
	switch src.kind {
	case kindWeb: // JavaScript's Date.toISOString
		return jstr(time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")), ms * 1000
	case kindIOS: // ISO 8601 in the device's zone
		if r.chance(0.5) {
			return jstr(time.Unix(sec, 0).In(zone).Format(time.RFC3339)), sec * 1_000_000
		}
		return jstr(time.UnixMilli(ms).In(zone).Format("2006-01-02T15:04:05.000Z07:00")), ms * 1000
	case kindAndroid:
		if r.chance(0.6) {
			return strconv.FormatInt(ms, 10), ms * 1000
		}
		return jstr(time.UnixMilli(ms).In(zone).Format("2006-01-02T15:04:05.000Z07:00")), ms * 1000
	case kindBilling: // Go's time.Time, nanoseconds included
		ns := time.UnixMicro(t).UTC().Add(time.Duration(r.intn(1000)))
		return jstr(ns.Format(time.RFC3339Nano)), t
	case kindIoT:
		return strconv.FormatInt(ms, 10), ms * 1000
	case kindKiosk:
		return jstr(time.Unix(sec, 0).In(time.FixedZone("", -5*3600)).Format(time.RFC3339)), sec * 1_000_000
	default: // kindCRM
		return jstr(time.Unix(sec, 0).In(time.FixedZone("", 3600)).Format(time.RFC3339)), sec * 1_000_000
	}
}

// platformOf returns how src writes its platform (raw JSON, "" to leave
// it out) and the canonical value.
func platformOf(r *rng, src *source) (string, *string) {
	x := r.float()
	switch src.kind {
	case kindWeb:
		switch {
		case x < 0.90:
			return `"web"`, ptr("web")
		case x < 0.94:
			return `"WEB"`, ptr("web")
		case x < 0.97:
			return `"Web"`, ptr("web")
		}
		return `"mobile-web"`, ptr("other")
	case kindIOS:
		return pick(r, `"ios"`, `"iOS"`, `"iOS"`, `"IOS"`), ptr("ios")
	case kindAndroid:
		return pick(r, `"android"`, `"android"`, `"Android"`), ptr("android")
	case kindBilling:
		if x < 0.85 {
			return `"server"`, ptr("server")
		}
		return "", nil
	case kindIoT:
		switch {
		case x < 0.70:
			return `"iot"`, ptr("iot")
		case x < 0.85:
			return `"IoT"`, ptr("iot")
		}
		return "", nil
	case kindKiosk:
		switch {
		case x < 0.40:
			return `"kiosk-os"`, ptr("other")
		case x < 0.65:
			return `"ChromeOS"`, ptr("other")
		case x < 0.80:
			return `"smart-tv"`, ptr("other")
		case x < 0.95:
			return "", nil
		}
		return "null", nil
	default:
		if x < 0.5 {
			return `"Server"`, ptr("server")
		}
		return "", nil
	}
}

// publishDelay is how long after the event src publishes it, in
// microseconds, when nothing is late.
func publishDelay(r *rng, src *source) int64 {
	const ms = 1000
	switch src.kind {
	case kindWeb:
		return r.between(20*ms, 1500*ms)
	case kindIOS, kindAndroid:
		if r.chance(0.1) { // sent in a batch
			return r.between(20_000*ms, 90_000*ms)
		}
		return r.between(50*ms, 4000*ms)
	case kindBilling:
		return r.between(5*ms, 80*ms)
	case kindIoT:
		return r.between(500*ms, 3000*ms)
	default:
		return r.between(1000*ms, 15_000*ms)
	}
}

// newEventID returns a new event_id in src's style.
func (g *generator) newEventID(src *source) string {
	r := g.rIDs
	for {
		var id string
		switch src.kind {
		case kindWeb:
			id = "w-" + r.hex(16)
		case kindIOS:
			id = strings.ToUpper(uuid(r))
		case kindAndroid, kindKiosk:
			id = uuid(r)
		case kindBilling:
			id = "evt_" + r.alnum(24)
		case kindIoT:
			id = "iot-" + r.hex(20)
		default:
			id = "crm-" + r.hex(10)
		}
		if !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func uuid(r *rng) string {
	h := r.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}
