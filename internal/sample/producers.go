package sample

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/railyard/railyard/schemas"
)

// diurnalTime returns a random instant of the sample's days, more often
// in the (UTC) day than at night.
func (g *generator) diurnalTime(r *rng) int64 {
	weights := [24]int{1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 10, 10, 9, 7, 4, 2}
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.intn(total)
	hour := 0
	for ; x >= weights[hour]; hour++ {
		x -= weights[hour]
	}
	day := int64(r.intn(g.cfg.Days))
	return g.start + day*int64(24*time.Hour/time.Microsecond) + int64(hour)*int64(time.Hour/time.Microsecond) + r.between(0, int64(time.Hour/time.Microsecond))
}

// makeUsers creates the users with their countries and apps.
func (g *generator) makeUsers() {
	r := newRNG(g.cfg.Seed, streamUsers)
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	for i := range g.cfg.Users {
		u := &user{id: fmt.Sprintf("u-%05d", 1+i*7+r.intn(7))}
		x := r.intn(total)
		c := countries[0]
		for _, cc := range countries {
			if x < cc.weight {
				c = cc
				break
			}
			x -= cc.weight
		}
		u.zone = time.FixedZone("", c.offset*60)
		switch y := r.float(); {
		case y < 0.75:
			u.country = countryStyle{jstr(c.code), ptr(c.code)}
		case y < 0.82:
			u.country = countryStyle{jstr(strings.ToLower(c.code)), ptr(c.code)}
		case y < 0.85:
			u.country = countryStyle{jstr(" " + strings.ToLower(c.code) + " "), ptr(c.code)}
		case y < 0.93: // invalid codes: NULL, not a reject
			u.country = countryStyle{pick(r, `"USA"`, `"Germany"`, `"U1"`, `""`, `276`, `"D"`, `"GBR"`), nil}
		default: // no country sent
		}
		u.primary = pick(r, srcWeb, srcWeb, srcIOS, srcAndroid)
		if r.chance(0.3) {
			u.second = pick(r, srcWeb, srcIOS, srcAndroid)
			if u.second == u.primary {
				u.second = nil
			}
		}
		u.nextFree = g.start + r.between(0, int64(30*time.Hour/time.Microsecond))
		g.users = append(g.users, u)
	}
}

var (
	webBrowse = []string{"page.view", "product.view", "product.view", "search", "page.view"}
	appBrowse = []string{"screen.view", "screen.view", "product.view", "search"}
	skus      = []string{"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3310", "SKU-4096", "SKU-5150", "SKU-7777"}
	queries   = []string{"red shoes", "Schuhe größe 42", "café crème", "rain jacket", "ラーメン", "gift card", "kids <bike>"}
	screens   = []string{"home", "catalog", "product", "cart", "account", "orders"}
	paths     = []string{"/", "/sale", "/c/shoes", "/c/jackets", "/help/returns"}
)

// userSessions gives users sessions until budget events are spent or no
// user has time left for another session.
func (g *generator) userSessions(budget int) {
	r := newRNG(g.cfg.Seed, streamSessions)
	gap := int64(g.cfg.SessionGap / time.Microsecond)
	for budget > 0 {
		progressed := false
		for _, u := range g.users {
			if budget <= 0 {
				break
			}
			if u.nextFree >= g.end-int64(time.Hour/time.Microsecond) {
				continue
			}
			n := min(budget, 2+r.intn(6))
			src := u.primary
			if u.second != nil && r.chance(0.35) {
				src = u.second
			}
			session := g.session(r, u, src, u.nextFree, n, gap/4)
			budget -= len(session)
			end := u.nextFree
			for _, d := range session {
				end = max(end, d.w.EventTime)
			}
			g.sessions = append(g.sessions, session)
			u.nextFree = end + r.between(gap*3/2+int64(time.Minute/time.Microsecond), gap*16)
			progressed = true
		}
		if !progressed {
			return
		}
	}
}

