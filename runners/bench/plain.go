package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/sessions"
)

// plainLoop is the baseline: one goroutine reads the files, and applies
// the contract, the dedup rule (first by ingest time, then message id)
// and the same aggregations with maps.
func plainLoop(glob string) (result, error) {
	paths, err := filepath.Glob(glob)
	if err != nil {
		return result{}, err
	}
	var r result
	firsts := map[string]schemas.Event{}
	for _, path := range paths {
		if err := readFile(path, &r, firsts); err != nil {
			return result{}, err
		}
	}
	r.Unique = int64(len(firsts))
	r.Metrics = int64(countMetricRows(firsts))
	r.Sessions = int64(countSessions(firsts, sessions.DefaultGap))
	return r, nil
}

func readFile(path string, r *result, firsts map[string]schemas.Event) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := openLakeFile(f)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), schemas.MaxDeadLetterPayload)
	for n := 1; sc.Scan(); n++ {
		r.Records++
		rec, err := schemas.ParseLakeLine(sc.Bytes(), fmt.Sprintf("%s#L%d", path, n), st.ModTime().UnixMicro())
		if err != nil {
			r.Dead++
			continue
		}
		ev, err := schemas.ParseEvent(rec.Data)
		if err != nil {
			r.Dead++
			continue
		}
		ev.IngestTime = rec.IngestTime
		id := rec.MessageID
		ev.MessageID = &id
		if old, ok := firsts[ev.EventID]; !ok || ev.IngestTime < old.IngestTime ||
			(ev.IngestTime == old.IngestTime && *ev.MessageID < *old.MessageID) {
			firsts[ev.EventID] = ev
		}
	}
	return sc.Err()
}

type metricKey struct {
	minute                               int64
	eventType, source, platform, country string
	hasPlatform, hasCountry              bool
}

type metricAcc struct {
	events int64
	users  map[string]struct{}
	sum    float64
}

func countMetricRows(events map[string]schemas.Event) int {
	rows := map[metricKey]*metricAcc{}
	for _, ev := range events {
		k := metricKey{minute: ev.EventTime / int64(time.Minute/time.Microsecond), eventType: ev.EventType, source: ev.Source}
		if ev.Platform != nil {
			k.platform, k.hasPlatform = *ev.Platform, true
		}
		if ev.Country != nil {
			k.country, k.hasCountry = *ev.Country, true
		}
		acc := rows[k]
		if acc == nil {
			acc = &metricAcc{users: map[string]struct{}{}}
			rows[k] = acc
		}
		acc.events++
		if ev.UserID != nil {
			acc.users[*ev.UserID] = struct{}{}
		}
		if ev.Value != nil {
			acc.sum += *ev.Value
		}
	}
	return len(rows)
}

// countSessions splits each user's events where the pause reaches the
// gap, as merging session windows of [t, t+gap) do, and at midnight UTC
// (schemas.SessionDay), as both jobs do.
func countSessions(events map[string]schemas.Event, gap time.Duration) int {
	type userDay struct {
		user string
		day  int64
	}
	perUser := map[userDay][]int64{}
	for _, ev := range events {
		if ev.UserID != nil {
			k := userDay{*ev.UserID, schemas.SessionDay(ev.EventTime)}
			perUser[k] = append(perUser[k], ev.EventTime/1000) // Beam timestamps are milliseconds
		}
	}
	n := 0
	for _, times := range perUser {
		slices.Sort(times)
		n++
		for i := 1; i < len(times); i++ {
			if times[i]-times[i-1] >= gap.Milliseconds() {
				n++
			}
		}
	}
	return n
}
