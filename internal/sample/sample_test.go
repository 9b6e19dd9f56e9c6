package sample

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/railyard/railyard/schemas"
)

var (
	defaultOnce   sync.Once
	defaultSample *Sample
	defaultErr    error
)

// generated returns the default sample, generated once per test binary.
func generated(t *testing.T) *Sample {
	t.Helper()
	defaultOnce.Do(func() { defaultSample, defaultErr = Generate(DefaultConfig()) })
	if defaultErr != nil {
		t.Fatalf("Generate: %v", defaultErr)
	}
	return defaultSample
}

func TestGenerateIsDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 500
	cfg.Users = 50
	a, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	b, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	t.Run("gives the same sample for the same config", func(t *testing.T) {
		if !reflect.DeepEqual(a.Messages, b.Messages) || !reflect.DeepEqual(a.Imports, b.Imports) || !reflect.DeepEqual(a.Manifest(), b.Manifest()) {
			t.Errorf("two samples of the same config differ")
		}
	})
	t.Run("writes the same bytes for the same config", func(t *testing.T) {
		da, db := t.TempDir(), t.TempDir()
		if err := a.WriteTestdata(da); err != nil {
			t.Fatalf("WriteTestdata: %v", err)
		}
		if err := b.WriteTestdata(db); err != nil {
			t.Fatalf("WriteTestdata: %v", err)
		}
		fa, fb := readTree(t, da, false), readTree(t, db, false)
		if !reflect.DeepEqual(fa, fb) {
			t.Errorf("two writes of the same sample differ")
		}
	})
	t.Run("gives another sample for another seed", func(t *testing.T) {
		cfg.Seed = 2
		c, err := Generate(cfg)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if bytes.Equal(a.Messages[0].Data, c.Messages[0].Data) {
			t.Errorf("seeds 1 and 2 start with the same message")
		}
	})
}

func TestGenerateRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		errPart string
	}{
		{"rejects a first day that is not midnight", func(c *Config) { c.FirstDay = c.FirstDay.Add(time.Hour) }, "is not midnight UTC"},
		{"rejects a first day outside UTC", func(c *Config) { c.FirstDay = time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("", 3600)) }, "is not midnight UTC"},
		{"rejects days outside the contract's years", func(c *Config) { c.FirstDay = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }, "years 2000-2100"},
		{"rejects too few events", func(c *Config) { c.Events = 10 }, "Events is 10"},
		{"rejects more users than events", func(c *Config) { c.Events = 200; c.Users = 300 }, "Users is 300"},
		{"rejects a duplicate rate over one half", func(c *Config) { c.DuplicateRate = 0.9 }, "at most 0.5"},
		{"rejects a session gap of seconds", func(c *Config) { c.SessionGap = time.Second }, "SessionGap 1s"},
		{"rejects too many days", func(c *Config) { c.Days = 40 }, "Days is 40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			_, err := Generate(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("Generate error = %v, want one containing %q", err, tc.errPart)
			}
		})
	}
	t.Run("fills zero fields with the defaults", func(t *testing.T) {
		if got := (Config{Seed: 1}).withDefaults(); !reflect.DeepEqual(got, DefaultConfig()) {
			t.Errorf("config = %+v, want the default %+v", got, DefaultConfig())
		}
	})
	t.Run("turns negative rates and counts into none", func(t *testing.T) {
		got := (Config{DuplicateRate: -1, LateRate: -1, BadPerClass: -1, ImportFiles: -1}).withDefaults()
		if got.DuplicateRate != 0 || got.LateRate != 0 || got.BadPerClass != 0 || got.ImportFiles != 0 {
			t.Errorf("config = %+v, want no duplicates, late events, bad records or imports", got)
		}
	})
}

