package streamjob

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/serving"
)

func TestFloorOf(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	cfg := validConfig() // allowed lateness 2m, session gap 30m
	tests := []struct {
		name   string
		closed time.Time
		want   time.Time
	}{
		{name: "is the latest closed window minus the lateness, a window and a session gap",
			closed: now.Add(-5 * time.Minute), want: now.Add(-5*time.Minute - 33*time.Minute)},
		{name: "takes a window that ends at the wall clock as it is",
			closed: now, want: now.Add(-33 * time.Minute)},
		{name: "clamps a window that ends two hours ahead to the wall clock",
			closed: now.Add(2 * time.Hour), want: now.Add(-33 * time.Minute)},
		{name: "clamps a window in 2099 to the wall clock",
			closed: time.Date(2099, 6, 1, 0, 1, 0, 0, time.UTC), want: now.Add(-33 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := floorOf(tt.closed, now, cfg)
			if got != tt.want.UnixMicro() {
				t.Errorf("floorOf(%v, now %v) = %v, want %v", tt.closed, now, time.UnixMicro(got).UTC(), tt.want)
			}
			if got > now.UnixMicro() {
				t.Errorf("the floor %v is ahead of the wall clock %v", time.UnixMicro(got).UTC(), now)
			}
		})
	}
}

func TestRecoveryFloorIgnoresWindowsAheadOfTheWallClock(t *testing.T) {
	e := startEnv(t, "stream_floor")
	cfg := e.config("stream-floor")
	ctx := context.Background()
	client, err := serving.Prepare(ctx, cfg.Sink(cfg.RunID))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	closed := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	insert := func(windowStart time.Time, timing string) {
		t.Helper()
		q := e.db.Client.Query(fmt.Sprintf("INSERT INTO `%s.%s.metrics_minute_speed` "+
			"(window_start, window_end, event_type, source, events, users, value_sum, pane_index, pane_timing, processed_at) "+
			"VALUES (@start, @end, 'page.view', 'web-shop', 1, 1, 0, 0, @timing, @processed)", cfg.Project, cfg.Dataset))
		q.Parameters = []bigquery.QueryParameter{
			{Name: "start", Value: windowStart}, {Name: "end", Value: windowStart.Add(time.Minute)},
			{Name: "timing", Value: timing}, {Name: "processed", Value: time.Now().UTC()},
		}
		job, err := q.Run(ctx)
		if err != nil {
			t.Fatalf("insert a %s pane of %v: %v", timing, windowStart, err)
		}
		if st, err := job.Wait(ctx); err != nil || st.Err() != nil {
			t.Fatalf("insert a %s pane of %v: %v %v", timing, windowStart, err, st.Err())
		}
	}
	// The earlier run closed the minute ending 5 minutes ago; on stopping,
	// it also fired the windows of events dated 2 h ahead and in 2099.
	insert(closed.Add(-time.Minute), "ON_TIME")
	insert(time.Now().UTC().Truncate(time.Minute).Add(2*time.Hour), "ON_TIME")
	insert(time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC), "ON_TIME")
	insert(time.Date(2099, 6, 1, 0, 5, 0, 0, time.UTC), "LATE")
	floor, err := recoveryFloor(ctx, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := closed.Add(-cfg.AllowedLateness - time.Minute - cfg.SessionGap)
	if got := time.UnixMicro(floor).UTC(); !got.Equal(want) {
		t.Errorf("recovery floor %v, want %v: the latest window closed by the wall clock (%v) minus the lateness, a window and a session gap", got, want, closed)
	}
}

// futureMessage is a valid event for user, dated at eventTime and meant
// to be published at publishAt.
func futureMessage(id, user string, eventTime, publishAt time.Time) sample.Message {
	data, err := json.Marshal(map[string]any{
		"event_id": id, "event_type": "page.view", "event_time": eventTime.UTC().Format(time.RFC3339Nano),
		"source": "web-shop", "platform": "web", "user_id": user, "country": "DE", "value": 1,
	})
	if err != nil {
		panic(err)
	}
	return sample.Message{Data: data, PublishTime: publishAt.UnixMicro(), Kind: sample.KindEvent, EventID: id}
}

