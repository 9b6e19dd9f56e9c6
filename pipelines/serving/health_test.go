package serving

import (
	"math"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/schemas"
)

// TestPipelineHealth seeds both layers relative to the wall clock (the view
// reads CURRENT_TIMESTAMP()) and checks every row of pipeline_health.
func TestPipelineHealth(t *testing.T) {
	e := newEnv(t, "railyard")
	now := time.Now().UTC().Truncate(time.Microsecond)
	today := now.Truncate(24 * time.Hour)
	ev := func(layer, id string, eventTime, ingest time.Time) map[string]bigquery.Value {
		return map[string]bigquery.Value{"event_id": id, "event_type": "page.view", "event_time": eventTime,
			"source": "shop", "ingest_time": ingest, "layer": layer}
	}
	speed := []map[string]bigquery.Value{
		ev("speed", "s1", now.Add(-10*time.Minute), now.Add(-9*time.Minute)),
		ev("speed", "s2", now.Add(-20*time.Minute), now.Add(-19*time.Minute)),
		ev("speed", "s2", now.Add(-20*time.Minute), now.Add(-18*time.Minute)), // a redelivery: a row all the same
		ev("speed", "s3", now.Add(2*time.Hour), now.Add(-5*time.Minute)),      // a producer clock in the future
		ev("speed", "s4", now.Add(-8*24*time.Hour), now.Add(-time.Minute)),    // older than the 7 days read
	}
	batch := []map[string]bigquery.Value{
		ev("batch", "b1", today.Add(-12*time.Hour), today.Add(-12*time.Hour+time.Second)),
		ev("batch", "b2", today.Add(-time.Hour), today.Add(-time.Hour+time.Second)),
	}
	e.insert(schemas.TableEventsSpeed, speed...)
	e.insert(schemas.TableEventsBatch, batch...)
	// The speed layer's bad message twice: Pub/Sub delivered it again
	// after a crash, and it counts once.
	e.exec(`INSERT INTO {dead_letter} (failed_at, layer, stage, reason, error, payload, publish_time, message_id)
VALUES (@now, 'speed', 'decode', 'invalid_json', 'x', FROM_BASE64('e30='), @published, 'm-bad'),
       (@now, 'speed', 'decode', 'invalid_json', 'x', FROM_BASE64('e30='), @published, 'm-bad'),
       (@failed, 'batch', 'decode', 'missing_event_id', 'x', FROM_BASE64('e30='), NULL, NULL)`,
		bigquery.QueryParameter{Name: "now", Value: now},
		bigquery.QueryParameter{Name: "published", Value: now.Add(-9 * time.Minute)},
		bigquery.QueryParameter{Name: "failed", Value: now.Add(-30 * time.Minute)})

	// Two runs with a hole between: the watermark stops at the hole.
	finished := now.Add(-2 * time.Hour).Truncate(time.Second)
	for _, run := range []struct {
		id   string
		days []time.Time
	}{
		{"run-a", []time.Time{today.AddDate(0, 0, -5), today.AddDate(0, 0, -4)}},
		{"run-b", []time.Time{today.AddDate(0, 0, -2)}},
	} {
		var names []string
		for _, d := range run.days {
			names = append(names, d.Format(schemas.DayLayout))
		}
		if err := RecordBatchRun(e.ctx, e.client, e.dataset, run.id, names, finished); err != nil {
			t.Fatal(err)
		}
	}
	if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
		t.Fatal(err)
	}

	// What each layer received per hour.
	type counts struct{ rows, dead int64 }
	want := map[string]map[time.Time]counts{"speed": {}, "batch": {}}
	for _, r := range speed[:4] {
		h := r["ingest_time"].(time.Time).Truncate(time.Hour)
		c := want["speed"][h]
		c.rows++
		want["speed"][h] = c
	}
	for _, r := range batch {
		h := r["ingest_time"].(time.Time).Truncate(time.Hour)
		c := want["batch"][h]
		c.rows++
		want["batch"][h] = c
	}
	for layer, at := range map[string]time.Time{"speed": now.Add(-9 * time.Minute), "batch": now.Add(-30 * time.Minute)} {
		c := want[layer][at.Truncate(time.Hour)]
		c.dead++
		want[layer][at.Truncate(time.Hour)] = c
	}

	if r := e.rows(`SELECT COUNT(*) AS n, COUNT(DISTINCT record_key) AS records FROM {dead_letters}`)[0]; toInt(r["n"]) != 3 || toInt(r["records"]) != 2 {
		t.Errorf("dead_letters: %v rows of %v distinct record_key, want 3 rows of 2 bad records", r["n"], r["records"])
	}

	rows := e.rows(`SELECT * FROM {pipeline_health} ORDER BY layer, hour_start`)
	if len(rows) != 2*48 {
		t.Fatalf("pipeline_health has %d rows, want 48 hours × 2 layers", len(rows))
	}
	watermark := today.AddDate(0, 0, -3)
	seen := map[string]map[time.Time]bool{"speed": {}, "batch": {}}
	for _, r := range rows {
		layer := r["layer"].(string)
		hour := r["hour_start"].(time.Time)
		checked := r["checked_at"].(time.Time)
		if first := checked.Truncate(time.Hour).Add(-47 * time.Hour); hour.Before(first) || hour.After(checked) {
			t.Errorf("%s hour %v is outside the 48 hours before %v", layer, hour, checked)
		}
		seen[layer][hour] = true
		c := want[layer][hour]
		if toInt(r["event_rows"]) != c.rows || toInt(r["dead_letters"]) != c.dead {
			t.Errorf("%s %v: event_rows %v, dead_letters %v; want %d, %d", layer, hour, r["event_rows"], r["dead_letters"], c.rows, c.dead)
		}
		if c.rows+c.dead == 0 {
			if r["dead_letter_rate"] != nil {
				t.Errorf("%s %v: dead_letter_rate %v for an empty hour, want NULL", layer, hour, r["dead_letter_rate"])
			}
		} else if rate := float64(c.dead) / float64(c.rows+c.dead); math.Abs(toFloat(r["dead_letter_rate"])-rate) > 1e-9 {
			t.Errorf("%s %v: dead_letter_rate %v, want %v", layer, hour, r["dead_letter_rate"], rate)
		}

		newestEvent, newestIngest := now.Add(-10*time.Minute), now.Add(-5*time.Minute)
		if layer == "batch" {
			newestEvent, newestIngest = today.Add(-time.Hour), today.Add(-time.Hour+time.Second)
		}
		checkTime(t, layer+" newest_event_time", r["newest_event_time"], newestEvent)
		checkTime(t, layer+" newest_ingest_time", r["newest_ingest_time"], newestIngest)
		checkSeconds(t, layer+" event_freshness_seconds", r["event_freshness_seconds"], checked.Sub(newestEvent))
		checkSeconds(t, layer+" ingest_freshness_seconds", r["ingest_freshness_seconds"], checked.Sub(newestIngest))

		if layer == "speed" {
			for _, col := range []string{"batch_complete_until", "batch_lag_seconds", "batch_gap_days", "batch_last_finished_at"} {
				if r[col] != nil {
					t.Errorf("speed row: %s = %v, want NULL", col, r[col])
				}
			}
			continue
		}
		checkTime(t, "batch_complete_until", r["batch_complete_until"], watermark)
		checkSeconds(t, "batch_lag_seconds", r["batch_lag_seconds"], checked.Sub(watermark))
		if toInt(r["batch_gap_days"]) != 1 {
			t.Errorf("batch_gap_days = %v, want 1 (the day between the runs)", r["batch_gap_days"])
		}
		checkTime(t, "batch_last_finished_at", r["batch_last_finished_at"], finished)
	}
	for layer, hours := range want {
		for h := range hours {
			if !seen[layer][h] {
				t.Errorf("%s: no row for hour %v, which received records", layer, h)
			}
		}
	}
}

func checkTime(t *testing.T, what string, got bigquery.Value, want time.Time) {
	t.Helper()
	if g, ok := got.(time.Time); !ok || !g.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkSeconds allows one second: BigQuery truncates TIMESTAMP_DIFF, and
// the emulator may read the clock more than once per query.
func checkSeconds(t *testing.T, what string, got bigquery.Value, want time.Duration) {
	t.Helper()
	if g, ok := got.(int64); !ok || math.Abs(float64(g)-math.Floor(want.Seconds())) > 1 {
		t.Errorf("%s = %v, want %d", what, got, int64(want.Seconds()))
	}
}