func TestManifestReconciles(t *testing.T) {
	s := generated(t)
	m := s.Manifest()
	for name, c := range map[string]Counts{"stream": m.Stream, "lake": m.Lake} {
		t.Run("balances records in the "+name, func(t *testing.T) {
			if c.RecordsIn != c.ValidUnique+c.Duplicates+c.DeadLetters {
				t.Errorf("records in %d != valid unique %d + duplicates %d + dead letters %d", c.RecordsIn, c.ValidUnique, c.Duplicates, c.DeadLetters)
			}
			sum := 0
			for _, n := range c.DeadLettersByReason {
				sum += n
			}
			if sum != c.DeadLetters {
				t.Errorf("dead letters by reason sum to %d, want %d", sum, c.DeadLetters)
			}
		})
	}
	t.Run("holds the configured number of events", func(t *testing.T) {
		if m.Stream.ValidUnique != s.Config.Events {
			t.Errorf("stream valid unique = %d, want %d", m.Stream.ValidUnique, s.Config.Events)
		}
		if got := len(m.StreamEvents()); got != m.Stream.ValidUnique {
			t.Errorf("stream winners = %d, want %d", got, m.Stream.ValidUnique)
		}
		if got := len(m.Events); got != m.Lake.ValidUnique {
			t.Errorf("lake winners = %d, want %d", got, m.Lake.ValidUnique)
		}
	})
	t.Run("holds about five percent duplicates of every kind", func(t *testing.T) {
		rate := float64(m.Stream.Duplicates) / float64(m.Stream.ValidUnique)
		if rate < 0.04 || rate > 0.06 {
			t.Errorf("duplicate rate = %.3f, want about 0.05", rate)
		}
		for _, kind := range []string{DupRedelivery, DupRetry, DupChanged} {
			if m.DuplicatesByKind[kind] < 10 {
				t.Errorf("%d duplicates of kind %s, want at least 10", m.DuplicatesByKind[kind], kind)
			}
		}
	})
	t.Run("holds late events that cross the day boundary", func(t *testing.T) {
		if m.LateEvents < 50 || m.LateAcrossDays < 20 {
			t.Errorf("late events = %d, across days = %d; want at least 50 and 20", m.LateEvents, m.LateAcrossDays)
		}
	})
	t.Run("holds a few hundred users", func(t *testing.T) {
		if m.Users < 200 || m.Users > 600 {
			t.Errorf("users = %d, want a few hundred", m.Users)
		}
	})
	t.Run("spans the configured days", func(t *testing.T) {
		want := []string{"2026-11-01", "2026-11-02"}
		if !slices.Equal(m.Days, want) {
			t.Errorf("days = %v, want %v", m.Days, want)
		}
		for _, w := range m.Events {
			if d := dayOf(w.EventTime); !slices.Contains(want, d) {
				t.Fatalf("event %s is on %s", w.EventID, d)
			}
		}
	})
}

// TestMessagesMatchTheParser checks the generator's truth about every
// message against schemas.ParseEvent, so the manifest cannot drift from
// the contract.
func TestMessagesMatchTheParser(t *testing.T) {
	checkAgainstParser(t, generated(t))
}

func TestGenerateOtherConfigs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		checks func(*testing.T, Manifest)
	}{
		{"makes a clean sample without duplicates, bad records or imports",
			Config{Seed: 5, Events: 200, Users: 20, DuplicateRate: -1, LateRate: -1, BadPerClass: -1, ImportFiles: -1},
			func(t *testing.T, m Manifest) {
				if m.Lake.Duplicates != 0 || m.Lake.DeadLetters != 0 || m.Lake.RecordsIn != 200 {
					t.Errorf("lake counts = %+v, want 200 valid records only", m.Lake)
				}
			}},
		{"makes a sample of one day", Config{Seed: 6, Days: 1, Events: 400, Users: 40},
			func(t *testing.T, m Manifest) {
				for _, w := range m.Events {
					if d := dayOf(w.EventTime); d != "2026-11-01" {
						t.Fatalf("event %s is on %s", w.EventID, d)
					}
				}
			}},
		{"makes a larger sample of a week", Config{Seed: 7, Days: 7, FirstDay: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Events: 8000, Users: 900},
			func(t *testing.T, m Manifest) {
				if m.Stream.ValidUnique != 8000 || len(m.Days) != 7 {
					t.Errorf("%d events over %d days, want 8000 over 7", m.Stream.ValidUnique, len(m.Days))
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Generate(tc.cfg)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			checkAgainstParser(t, s)
			tc.checks(t, s.Manifest())
		})
	}
}