// session makes one session of n events (more when a purchase brings
// billing events) of u on src starting at t0, with at most maxStep
// between events.
func (g *generator) session(r *rng, u *user, src *source, t0 int64, n int, maxStep int64) []*draft {
	const second = int64(time.Second / time.Microsecond)
	var types []string
	purchase := n >= 4 && r.chance(0.3)
	browse := n
	if purchase {
		browse = n - 3
	}
	app := src.kind != kindWeb
	for i := range browse {
		switch {
		case i == 0 && app && r.chance(0.15):
			types = append(types, "push.open")
		case i == 0 && app:
			types = append(types, "app.open")
		case i == 0:
			types = append(types, "page.view")
		case app:
			types = append(types, pick(r, appBrowse...))
		default:
			types = append(types, pick(r, webBrowse...))
		}
	}
	if purchase {
		types = append(types, "cart.add", "checkout.start", "purchase")
	}
	sessionID := ""
	if app {
		sessionID = "S-" + strings.ToUpper(r.hex(10))
	} else if r.chance(0.5) {
		sessionID = "ws-" + r.hex(12)
	}
	var out []*draft
	t := t0
	order := "o-" + r.hex(10)
	amount := float64(500+r.intn(40000)) / 100
	for i, typ := range types {
		if i > 0 {
			t += r.between(3*second, min(8*60*second, maxStep))
		}
		if t >= g.end {
			break
		}
		d := g.newDraft(r, src, t, u, typ)
		if sessionID != "" {
			d.setSession(sessionID)
		}
		g.eventDetails(r, d, typ, order, amount)
		out = append(out, d)
		if typ == "purchase" {
			out = append(out, g.billing(r, u, t, order, amount)...)
		}
	}
	return out
}

// eventDetails sets the value and properties of a web or app event.
func (g *generator) eventDetails(r *rng, d *draft, typ, order string, amount float64) {
	switch typ {
	case "page.view":
		if r.chance(0.8) {
			d.setProps(obj{{"path", jstr(pick(r, paths...))}, {"referrer", jstr(pick(r, "https://www.google.com/", "", "https://news.example/deals"))}})
		}
	case "product.view", "cart.add":
		p := obj{{"sku", jstr(pick(r, skus...))}, {"category", jstr(pick(r, "shoes", "jackets", "kids", "gifts"))}}
		if typ == "cart.add" {
			p = p.with("qty", strconv.Itoa(1+r.intn(3)))
		}
		d.setProps(p)
	case "search":
		d.setProps(obj{{"query", jstr(pick(r, queries...))}, {"results", strconv.Itoa(r.intn(120))}})
	case "checkout.start":
		d.setProps(obj{{"items", `[{"sku":` + jstr(pick(r, skus...)) + `,"qty":1}]`}, {"coupon", pick(r, "null", `"BLACKFRIDAY"`)}})
	case "purchase":
		d.setValue(amount, 2)
		d.setProps(obj{{"order_id", jstr(order)}, {"currency", jstr(pick(r, "EUR", "USD", "GBP"))}, {"items", strconv.Itoa(1 + r.intn(4))}})
	case "screen.view":
		d.setProps(obj{{"screen", jstr(pick(r, screens...))}})
	case "app.open":
		d.setProps(obj{{"cold_start", pick(r, "true", "false")}})
	case "push.open":
		d.setProps(obj{{"campaign", jstr(pick(r, "black-friday", "back-in-stock", "price-drop"))}})
	}
}

