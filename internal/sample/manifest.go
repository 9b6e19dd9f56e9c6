package sample

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/railyard/railyard/schemas"
)

// Winner is a valid unique event in canonical form, as the generator
// meant it (not as a parser read it): the record of its event_id that was
// published first. In JSON, a NULL column is an absent member.
type Winner struct {
	EventID    string   `json:"event_id"`
	EventType  string   `json:"event_type"`
	EventTime  int64    `json:"event_time"`
	Source     string   `json:"source"`
	Platform   *string  `json:"platform,omitempty"`
	Country    *string  `json:"country,omitempty"`
	UserID     *string  `json:"user_id,omitempty"`
	SessionID  *string  `json:"session_id,omitempty"`
	Value      *float64 `json:"value,omitempty"`
	Properties *string  `json:"properties,omitempty"`
	Extra      *string  `json:"extra,omitempty"`
	// MessageID and PublishTime (microseconds) are the winning message's;
	// the publish time is the ingest time. Both are empty for a bare line.
	MessageID   string `json:"message_id,omitempty"`
	PublishTime int64  `json:"publish_time,omitempty"`
	// Bare is set for an event of an import file: it is in the lake, not
	// in the messages, and its ingest time is its file's time.
	Bare bool `json:"bare,omitempty"`
}

// Event returns w as the canonical event a job writes, ingest time and
// message id included; Layer and SourceURI are left for the caller.
func (w Winner) Event() schemas.Event {
	ev := schemas.Event{
		EventID:    w.EventID,
		EventType:  w.EventType,
		EventTime:  w.EventTime,
		Source:     w.Source,
		Platform:   clonePtr(w.Platform),
		UserID:     clonePtr(w.UserID),
		SessionID:  clonePtr(w.SessionID),
		Country:    clonePtr(w.Country),
		Value:      clonePtr(w.Value),
		Properties: clonePtr(w.Properties),
		Extra:      clonePtr(w.Extra),
		IngestTime: w.PublishTime,
	}
	if w.MessageID != "" {
		ev.MessageID = ptr(w.MessageID)
	}
	return ev
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Counts reconcile one input: RecordsIn = ValidUnique + Duplicates +
// DeadLetters.
type Counts struct {
	RecordsIn           int            `json:"records_in"`
	ValidUnique         int            `json:"valid_unique"`
	Duplicates          int            `json:"duplicates"`
	DeadLetters         int            `json:"dead_letters"`
	DeadLettersByReason map[string]int `json:"dead_letters_by_reason"`
}

func (c *Counts) add(m Message) {
	c.RecordsIn++
	switch m.Kind {
	case KindEvent:
		c.ValidUnique++
	case KindDuplicate:
		c.Duplicates++
	case KindBad:
		c.DeadLetters++
		c.DeadLettersByReason[m.Reason]++
	}
}

// Manifest is the truth about a sample: what a correct pipeline makes of
// it. It comes from the generator's own account of each record, not from
// the parser; this package's tests check the parser agrees.
type Manifest struct {
	Version           int      `json:"version"`
	Seed              int64    `json:"seed"`
	Days              []string `json:"days"`
	SessionGapSeconds int64    `json:"session_gap_seconds"`
	// Stream is what the streaming job sees: the messages.
	Stream Counts `json:"stream"`
	// Lake is what the batch job sees reading the whole lake: the
	// messages' envelopes and the import files' lines.
	Lake Counts `json:"lake"`
	// DuplicatesByKind counts duplicates by how they came about.
	DuplicatesByKind map[string]int `json:"duplicates_by_kind"`
	// LateEvents counts winners published an hour or more after their
	// event time; LateAcrossDays those of them published on a later
	// UTC day than their event time's.
	LateEvents     int `json:"late_events"`
	LateAcrossDays int `json:"late_across_days"`
	// Users counts the distinct user ids of the winners.
	Users int `json:"users"`
	// Classes is the catalog of bad classes with their counts in the
	// sample (Stream and Lake together).
	Classes []Class `json:"classes"`
	// Events are the winners of the lake, sorted by event time and
	// event_id; those with Bare unset are the winners of the stream.
	Events []Winner `json:"events"`
}

// manifestVersion changes when the manifest's meaning changes.
const manifestVersion = 1

// Manifest returns the truth about s.
func (s *Sample) Manifest() Manifest {
	m := Manifest{
		Version:           manifestVersion,
		Seed:              s.Config.Seed,
		SessionGapSeconds: int64(s.Config.SessionGap / time.Second),
		Stream:            Counts{DeadLettersByReason: map[string]int{}},
		Lake:              Counts{DeadLettersByReason: map[string]int{}},
		DuplicatesByKind:  map[string]int{},
		Events:            s.Winners(),
	}
	for d := range s.Config.Days {
		m.Days = append(m.Days, s.Config.FirstDay.AddDate(0, 0, d).Format(time.DateOnly))
	}
	classCount := map[string]int{}
	for _, msg := range s.Messages {
		m.Stream.add(msg)
		m.Lake.add(msg)
		if msg.Kind == KindDuplicate {
			m.DuplicatesByKind[msg.Class]++
		}
		if msg.Kind == KindBad {
			classCount[msg.Class]++
		}
	}
	for _, f := range s.Imports {
		for _, line := range f.Lines {
			m.Lake.add(line)
			if line.Kind == KindBad {
				classCount[line.Class]++
			}
		}
	}
	for _, c := range Classes() {
		c.Count = classCount[c.Name]
		m.Classes = append(m.Classes, c)
	}
	const hour = int64(time.Hour / time.Microsecond)
	users := map[string]bool{}
	for _, w := range m.Events {
		if w.UserID != nil {
			users[*w.UserID] = true
		}
		if w.Bare || w.PublishTime-w.EventTime < hour {
			continue
		}
		m.LateEvents++
		if dayOf(w.PublishTime) != dayOf(w.EventTime) {
			m.LateAcrossDays++
		}
	}
	m.Users = len(users)
	return m
}

// StreamEvents returns the winners of the messages: the events the
// streaming job must write.
func (m Manifest) StreamEvents() []Winner {
	var out []Winner
	for _, w := range m.Events {
		if !w.Bare {
			out = append(out, w)
		}
	}
	return out
}

func dayOf(micros int64) string { return time.UnixMicro(micros).UTC().Format(time.DateOnly) }

// WriteManifest writes m as JSON, one event per line, so that a diff of
// the committed manifest shows which events changed.
func WriteManifest(w io.Writer, m Manifest) error {
	events := m.Events
	m.Events = nil
	head, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("sample: encode manifest: %w", err)
	}
	// Replace the trailing `"events": null` with one event per line.
	head = bytes.TrimSuffix(head, []byte("\n}"))
	head = bytes.TrimSuffix(head, []byte(`"events": null`))
	var b bytes.Buffer
	b.Write(head)
	b.WriteString(`"events": [`)
	for i, ev := range events {
		line, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("sample: encode manifest event %s: %w", ev.EventID, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.Write(line)
	}
	b.WriteString("\n  ]\n}\n")
	if !json.Valid(b.Bytes()) {
		return fmt.Errorf("sample: encode manifest: the result is not valid JSON")
	}
	_, err = w.Write(b.Bytes())
	if err != nil {
		return fmt.Errorf("sample: write manifest: %w", err)
	}
	return nil
}

// ReadManifest reads a manifest WriteManifest wrote.
func ReadManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("sample: read manifest: %w", err)
	}
	if m.Version != manifestVersion {
		return Manifest{}, fmt.Errorf("sample: read manifest: version %d, want %d", m.Version, manifestVersion)
	}
	return m, nil
}