// checkAgainstParser checks the generator's truth about every message of
// s against schemas.ParseEvent.
func checkAgainstParser(t *testing.T, s *Sample) {
	t.Helper()
	m := s.Manifest()
	winners := map[string]Winner{}
	for _, w := range m.Events {
		winners[w.EventID] = w
	}
	seen := map[string]bool{}
	for i, msg := range s.Messages {
		ev, err := schemas.ParseEvent(msg.Data)
		switch msg.Kind {
		case KindBad:
			if got := schemas.ReasonOf(err); got != msg.Reason {
				t.Errorf("message %d of class %s: reason %q, want %q (error %v)", i, msg.Class, got, msg.Reason, err)
			}
			continue
		case KindEvent, KindDuplicate:
			if err != nil {
				t.Errorf("message %d (%s %s) is rejected: %v\n%.300q", i, msg.Kind, msg.Class, err, msg.Data)
				continue
			}
		default:
			t.Fatalf("message %d has kind %q", i, msg.Kind)
		}
		if ev.EventID != msg.EventID {
			t.Errorf("message %d: event_id %q, want %q", i, ev.EventID, msg.EventID)
		}
		if first := !seen[ev.EventID]; first != (msg.Kind == KindEvent) {
			t.Errorf("message %d: kind %s, but first of its event_id: %v", i, msg.Kind, first)
		}
		seen[ev.EventID] = true
		if msg.Kind != KindEvent {
			continue
		}
		ev.IngestTime = msg.PublishTime
		ev.MessageID = ptr(msg.MessageID)
		if want := winners[ev.EventID].Event(); !reflect.DeepEqual(ev, want) {
			t.Errorf("message %d: parsed\n%+v\nwant (manifest)\n%+v", i, show(ev), show(want))
		}
	}
}

func show(ev schemas.Event) string {
	deref := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	v := "NULL"
	if ev.Value != nil {
		v = fmt.Sprint(*ev.Value)
	}
	return fmt.Sprintf("id=%s type=%s time=%d source=%s platform=%s country=%s user=%s session=%s value=%s props=%s extra=%s ingest=%d msg=%s",
		ev.EventID, ev.EventType, ev.EventTime, ev.Source, deref(ev.Platform), deref(ev.Country), deref(ev.UserID), deref(ev.SessionID),
		v, deref(ev.Properties), deref(ev.Extra), ev.IngestTime, deref(ev.MessageID))
}

func TestMessages(t *testing.T) {
	s := generated(t)
	first := map[string]Message{}
	byID := map[string]Message{}
	for i, m := range s.Messages {
		if i > 0 && m.PublishTime < s.Messages[i-1].PublishTime {
			t.Fatalf("message %d is published before message %d", i, i-1)
		}
		if m.MessageID == "" || m.PublishTime == 0 || m.Attributes["source_system"] == "" {
			t.Errorf("message %d lacks an id, publish time or source_system attribute: %+v", i, m)
		}
		if prev, ok := byID[m.MessageID]; ok && (m.Class != DupRedelivery || !bytes.Equal(prev.Data, m.Data) || prev.PublishTime != m.PublishTime) {
			t.Errorf("message id %s is used twice, and not by a redelivery of the same message", m.MessageID)
		}
		byID[m.MessageID] = m
		if m.Kind == KindEvent {
			first[m.EventID] = m
		}
	}
	for i, m := range s.Messages {
		if m.Kind != KindDuplicate {
			continue
		}
		orig, ok := first[m.EventID]
		if !ok {
			t.Errorf("duplicate %d repeats event %s, which no message holds", i, m.EventID)
			continue
		}
		switch m.Class {
		case DupRedelivery:
			if m.MessageID != orig.MessageID || m.PublishTime != orig.PublishTime || !bytes.Equal(m.Data, orig.Data) {
				t.Errorf("redelivery %d is not the same message as %s", i, orig.MessageID)
			}
		case DupRetry:
			if m.MessageID == orig.MessageID || m.PublishTime <= orig.PublishTime || !bytes.Equal(m.Data, orig.Data) {
				t.Errorf("retry %d is not the same data in a later message", i)
			}
		case DupChanged:
			if m.MessageID == orig.MessageID || m.PublishTime <= orig.PublishTime || bytes.Equal(m.Data, orig.Data) {
				t.Errorf("changed payload %d is not other data in a later message", i)
			}
		default:
			t.Errorf("duplicate %d has class %q", i, m.Class)
		}
	}
}

