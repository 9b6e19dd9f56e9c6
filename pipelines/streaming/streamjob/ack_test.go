package streamjob

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
	"github.com/railyard/railyard/transforms/lake"
)

// halfOf is one input of the acknowledgement join, for a test stream
// (Prism takes one TestStream a pipeline): a message archived, written,
// or dropped by dedup.
type halfOf struct {
	Archived *lake.Archived
	Written  string
	Dropped  *dedup.Dropped
}

func init() {
	register.Function4x0(splitHalves)
	register.Emitter1[lake.Archived]()
	register.Emitter1[dedup.Dropped]()
}

func splitHalves(h halfOf, archived func(lake.Archived), written func(string), dropped func(dedup.Dropped)) {
	switch {
	case h.Archived != nil:
		archived(*h.Archived)
	case h.Dropped != nil:
		dropped(*h.Dropped)
	default:
		written(h.Written)
	}
}

func TestAckIDs(t *testing.T) {
	id := func(s string) *string { return &s }
	speedEvent := func(messageID string) schemas.Event {
		return schemas.Event{EventID: "e1", MessageID: id(messageID), Layer: schemas.LayerSpeed}
	}
	recovered := speedEvent("m4")
	recovered.Layer = schemas.LayerRecovered
	halves := []halfOf{
		// m1 is delivered twice in one run; dedup keeps the first copy.
		{Archived: &lake.Archived{MessageID: "m1", AckID: "a1"}},
		{Archived: &lake.Archived{MessageID: "m1", AckID: "a1-again"}},
		{Dropped: &dedup.Dropped{Event: speedEvent("m1"), FirstMessageID: "m1"}},
		// m2 is a second message with m1's event: nothing more to write.
		{Archived: &lake.Archived{MessageID: "m2", AckID: "a2"}},
		{Dropped: &dedup.Dropped{Event: speedEvent("m2"), FirstMessageID: "m1"}},
		// m3 is a message whose event an earlier run wrote (recovered).
		{Archived: &lake.Archived{MessageID: "m3", AckID: "a3"}},
		{Dropped: &dedup.Dropped{Event: speedEvent("m3"), FirstMessageID: ""}},
		// A recovered event settles nothing.
		{Dropped: &dedup.Dropped{Event: recovered, FirstMessageID: "m1"}},
		{Archived: &lake.Archived{MessageID: "m4", AckID: "a4"}},
		// m5 is written, not yet archived: it waits.
		{Written: "m5"},
	}
	for _, tc := range []struct {
		name    string
		written bool
		want    []string
	}{
		{"a redelivery dropped by dedup waits for its first copy's write", false, []string{"a2", "a3"}},
		{"the first copy's write acknowledges both copies", true, []string{"a1", "a1-again", "a2", "a3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := teststream.NewConfig()
			in := halves
			if tc.written {
				in = append(in, halfOf{Written: "m1"})
			}
			for i, h := range in {
				if err := c.AddElements(time.UnixMilli(1_700_000_000_000).Add(time.Duration(i)*time.Second).UnixMilli(), h); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.AdvanceWatermarkToInfinity(); err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			archived, written, dropped := beam.ParDo3(s, splitHalves, teststream.Create(s, c))
			passert.EqualsList(s, ackIDs(s, archived, []beam.PCollection{written}, dropped), tc.want)
			if err := ptest.Run(p); err != nil {
				t.Fatalf("pipeline failed: %v", err)
			}
		})
	}
}
