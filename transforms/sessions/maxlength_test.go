package sessions_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/filter"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/sessions"
)

func init() { register.Function1x1(describe) }

// TestSessionsEndAtMidnight follows a user who never pauses for the gap:
// an event every 10 s for 48 h of event time, from t0 (12:00 UTC). Both
// paths — the batch job's and the streaming job's, with its trigger —
// give the same three sessions, each ending by midnight UTC, and no pane
// of the streaming path reads more than a day of the user's events.
// Without the bound, one session of 17,280 events grows for as long as the
// user does not pause, and every pane of it reads all of them again.
func TestSessionsEndAtMidnight(t *testing.T) {
	const every, span = 10 * time.Second, 48 * time.Hour
	var events []schemas.Event
	for at := time.Duration(0); at < span; at += every {
		events = append(events, event("bot", at, "api"))
	}
	gap := 10 * time.Minute
	want := []any{
		describe(withGap(session("bot", 0, 12*time.Hour-every, 4320, "api"), gap)),
		describe(withGap(session("bot", 12*time.Hour, 36*time.Hour-every, 8640, "api"), gap)),
		describe(withGap(session("bot", 36*time.Hour, 48*time.Hour-every, 4320, "api"), gap)),
	}
	paths := []struct {
		name string
		cfg  sessions.Config
	}{
		{"batch", sessions.Config{Gap: gap, ProcessedAt: processedAt}},
		{"streaming", lateFirings},
		{"streaming, running totals", runningTotals},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			stamped := beam.ParDo(s, stampEventTime, beam.CreateList(s, events))
			rows := sessions.PerUser(s, stamped, path.cfg)
			// A session may fire more than once (accumulating panes):
			// compare the sessions, not the panes.
			got := filter.Distinct(s, beam.ParDo(s, describe, sessions.WithoutPane(s, global(s, rows))))
			passert.Equals(s, got, want...)
			res, err := ptest.RunWithMetrics(p)
			if err != nil {
				t.Fatal(err)
			}
			if path.name == "batch" {
				return
			}
			read := paneEvents(t, res)
			t.Logf("the largest pane read %d events", read)
			if read == 0 || read > 8640 {
				t.Errorf("the largest pane read %d events, want at most a day's 8,640", read)
			}
		})
	}
}

// describe is a session as a string, to compare distinct sessions.
func describe(ss schemas.Session) string { return fmt.Sprintf("%+v", ss) }

// paneEvents is the most events one pane of a session read.
func paneEvents(t *testing.T, res beam.PipelineResult) int64 {
	t.Helper()
	var most int64
	found := false
	for _, d := range res.Metrics().AllMetrics().Distributions() {
		if d.Name() == metricnames.SessionsPaneEvents {
			found = true
			most = max(most, d.Result().Max)
		}
	}
	if !found {
		t.Fatalf("no %s distribution", metricnames.SessionsPaneEvents)
	}
	return most
}