// billing makes the billing service's events for a purchase at t.
func (g *generator) billing(r *rng, u *user, t int64, order string, amount float64) []*draft {
	const second = int64(time.Second / time.Microsecond)
	var out []*draft
	t += r.between(1*second, 20*second)
	if r.chance(0.1) {
		d := g.newDraft(r, srcBilling, t, u, "payment.failed")
		d.setProps(obj{{"order_id", jstr(order)}, {"code", jstr(pick(r, "card_declined", "expired_card"))}})
		out = append(out, d)
		t += r.between(5*second, 60*second)
	}
	d := g.newDraft(r, srcBilling, t, u, "payment.succeeded")
	d.setValue(amount, 2)
	d.setProps(obj{{"order_id", jstr(order)}, {"method", jstr(pick(r, "card", "paypal", "sepa"))}})
	out = append(out, d)
	if r.chance(0.2) {
		d := g.newDraft(r, srcBilling, t+r.between(second, 5*second), u, "invoice.created")
		d.setValue(amount, 2)
		d.setProps(obj{{"invoice_id", jstr("inv-" + r.hex(8))}})
		out = append(out, d)
	}
	// A purchase in the last seconds of the sample is billed after it.
	return slices.DeleteFunc(out, func(d *draft) bool { return d.w.EventTime >= g.end })
}

// outage is when gateway gw-03 was offline: its events of that time were
// published when it came back, hours late and on the next day.
func (g *generator) outage() (from, to int64) {
	if g.cfg.Days < 2 {
		return 0, 0
	}
	day := int64(24 * time.Hour / time.Microsecond)
	return g.start + day - int64(150*time.Minute/time.Microsecond), g.start + day + int64(150*time.Minute/time.Microsecond)
}

// iot makes n readings and heartbeats of six gateways.
func (g *generator) iot(n int) {
	r := newRNG(g.cfg.Seed, streamIoT)
	const gateways = 6
	per := max(n/gateways, 1)
	step := (g.end - g.start) / int64(per)
	from, to := g.outage()
	made := 0
	for gw := 1; gw <= gateways && made < n; gw++ {
		name := fmt.Sprintf("gw-%02d", gw)
		t := g.start + r.between(0, step)
		count := per
		if gw == gateways {
			count = n - made
		}
		var outageEvents []*draft
		for i := 0; i < count && t < g.end; i++ {
			typ := "sensor.reading"
			if i%4 == 3 {
				typ = "device.heartbeat"
			}
			d := g.newDraft(r, srcIoT, t, nil, typ)
			d.attrs["gateway"] = name
			if typ == "sensor.reading" {
				v := 15 + r.float()*16
				if gw == 5 {
					v = -8 + r.float()*20 // an outdoor sensor
				}
				d.setValue(math.Round(v*10)/10, 1)
				d.setProps(obj{{"device_id", jstr(fmt.Sprintf("%s/s-%d", name, 1+r.intn(3)))}, {"unit", `"C"`}})
			} else {
				d.setProps(obj{{"device_id", jstr(name)}, {"battery", strconv.FormatFloat(float64(20+r.intn(80))/100, 'f', 2, 64)}, {"uptime_s", strconv.Itoa(r.intn(2_000_000))}})
			}
			g.drafts = append(g.drafts, d)
			made++
			if gw == 3 && t >= from && t < to {
				outageEvents = append(outageEvents, d)
			}
			t += r.between(step/2, step*3/2)
		}
		for i, d := range outageEvents {
			d.publish = to + int64(i)*15_000
		}
	}
}

// kiosks makes n events of partner kiosks: unknown platforms, and a
// loyalty card id as user id, a different card each time.
func (g *generator) kiosks(n int) {
	r := newRNG(g.cfg.Seed, streamKiosk)
	for i := range n {
		d := g.newDraft(r, srcKiosk, g.diurnalTime(r), nil, pick(r, "kiosk.scan", "kiosk.scan", "kiosk.print"))
		if r.chance(0.5) {
			card := fmt.Sprintf("card-%06d", 100000+i*13+r.intn(13))
			d.members = d.members.with("user_id", jstr(card))
			d.w.UserID = ptr(card)
		}
		if d.w.EventType == "kiosk.scan" {
			d.setProps(obj{{"barcode", jstr(fmt.Sprintf("400638%07d", r.intn(10_000_000)))}})
		} else {
			d.setProps(obj{{"pages", strconv.Itoa(1 + r.intn(4))}})
		}
		g.drafts = append(g.drafts, d)
	}
}

