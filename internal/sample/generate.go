package sample

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// generator holds the state of one Generate call.
type generator struct {
	cfg        Config
	start, end int64 // the sample's event times, microseconds: [start, end)
	rIDs       *rng
	ids        map[string]bool

	users    []*user
	sessions [][]*draft
	drafts   []*draft // the valid unique events of the messages

	messages      []Message
	imports       []ImportFile
	importWinners []Winner
	seqOf         map[*draft]int // the message of each draft
	sameAs        map[int]int    // redelivery seq → seq of the message it repeats
	seq           int
}

func newGenerator(cfg Config) *generator {
	start := cfg.FirstDay.UnixMicro()
	return &generator{
		cfg:    cfg,
		start:  start,
		end:    start + int64(cfg.Days)*int64(24*time.Hour/time.Microsecond),
		rIDs:   newRNG(cfg.Seed, streamIDs),
		ids:    map[string]bool{},
		seqOf:  map[*draft]int{},
		sameAs: map[int]int{},
	}
}

func (g *generator) nextSeq() int {
	g.seq++
	return g.seq
}

// Shares of the valid events by producer; anonymous web visitors make up
// the rest.
const (
	shareUsers  = 0.70
	shareIoT    = 0.12
	shareKiosks = 0.05
)

func (g *generator) run() error {
	n := g.cfg.Events
	g.makeUsers()
	g.userSessions(int(shareUsers * float64(n)))
	for _, s := range g.sessions {
		g.drafts = append(g.drafts, s...)
	}
	g.iot(int(shareIoT * float64(n)))
	g.kiosks(int(shareKiosks * float64(n)))
	rest := n - len(g.drafts)
	if rest < 0 {
		return fmt.Errorf("made %d events, %d more than the %d asked for", len(g.drafts), -rest, n)
	}
	g.anonymous(rest)
	g.markLate()
	g.publishEvents()
	g.duplicates()
	g.badMessages()
	if err := g.importFiles(); err != nil {
		return err
	}
	g.restoredFile()
	slices.SortFunc(g.imports, func(a, b ImportFile) int { return cmp.Compare(a.Path, b.Path) })
	g.assignMessageIDs()
	return nil
}

// publishEvents turns every draft into its message.
func (g *generator) publishEvents() {
	for _, d := range g.drafts {
		if d.publish == 0 {
			d.publish = d.w.EventTime + d.delay + d.late
		}
		seq := g.nextSeq()
		g.seqOf[d] = seq
		g.messages = append(g.messages, Message{
			Data:        d.data(),
			Attributes:  maps.Clone(d.attrs),
			PublishTime: d.publish,
			Kind:        KindEvent,
			EventID:     d.w.EventID,
			seq:         seq,
		})
	}
}

// duplicates repeats about DuplicateRate×Events events: redeliveries,
// producer retries and changed payloads.
func (g *generator) duplicates() {
	r := newRNG(g.cfg.Seed, streamDup)
	const second = int64(time.Second / time.Microsecond)
	n := int(math.Round(g.cfg.DuplicateRate * float64(g.cfg.Events)))
	bySeq := make(map[int]Message, len(g.messages))
	for _, m := range g.messages {
		bySeq[m.seq] = m
	}
	for range n {
		d := g.drafts[r.intn(len(g.drafts))]
		orig := bySeq[g.seqOf[d]]
		m := orig
		m.Kind = KindDuplicate
		m.Attributes = maps.Clone(orig.Attributes)
		m.seq = g.nextSeq()
		switch x := r.float(); {
		case x < 0.40:
			m.Class = DupRedelivery
			g.sameAs[m.seq] = orig.seq
		case x < 0.75:
			m.Class = DupRetry
			m.PublishTime += r.between(1*second, 120*second)
		default:
			m.Class = DupChanged
			m.Data = g.changed(r, d)
			m.PublishTime += r.between(30*second, 6*3600*second)
		}
		g.messages = append(g.messages, m)
	}
}

// changed returns d's record with a small change that keeps it valid and
// its event_id the same.
func (g *generator) changed(r *rng, d *draft) []byte {
	const second = int64(time.Second / time.Microsecond)
	members := d.members
	switch x := r.intn(4); {
	case x == 0 && d.w.Value != nil: // a corrected amount
		members = members.with("value", strconv.FormatFloat(math.Round(*d.w.Value*119)/100, 'f', 2, 64))
	case x == 1 && d.props != nil: // an enriched payload
		members = members.with("properties", string(d.props.with("revision", "2").encode(styleCompact)))
	case x == 2 && d.w.EventTime-5*second >= g.start: // a re-read clock
		t := d.w.EventTime - r.between(1*second, 5*second)
		members = members.with("event_time", jstr(time.UnixMicro(t).UTC().Format(time.RFC3339Nano)))
	default: // a flag set by the resending code
		members = members.with("resent", "true")
	}
	b := members.encode(d.style)
	if d.pad != "" {
		b = append(append([]byte(d.pad), b...), d.pad...)
	}
	return b
}

// assignMessageIDs sorts the messages in publish order and gives them
// increasing Pub/Sub-style ids; a redelivery keeps its message's id.
func (g *generator) assignMessageIDs() {
	sortMessages(g.messages)
	r := newRNG(g.cfg.Seed, streamFormat)
	next := int64(17_000_000_000_000_000) + r.between(0, 1_000_000_000)
	idOf := map[int]string{}
	for i := range g.messages {
		m := &g.messages[i]
		if orig, ok := g.sameAs[m.seq]; ok {
			m.MessageID = idOf[orig]
			continue
		}
		next += 1 + r.between(0, 9)
		m.MessageID = strconv.FormatInt(next, 10)
		idOf[m.seq] = m.MessageID
	}
	for _, d := range g.drafts {
		d.w.MessageID = idOf[g.seqOf[d]]
		d.w.PublishTime = d.publish
	}
}

// winners returns the valid unique events of the lake, sorted by event
// time and event_id.
func (g *generator) winners() []Winner {
	out := make([]Winner, 0, len(g.drafts)+len(g.importWinners))
	for _, d := range g.drafts {
		out = append(out, d.w)
	}
	out = append(out, g.importWinners...)
	slices.SortFunc(out, func(a, b Winner) int {
		return cmp.Or(cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventID, b.EventID))
	})
	return out
}