// currentMessages is n events of 4 users, one every 200 ms from now,
// each dated 300 ms before it is meant to be published (a publisher
// behind schedule only makes them later). It adds them to perMinute and
// perUser.
func currentMessages(prefix string, n int, perMinute map[int64]int, perUser map[string]int) []sample.Message {
	start := time.Now()
	msgs := make([]sample.Message, n)
	for i := range msgs {
		at := start.Add(time.Duration(i) * 200 * time.Millisecond)
		user := fmt.Sprintf("u-%d", i%4)
		msgs[i] = futureMessage(fmt.Sprintf("%s-%03d", prefix, i), user, at.Add(-300*time.Millisecond), at)
		ev := at.Add(-300 * time.Millisecond)
		perMinute[ev.Truncate(time.Minute).UnixMicro()]++
		perUser[user]++
	}
	return msgs
}

// TestStreamingFutureEventsAcrossARestart publishes, among current
// events, one dated in 2099 and one 2 h ahead, stops the job, and runs it
// again on the same dataset with more current events: the second run's
// metrics and sessions must hold every current event.
func TestStreamingFutureEventsAcrossARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a streaming job twice and the batch job, for about a minute")
	}
	e := startEnv(t, "stream_future")
	perMinute, perUser := map[int64]int{}, map[string]int{}
	first := currentMessages("first", 40, perMinute, perUser)
	from := time.UnixMicro(first[0].PublishTime).Add(-time.Minute)
	// Two wrong clocks among them, of users with current events too.
	far := futureMessage("far-2099", "u-1", time.Date(2099, 6, 1, 0, 0, 30, 0, time.UTC), time.UnixMicro(first[10].PublishTime))
	ahead := futureMessage("ahead-2h", "u-2", time.UnixMicro(first[20].PublishTime).Add(2*time.Hour), time.UnixMicro(first[20].PublishTime))
	first = slices.Insert(first, 21, ahead)
	first = slices.Insert(first, 11, far)

	sent := e.publishPaced(t, first)
	res1, err := Run(context.Background(), e.config("stream-future-1"))
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	sent()
	c1 := testenv.Counters(res1)
	t.Logf("first run counters: %v", c1)

	second := currentMessages("second", 40, perMinute, perUser)
	sent = e.publishPaced(t, second)
	res2, err := Run(context.Background(), e.config("stream-future-2"))
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	sent()
	c2 := testenv.Counters(res2)
	t.Logf("second run counters: %v", c2)
	now := time.Now()

	t.Run("the far-future events are written and counted, not aggregated", func(t *testing.T) {
		ids := e.db.Query(t, "SELECT event_id, COUNT(*) FROM {ds}.events_speed WHERE event_id IN ('far-2099', 'ahead-2h') GROUP BY event_id")
		if want := []string{"ahead-2h|1", "far-2099|1"}; !slices.Equal(ids, want) {
			t.Errorf("events_speed holds %v of the far-future events, want each once: %v", ids, want)
		}
		if c1["future_events"] != 2 {
			t.Errorf("first run: future_events = %d, want 2 (the events dated in 2099 and 2 h ahead)", c1["future_events"])
		}
		if c2["future_events"] != 0 {
			t.Errorf("second run: future_events = %d, want 0 (it published none; what it recovered was counted by the first run)", c2["future_events"])
		}
		for _, table := range []string{"metrics_minute_speed WHERE window_start", "sessions_speed WHERE session_end"} {
			if n := e.db.One(t, fmt.Sprintf("SELECT COUNT(*) FROM {ds}.%s > TIMESTAMP_MICROS(%d)", table, now.UnixMicro())); n != "0" {
				t.Errorf("%s ahead of the wall clock: %s rows, want none", table, n)
			}
		}
	})
	t.Run("the second run's recovery floor is not ahead of its events", func(t *testing.T) {
		for _, agg := range []string{"metrics", "sessions"} {
			if n := c2["recovered_floor_skipped_"+agg]; n != 0 {
				t.Errorf("second run: recovered_floor_skipped_%s = %d, want 0: its recovery floor is ahead of the events it read", agg, n)
			}
		}
	})
	t.Run("every current event is in the latest metrics panes", func(t *testing.T) {
		rows := e.db.Query(t, fmt.Sprintf(`SELECT UNIX_MICROS(window_start), events FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, event_type, source, platform, country
                               ORDER BY processed_at DESC, pane_index DESC) AS latest
  FROM {ds}.metrics_minute_speed) WHERE latest = 1 AND window_start >= TIMESTAMP_MICROS(%d)`, from.UnixMicro()))
		got := map[int64]int{}
		for _, r := range rows {
			start, n, _ := strings.Cut(r, "|")
			s, _ := strconv.ParseInt(start, 10, 64)
			got[s], _ = strconv.Atoi(n)
		}
		for _, m := range slices.Sorted(maps.Keys(perMinute)) {
			if got[m] != perMinute[m] {
				t.Errorf("minute %v: the latest pane counts %d events, want the %d current events published; its rows (pane, timing, events, processed_at): %v; its events (id, event time, ingest time): %v",
					time.UnixMicro(m).UTC().Format(time.TimeOnly), got[m], perMinute[m],
					e.db.Query(t, fmt.Sprintf("SELECT pane_index, pane_timing, events, processed_at FROM {ds}.metrics_minute_speed WHERE window_start = TIMESTAMP_MICROS(%d) ORDER BY processed_at, pane_index", m)),
					e.db.Query(t, fmt.Sprintf("SELECT event_id, event_time, ingest_time FROM {ds}.events_speed WHERE event_time >= TIMESTAMP_MICROS(%d) AND event_time < TIMESTAMP_MICROS(%d) ORDER BY event_time", m, m+time.Minute.Microseconds())))
			}
		}
		for m := range got {
			if _, ok := perMinute[m]; !ok {
				t.Errorf("minute %v has a pane of %d events, and no current event", time.UnixMicro(m).UTC(), got[m])
			}
		}
	})
	t.Run("every current event is in its user's latest session", func(t *testing.T) {
		rows := e.db.Query(t, `SELECT user_id, events FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY processed_at DESC, session_start) AS latest
  FROM {ds}.sessions_speed) WHERE latest = 1`)
		got := map[string]int{}
		for _, r := range rows {
			user, n, _ := strings.Cut(r, "|")
			got[user], _ = strconv.Atoi(n)
		}
		if !maps.Equal(got, perUser) {
			t.Errorf("latest session per user counts %v events, want every current event: %v", got, perUser)
		}
	})
	speedMetrics := e.db.Query(t, fmt.Sprintf(speedMetricsSQL, from.UnixMicro()))
	t.Run("the batch job over the lake leaves the same events out of its metrics", func(t *testing.T) {
		c := e.runBatch(t, "batch-future")
		if c["future_events"] != 2 {
			t.Errorf("batch: future_events = %d, want the 2 events the stream left out", c["future_events"])
		}
		ids := e.db.Query(t, "SELECT event_id FROM {ds}.events_batch WHERE event_id IN ('far-2099', 'ahead-2h')")
		if want := []string{"ahead-2h", "far-2099"}; !slices.Equal(ids, want) {
			t.Errorf("events_batch holds %v of the far-future events, want %v", ids, want)
		}
		for _, table := range []string{"metrics_minute_batch WHERE window_start", "sessions_batch WHERE session_end"} {
			if n := e.db.One(t, fmt.Sprintf("SELECT COUNT(*) FROM {ds}.%s > TIMESTAMP_MICROS(%d)", table, now.UnixMicro())); n != "0" {
				t.Errorf("%s ahead of the wall clock: %s rows, want none", table, n)
			}
		}
		batchMetrics := e.db.Query(t, fmt.Sprintf(batchMetricsSQL, from.UnixMicro()))
		if diff := symmetricDiff(speedMetrics, batchMetrics); len(diff) > 0 {
			t.Errorf("final speed metrics and batch metrics over the lake differ in %d rows, first: %v", len(diff), diff[:min(3, len(diff))])
		}
	})
}
