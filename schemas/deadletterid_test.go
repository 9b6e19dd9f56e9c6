package schemas

import (
	"strings"
	"testing"
)

func TestDeadLetterID(t *testing.T) {
	uri, id := "gs://lake/raw/dt=2026-11-01/hr=10/a.jsonl.gz#L3", "m1"
	base := DeadLetter{FailedAt: 1, Layer: LayerBatch, Stage: StageDecode, Reason: ReasonMissingSource, Error: "x", Payload: []byte(`{"a":1}`), SourceURI: &uri}
	t.Run("failed_at and error do not change the id", func(t *testing.T) {
		again := base
		again.FailedAt, again.Error = 2, "y"
		if DeadLetterID(base) != DeadLetterID(again) {
			t.Error("a record dead-lettered again for the same reason got another id")
		}
	})
	t.Run("every identifying column changes the id", func(t *testing.T) {
		for name, change := range map[string]func(*DeadLetter){
			"layer":      func(d *DeadLetter) { d.Layer = LayerSpeed },
			"stage":      func(d *DeadLetter) { d.Stage = "write_events_batch" },
			"reason":     func(d *DeadLetter) { d.Reason = ReasonBadSource },
			"source_uri": func(d *DeadLetter) { d.SourceURI = nil },
			"message_id": func(d *DeadLetter) { d.MessageID = &id },
			"payload":    func(d *DeadLetter) { d.Payload = []byte(`{"a":2}`) },
		} {
			d := base
			change(&d)
			if DeadLetterID(d) == DeadLetterID(base) {
				t.Errorf("changing %s kept the id", name)
			}
		}
	})
	t.Run("the dead_letters view computes the id as DeadLetterIDSQL does", func(t *testing.T) {
		v, err := LookupView("dead_letters")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(v.query, DeadLetterIDSQL("dl")+" AS dead_letter_id") {
			t.Errorf("the view's dead_letter_id is not DeadLetterIDSQL(\"dl\"):\n%s", DeadLetterIDSQL("dl"))
		}
	})
}