func TestBadClasses(t *testing.T) {
	s := generated(t)
	m := s.Manifest()
	t.Run("has at least 30 distinct classes in the sample", func(t *testing.T) {
		n := 0
		for _, c := range m.Classes {
			if c.Count > 0 {
				n++
			}
		}
		if n < 30 {
			t.Errorf("%d classes, want at least 30", n)
		}
	})
	t.Run("has a few records of every class", func(t *testing.T) {
		for _, c := range m.Classes {
			want := s.Config.BadPerClass
			if c.Name == "oversize_record" {
				want = 1
			}
			if c.Name == "csv_header_line" {
				want = s.Config.ImportFiles
			}
			if c.Count != want {
				t.Errorf("class %s has %d records, want %d", c.Name, c.Count, want)
			}
		}
	})
	t.Run("names every class once with a parser reason", func(t *testing.T) {
		seen := map[string]bool{}
		for _, c := range Classes() {
			if seen[c.Name] || !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(c.Name) {
				t.Errorf("class name %q is repeated or not snake_case", c.Name)
			}
			seen[c.Name] = true
			if c.Reason == "" || c.Description == "" || (c.Via != ViaMessage && c.Via != ViaLakeLine) {
				t.Errorf("class %s is incomplete: %+v", c.Name, c)
			}
		}
	})
	t.Run("gives each lake-line class its reason through the lake reader's parse", func(t *testing.T) {
		n := 0
		for _, f := range s.Imports {
			for _, line := range f.Lines {
				got := lineReason(t, line.Data)
				if line.Kind == KindBad {
					n++
					if got != line.Reason {
						t.Errorf("%s line of class %s: reason %q, want %q", f.Path, line.Class, got, line.Reason)
					}
				} else if got != "" {
					t.Errorf("%s: valid line is rejected: %s", f.Path, got)
				}
			}
		}
		if n == 0 {
			t.Errorf("the import files hold no bad lines")
		}
	})
	t.Run("gives each bad example its class's reason", func(t *testing.T) {
		examples := s.BadExamples()
		for _, c := range m.Classes {
			data, ok := examples[c.Name]
			if !ok {
				t.Errorf("no example of %s", c.Name)
				continue
			}
			var got string
			if c.Via == ViaLakeLine {
				got = lineReason(t, data)
			} else {
				_, err := schemas.ParseEvent(data)
				got = schemas.ReasonOf(err)
			}
			if got != c.Reason {
				t.Errorf("example of %s: reason %q, want %q", c.Name, got, c.Reason)
			}
		}
	})
}

// lineReason reads a lake line as the batch job does: ParseLakeLine, then
// ParseEvent. It returns the reason code, or "" for a valid event.
func lineReason(t *testing.T, line []byte) string {
	t.Helper()
	rec, err := schemas.ParseLakeLine(line, "gs://test/x.jsonl.gz#L1", 0)
	if err != nil {
		return schemas.ReasonOf(err)
	}
	_, err = schemas.ParseEvent(rec.Data)
	return schemas.ReasonOf(err)
}

var lakePathPattern = regexp.MustCompile(`^raw/dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/[a-zA-Z0-9-]+\.jsonl\.gz$`)

