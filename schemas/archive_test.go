package schemas

import (
	"strings"
	"testing"
	"time"
)

func TestArchiveTime(t *testing.T) {
	const pub = int64(1793600000000000)
	at := time.Date(2026, 11, 1, 22, 15, 0, 0, time.UTC).UnixMicro()
	for _, tc := range []struct {
		name string
		data string
		want int64
	}{
		{"uses the event time of a valid event", `{"event_id":"a","event_type":"x","event_time":"2026-11-01T22:15:00Z","source":"s"}`, at},
		{"uses the event time of a record that breaks another rule", `{"event_time":"2026-11-02T00:15:00+02:00"}`, at},
		{"uses epoch milliseconds", `{"event_time":1793571300000}`, at},
		{"uses the publish time for invalid JSON", `{"event_time":"2026-11-01T22:15:00Z"`, pub},
		{"uses the publish time for an event time out of range", `{"event_time":"1999-12-31T23:59:59Z"}`, pub},
		{"uses the publish time without an event time", `{"event_id":"a"}`, pub},
		{"uses the publish time for an array", `[{"event_time":"2026-11-01T22:15:00Z"}]`, pub},
		{"uses the publish time for a record over 1 MiB", `{"event_time":"2026-11-01T22:15:00Z","p":"` + strings.Repeat("x", MaxRecordBytes) + `"}`, pub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ArchiveTime([]byte(tc.data), pub); got != tc.want {
				t.Errorf("ArchiveTime = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestLakeHourPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"names the UTC date and hour", time.Date(2026, 11, 1, 22, 15, 30, 0, time.UTC), "raw/dt=2026-11-01/hr=22/"},
		{"converts another zone to UTC", time.Date(2026, 11, 2, 0, 15, 0, 0, time.FixedZone("CEST", 2*3600)), "raw/dt=2026-11-01/hr=22/"},
		{"pads a single-digit hour", time.Date(2026, 1, 9, 3, 0, 0, 0, time.UTC), "raw/dt=2026-01-09/hr=03/"},
		{"puts the last microsecond of a day in that day", time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC), "raw/dt=2026-12-31/hr=23/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LakeHourPath(tc.at.UnixMicro()); got != tc.want {
				t.Errorf("LakeHourPath = %q, want %q", got, tc.want)
			}
		})
	}
}
