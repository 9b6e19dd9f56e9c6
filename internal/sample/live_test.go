package sample

import (
	"testing"
	"time"

	"github.com/railyard/railyard/schemas"
)

func TestLive(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cfg := LiveConfig{Seed: 7, Start: start, Rate: 100}
	const n = 6000
	var last int64
	kinds := map[Kind]int{}
	revised, hoursLate := 0, 0
	for m := range Live(cfg, n) {
		kinds[m.Kind]++
		if m.PublishTime < last {
			t.Fatalf("publish times go back: %d after %d", m.PublishTime, last)
		}
		last = m.PublishTime
		if m.Kind != KindEvent {
			continue
		}
		ev, err := schemas.ParseEvent(m.Data)
		if err != nil {
			t.Fatalf("event %s does not parse: %v", m.EventID, err)
		}
		switch lag := time.Duration(m.PublishTime-ev.EventTime) * time.Microsecond; {
		case lag >= time.Hour:
			hoursLate++
		case lag >= cfg.withDefaults().LateMin:
			revised++
		case lag < 0 || lag > 3*time.Second+time.Millisecond: // event times are whole milliseconds
			t.Errorf("event %s is published %v after its event time", m.EventID, lag)
		}
	}
	span := time.Duration(last-start.UnixMicro()) * time.Microsecond
	if span < 50*time.Second || span > 70*time.Second {
		t.Errorf("%d messages at 100/s span %v of publish time, want about 60s", n, span)
	}
	if kinds[KindEvent] < n*9/10 || kinds[KindDuplicate] == 0 || kinds[KindBad] == 0 {
		t.Errorf("kinds = %v, want mostly events, some duplicates and bad records", kinds)
	}
	if revised < 60 || revised > 180 {
		t.Errorf("%d events published 65-85 s late, want about 2%% of %d", revised, kinds[KindEvent])
	}
	if hoursLate == 0 {
		t.Error("no event is published hours after its event time")
	}
	if err := (LiveConfig{Rate: 10}).Validate(); err == nil {
		t.Error("a LiveConfig without Start is valid")
	}
}