// TestLakeReadsBackAsTheManifestSays reads the written lake as the batch
// job would and checks its counts, its winners and its layout.
func TestLakeReadsBackAsTheManifestSays(t *testing.T) {
	s := generated(t)
	m := s.Manifest()
	dir := t.TempDir()
	if err := s.WriteLake(dir); err != nil {
		t.Fatalf("WriteLake: %v", err)
	}
	files := readTree(t, dir, true)
	type lakeRecord struct {
		rec  schemas.Record
		ev   schemas.Event
		err  error
		path string
	}
	var recs []lakeRecord
	hourOf := func(micros int64) string {
		u := time.UnixMicro(micros).UTC()
		return fmt.Sprintf("%s/%02d", u.Format(time.DateOnly), u.Hour())
	}
	lateFileInOldDay := false
	for _, path := range sortedKeys(files) {
		parts := lakePathPattern.FindStringSubmatch(path)
		if parts == nil {
			t.Errorf("file %s is not in the lake layout", path)
			continue
		}
		partition := parts[1] + "/" + parts[2]
		for n, line := range bytes.Split(bytes.TrimSuffix(files[path], []byte("\n")), []byte("\n")) {
			uri := fmt.Sprintf("%s#L%d", path, n+1)
			rec, err := schemas.ParseLakeLine(line, uri, 0)
			lr := lakeRecord{rec: rec, err: err, path: path}
			if err == nil {
				lr.ev, lr.err = schemas.ParseEvent(rec.Data)
			}
			recs = append(recs, lr)
			if rec.MessageID == "" {
				continue // a bare line: its file is placed by hand
			}
			if lr.err == nil && hourOf(lr.ev.EventTime) != partition {
				t.Errorf("%s: event at %s is not in its event hour", uri, hourOf(lr.ev.EventTime))
			}
			if lr.err != nil && hourOf(schemas.ArchiveTime(rec.Data, rec.PublishTime)) != partition {
				t.Errorf("%s: unreadable record is not in its archive hour", uri)
			}
			pubHour := time.UnixMicro(rec.PublishTime).UTC().Format("20060102T15")
			if !strings.HasSuffix(path, "/stream-"+pubHour+".jsonl.gz") {
				t.Errorf("%s: record published at %s is not in its publish hour's file", uri, pubHour)
			}
			if lr.err == nil && pubHour[:8] != strings.ReplaceAll(parts[1], "-", "") {
				lateFileInOldDay = true
			}
		}
	}
	if !lateFileInOldDay {
		t.Errorf("no late event lands in its old day in a file of a later day")
	}

	got := Counts{DeadLettersByReason: map[string]int{}}
	slices.SortStableFunc(recs, func(a, b lakeRecord) int { return cmp.Compare(a.rec.IngestTime, b.rec.IngestTime) })
	winners := map[string]schemas.Event{}
	for _, r := range recs {
		got.RecordsIn++
		switch {
		case r.err != nil:
			got.DeadLetters++
			got.DeadLettersByReason[schemas.ReasonOf(r.err)]++
		case winners[r.ev.EventID].EventID != "":
			got.Duplicates++
		default:
			got.ValidUnique++
			ev := r.ev
			ev.IngestTime = r.rec.IngestTime
			if r.rec.MessageID != "" {
				ev.MessageID = ptr(r.rec.MessageID)
			}
			winners[ev.EventID] = ev
		}
	}
	if !reflect.DeepEqual(got, m.Lake) {
		t.Errorf("lake counts:\n got %+v\nwant %+v", got, m.Lake)
	}
	for _, w := range m.Events {
		if ev, ok := winners[w.EventID]; !ok || !reflect.DeepEqual(ev, w.Event()) {
			t.Errorf("winner %s: read %s, want %s", w.EventID, show(ev), show(w.Event()))
		}
	}
}

func TestSessionsOfTheSample(t *testing.T) {
	s := generated(t)
	m := s.Manifest()
	gap := s.Config.SessionGap
	t.Run("has no gap between events of a user near the session gap", func(t *testing.T) {
		byUser := map[string][]int64{}
		for _, w := range m.Events {
			if w.UserID != nil {
				byUser[*w.UserID] = append(byUser[*w.UserID], w.EventTime)
			}
		}
		for u, times := range byUser {
			slices.Sort(times)
			for i := 1; i < len(times); i++ {
				d := time.Duration(times[i]-times[i-1]) * time.Microsecond
				if d >= gap/2 && d < gap*3/2 {
					t.Errorf("user %s has a gap of %s, too close to the session gap %s", u, d, gap)
				}
			}
		}
	})
	t.Run("has users with several sessions and sessions with several sources", func(t *testing.T) {
		sessions := Sessions(m.StreamEvents(), gap)
		perUser := map[string]int{}
		multiSource := 0
		for _, ss := range sessions {
			perUser[ss.UserID]++
			if len(ss.Sources) > 1 {
				multiSource++
			}
		}
		several := 0
		for _, n := range perUser {
			if n > 1 {
				several++
			}
		}
		if several < 50 || multiSource < 50 {
			t.Errorf("%d users with several sessions and %d sessions of several sources; want at least 50 of each", several, multiSource)
		}
	})
}

