package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// ArchiveTime returns the instant whose UTC date and hour name the lake
// folder a record is archived in: its event time when the record is a
// JSON object (of at most 1 MiB) whose event_time member is valid under
// the contract, else its publish time. The rest of the record may be
// invalid: a record without source but with a good event_time lands in
// its event's hour. Times are in microseconds.
//
// The streaming job's archive and the sample lake both place records with
// it, so that the batch job's --from/--to prefixes read exactly the
// records of those event days.
func ArchiveTime(data []byte, publishTime int64) int64 {
	if len(data) > MaxRecordBytes {
		return publishTime
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return publishTime
	}
	raw, ok := members["event_time"]
	if !ok {
		return publishTime
	}
	probe := append([]byte(`{"event_id":"x","event_type":"x","source":"x","event_time":`), raw...)
	ev, err := ParseEvent(append(probe, '}'))
	if err != nil {
		return publishTime
	}
	return ev.EventTime
}

// LakeHourPath returns the lake folder of the UTC hour of t (microseconds),
// relative to the lake root and ending in a slash:
// raw/dt=YYYY-MM-DD/hr=HH/.
func LakeHourPath(t int64) string {
	u := time.UnixMicro(t).UTC()
	return fmt.Sprintf("raw/dt=%s/hr=%02d/", u.Format(time.DateOnly), u.Hour())
}