// anonymous makes n web events of visitors who are not signed in: no
// user id, or an empty one.
func (g *generator) anonymous(n int) {
	r := newRNG(g.cfg.Seed, streamAnon)
	for range n {
		typ := pick(r, "page.view", "page.view", "product.view", "search")
		d := g.newDraft(r, srcWeb, g.diurnalTime(r), nil, typ)
		switch x := r.float(); {
		case x < 0.25:
			d.members = d.members.with("user_id", `""`)
		case x < 0.40:
			d.members = d.members.with("user_id", "null")
		case x < 0.50:
			d.members = d.members.with("user_id", `"   "`)
		}
		if r.chance(0.5) { // from the visitor's IP address
			c := pick(r, countries...)
			d.members = d.members.with("country", jstr(c.code))
			d.w.Country = ptr(c.code)
		}
		g.eventDetails(r, d, typ, "", 0)
		g.drafts = append(g.drafts, d)
	}
}

// markLate delays whole app sessions by hours until about LateRate of the
// events are late, preferring evening sessions of the first day, whose
// delay carries them into the next day.
func (g *generator) markLate() {
	r := newRNG(g.cfg.Seed, streamLate)
	const hour = int64(time.Hour / time.Microsecond)
	target := int(math.Round(g.cfg.LateRate * float64(g.cfg.Events)))
	from, to := g.outage()
	for _, d := range g.drafts {
		if d.publish != 0 && d.w.EventTime >= from && d.w.EventTime < to {
			target--
		}
	}
	midnight := g.start + 24*hour
	var evening, other [][]*draft
	for _, s := range g.sessions {
		if s[0].src.kind != kindIOS && s[0].src.kind != kindAndroid {
			continue
		}
		if t := s[0].w.EventTime; t >= midnight-6*hour && t < midnight {
			evening = append(evening, s)
		} else {
			other = append(other, s)
		}
	}
	for _, group := range [][][]*draft{evening, other} {
		for i := range group { // shuffle
			j := i + r.intn(len(group)-i)
			group[i], group[j] = group[j], group[i]
		}
		for _, s := range group {
			if target <= 0 {
				return
			}
			late := r.between(hour, 6*hour)
			if t := s[0].w.EventTime; t < midnight && t >= midnight-6*hour {
				late = max(late, midnight-t+r.between(10*60*1_000_000, 3*hour))
			}
			for _, d := range s {
				if d.src.kind == kindBilling { // the server is not offline
					continue
				}
				d.late = late
				target--
			}
		}
	}
}

// importFiles makes the files of bare event lines, as if exported from
// another tool: each holds a CSV header by mistake and the events of one
// hour.
func (g *generator) importFiles() error {
	header, err := lookupClass("csv_header_line")
	if err != nil {
		return err
	}
	r := newRNG(g.cfg.Seed, streamImport)
	const hour = int64(time.Hour / time.Microsecond)
	for i := range g.cfg.ImportFiles {
		day := int64(i % g.cfg.Days)
		h := int64(8 + (i*5)%14)
		at := g.start + day*24*hour + h*hour
		f := ImportFile{Path: schemas.LakeHourPath(at) + fmt.Sprintf("import-legacy-crm-%04d.jsonl.gz", i+1)}
		f.Lines = append(f.Lines, g.badLine(r, header, at))
		n := 20 + r.intn(15)
		times := make([]int64, n)
		for j := range times {
			times[j] = at + r.between(0, hour)
		}
		slices.Sort(times)
		for _, t := range times {
			typ := pick(r, "crm.contact_created", "crm.note_added", "crm.deal_won")
			d := g.newDraft(r, srcCRM, t, nil, typ)
			d.attrs = nil
			if typ == "crm.deal_won" {
				d.setValue(float64(1000+r.intn(49000)), 0)
			}
			d.setProps(obj{{"contact_id", jstr("c-" + r.hex(8))}})
			d.w.Bare = true
			f.Lines = append(f.Lines, Message{Data: d.data(), Kind: KindEvent, EventID: d.w.EventID})
			g.importWinners = append(g.importWinners, d.w)
		}
		g.imports = append(g.imports, f)
	}
	return nil
}