func TestSessions(t *testing.T) {
	const minute = int64(time.Minute / time.Microsecond)
	w := func(id, user, src string, at int64) Winner {
		return Winner{EventID: id, UserID: &user, Source: src, EventTime: at}
	}
	anon := Winner{EventID: "anon", EventTime: 5}
	got := Sessions([]Winner{
		w("a3", "a", "web", 60*minute), // 31 minutes after a2: a new session
		w("a1", "a", "web", 0),
		w("a2", "a", "ios", 29*minute), // 29 minutes after a1: the same session
		w("b1", "b", "web", 10*minute),
		anon,
	}, 30*time.Minute)
	want := []schemas.Session{
		{SessionStart: 0, SessionEnd: 29 * minute, UserID: "a", DurationSeconds: 29 * 60, Events: 2, Sources: []string{"ios", "web"}, GapSeconds: 1800},
		{SessionStart: 60 * minute, SessionEnd: 60 * minute, UserID: "a", Events: 1, Sources: []string{"web"}, GapSeconds: 1800},
		{SessionStart: 10 * minute, SessionEnd: 10 * minute, UserID: "b", Events: 1, Sources: []string{"web"}, GapSeconds: 1800},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sessions:\n got %+v\nwant %+v", got, want)
	}
	t.Run("starts a new session at exactly the gap", func(t *testing.T) {
		got := Sessions([]Winner{w("x1", "x", "web", 0), w("x2", "x", "web", 30*minute)}, 30*time.Minute)
		if len(got) != 2 {
			t.Errorf("got %d sessions, want 2", len(got))
		}
	})
	t.Run("keeps one session just under the gap", func(t *testing.T) {
		got := Sessions([]Winner{w("x1", "x", "web", 0), w("x2", "x", "web", 30*minute-1)}, 30*time.Minute)
		if len(got) != 1 {
			t.Errorf("got %d sessions, want 1", len(got))
		}
	})
}

func TestMetricsMinute(t *testing.T) {
	const minute = int64(time.Minute / time.Microsecond)
	web, de := "web", "DE"
	u1, u2 := "u1", "u2"
	v := func(f float64) *float64 { return &f }
	got := MetricsMinute([]Winner{
		{EventID: "1", EventType: "page.view", Source: "s", Platform: &web, Country: &de, UserID: &u1, EventTime: 10, Value: v(1.5)},
		{EventID: "2", EventType: "page.view", Source: "s", Platform: &web, Country: &de, UserID: &u1, EventTime: minute - 1, Value: v(2)},
		{EventID: "3", EventType: "page.view", Source: "s", Platform: &web, Country: &de, UserID: &u2, EventTime: 20},
		{EventID: "4", EventType: "page.view", Source: "s", Platform: &web, EventTime: 30},
		{EventID: "5", EventType: "page.view", Source: "s", Platform: &web, Country: &de, EventTime: minute},
	})
	want := []schemas.MetricMinute{
		{WindowStart: 0, WindowEnd: minute, EventType: "page.view", Source: "s", Platform: &web, Events: 1},
		{WindowStart: 0, WindowEnd: minute, EventType: "page.view", Source: "s", Platform: &web, Country: &de, Events: 3, Users: 2, ValueSum: 3.5},
		{WindowStart: minute, WindowEnd: 2 * minute, EventType: "page.view", Source: "s", Platform: &web, Country: &de, Events: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MetricsMinute:\n got %+v\nwant %+v", got, want)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := generated(t).Manifest()
	var b bytes.Buffer
	if err := WriteManifest(&b, m); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	got, err := ReadManifest(&b)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("the manifest does not survive WriteManifest and ReadManifest")
	}
	t.Run("rejects another version", func(t *testing.T) {
		_, err := ReadManifest(strings.NewReader(`{"version":2}`))
		if err == nil || !strings.Contains(err.Error(), "version 2") {
			t.Errorf("ReadManifest error = %v, want a version error", err)
		}
	})
}

// readTree returns every file under dir by slash path; gz files are
// decompressed when gunzip is set.
func readTree(t *testing.T, dir string, gunzip bool) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if gunzip && strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if b, err = io.ReadAll(bufio.NewReader(zr)); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return out
}