// MetricsMinute computes metrics_minute from winners, as the Metrics
// transform must: per one-minute event-time window and event_type,
// source, platform, country, the number of events, of distinct non-NULL
// user ids, and the sum of value. Rows are sorted by window, event_type,
// source, platform and country (NULL first). ValueSum is summed in
// event-time order; compare it with a tolerance.
func MetricsMinute(winners []Winner) []schemas.MetricMinute {
	const minute = int64(time.Minute / time.Microsecond)
	type key struct {
		window                  int64
		eventType, source       string
		platform, country       string
		hasPlatform, hasCountry bool
	}
	rows := map[key]*schemas.MetricMinute{}
	users := map[key]map[string]bool{}
	sorted := slices.Clone(winners)
	slices.SortStableFunc(sorted, func(a, b Winner) int { return cmp.Compare(a.EventTime, b.EventTime) })
	for _, w := range sorted {
		k := key{window: w.EventTime - w.EventTime%minute, eventType: w.EventType, source: w.Source}
		if w.Platform != nil {
			k.platform, k.hasPlatform = *w.Platform, true
		}
		if w.Country != nil {
			k.country, k.hasCountry = *w.Country, true
		}
		row, ok := rows[k]
		if !ok {
			row = &schemas.MetricMinute{WindowStart: k.window, WindowEnd: k.window + minute, EventType: w.EventType,
				Source: w.Source, Platform: clonePtr(w.Platform), Country: clonePtr(w.Country)}
			rows[k] = row
			users[k] = map[string]bool{}
		}
		row.Events++
		if w.UserID != nil {
			users[k][*w.UserID] = true
		}
		if w.Value != nil {
			row.ValueSum += *w.Value
		}
	}
	out := make([]schemas.MetricMinute, 0, len(rows))
	for k, row := range rows {
		row.Users = int64(len(users[k]))
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b schemas.MetricMinute) int {
		return cmp.Or(cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.EventType, b.EventType),
			cmp.Compare(a.Source, b.Source), comparePtr(a.Platform, b.Platform), comparePtr(a.Country, b.Country))
	})
	return out
}

func comparePtr(a, b *string) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

// Sessions computes the sessions of winners with a user id, as Beam's
// session windows do with the given gap: an event within gap of the
// session's last event joins it (a gap of exactly gap starts a new
// session; the sample has no gap near the boundary), and ending at
// midnight UTC, as Railyard's sessions do. Rows are sorted by user and
// start.
func Sessions(winners []Winner, gap time.Duration) []schemas.Session {
	g := int64(gap / time.Microsecond)
	byUser := map[string][]Winner{}
	for _, w := range winners {
		if w.UserID != nil {
			byUser[*w.UserID] = append(byUser[*w.UserID], w)
		}
	}
	var out []schemas.Session
	for _, u := range sortedKeys(byUser) {
		evs := byUser[u]
		slices.SortFunc(evs, func(a, b Winner) int {
			return cmp.Or(cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventID, b.EventID))
		})
		var cur *schemas.Session
		sources := map[string]bool{}
		flush := func() {
			if cur == nil {
				return
			}
			cur.DurationSeconds = float64(cur.SessionEnd-cur.SessionStart) / 1e6
			cur.Sources = sortedKeys(sources)
			out = append(out, *cur)
			sources = map[string]bool{}
		}
		for _, w := range evs {
			if cur == nil || w.EventTime >= cur.SessionEnd+g || schemas.SessionDay(w.EventTime) != schemas.SessionDay(cur.SessionEnd) {
				flush()
				cur = &schemas.Session{SessionStart: w.EventTime, UserID: u, GapSeconds: int64(gap / time.Second)}
			}
			cur.SessionEnd = w.EventTime
			cur.Events++
			sources[w.Source] = true
		}
		flush()
	}
	return out
}
