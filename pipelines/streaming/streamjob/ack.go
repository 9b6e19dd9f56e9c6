package streamjob

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/dedup"
	"github.com/railyard/railyard/transforms/lake"
)

// A Pub/Sub message is acknowledged only once everything it must become
// is durable: its raw bytes in the lake, and its event in events_speed,
// or its dead letter in dead_letter, or its event dropped as a
// duplicate. Until then it stays unacknowledged (the reader extends its
// deadline), so a job that dies at any moment gets it back when it
// restarts, and dedup and the serving views remove what was written
// twice. On Dataflow the native read acknowledges on commit instead, and
// Dataflow's commits are durable.

// signal is one of the two halves a message waits for, keyed by its
// message_id: archived (with the ack id to use) or settled.
type signal struct {
	AckID   string
	Settled bool
}

// settleHorizon is how long, in the job's event time, a message's halves
// wait for each other. A half still alone then is forgotten: the message
// is not acknowledged and Pub/Sub delivers it again.
const settleHorizon = 15 * time.Minute

func init() {
	register.Function1x2(archivedSignal)
	register.Function1x2(settledSignal)
	register.Function1x2(droppedSignal)
	register.DoFn3x0[string, signal, func(beam.EventTime, string, signal)](&stampNowFn{})
	register.DoFn7x1[context.Context, beam.EventTime, state.Provider, timers.Provider, string, signal, func(string), error](&settleFn{})
	beam.RegisterType(reflect.TypeOf((*pending)(nil)).Elem())
	register.Emitter3[beam.EventTime, string, signal]()
	register.Emitter1[string]()
}

// ackIDs joins the halves and returns the PCollection<string> of ack ids
// that may be acknowledged. archived is PCollection<lake.Archived>;
// written is the PCollection<string> message ids of the events and dead
// letters written; dropped the PCollection<dedup.Dropped> duplicates.
func ackIDs(s beam.Scope, archived beam.PCollection, written []beam.PCollection, dropped beam.PCollection) beam.PCollection {
	s = s.Scope("JoinDurable")
	halves := []beam.PCollection{
		beam.ParDo(s, archivedSignal, global(s, archived)),
		beam.ParDo(s, droppedSignal, global(s, dropped)),
	}
	for _, w := range written {
		halves = append(halves, beam.ParDo(s, settledSignal, global(s, w)))
	}
	now := beam.ParDo(s, &stampNowFn{}, beam.Flatten(s, halves...))
	return beam.ParDo(s, &settleFn{
		Pending: state.MakeValueState[pending]("pending"),
		Expiry:  timers.InEventTime("expiry"),
	}, now)
}

func global(s beam.Scope, c beam.PCollection) beam.PCollection {
	return beam.WindowInto(s, window.NewGlobalWindows(), c)
}

func archivedSignal(a lake.Archived) (string, signal) {
	return a.MessageID, signal{AckID: a.AckID}
}

func settledSignal(messageID string) (string, signal) {
	return messageID, signal{Settled: true}
}

// droppedSignal settles the message of a dropped duplicate: it has
// nothing more to become. Not when it is a redelivery of the message
// whose first copy dedup kept: that copy's event may not be written yet,
// and its write settles the message (and both copies' ack ids, held
// under the one message_id). A recovered event (state read back from
// events_speed) has no message of this run to settle: its signal waits
// alone and is forgotten.
func droppedSignal(d dedup.Dropped) (string, signal) {
	ev := d.Event
	if ev.MessageID == nil || ev.Layer == schemas.LayerRecovered || *ev.MessageID == d.FirstMessageID {
		return "", signal{}
	}
	return *ev.MessageID, signal{Settled: true}
}

// stampNowFn stamps each half with the wall clock, so its wait is timed
// from when it happened, whatever the event time of the event it is
// about (a late event's is hours old). Halves without a message id (bare
// events, recovered ones) are left out.
type stampNowFn struct{}

func (fn *stampNowFn) ProcessElement(messageID string, sig signal, emit func(beam.EventTime, string, signal)) {
	if messageID == "" {
		return
	}
	emit(mtime.Now(), messageID, sig)
}

// pending is what settleFn keeps of a message: one state cell, so a
// signal costs one read and one write of state.
type pending struct {
	AckIDs  []string // archived, not yet emitted
	Settled bool
}

// settleFn holds a message's ack ids until it is settled, then emits
// them; every ack id archived later is emitted at once. One timer family
// (Prism v2.77.0 hung on two) forgets the message settleHorizon after its
// latest half.
type settleFn struct {
	Pending state.Value[pending]
	Expiry  timers.EventTime
}

func (fn *settleFn) ProcessElement(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, messageID string, sig signal, emit func(string)) error {
	p, _, err := fn.Pending.Read(sp)
	if err != nil {
		return fmt.Errorf("ack: read state of message %s: %w", messageID, err)
	}
	if sig.AckID != "" {
		p.AckIDs = append(p.AckIDs, sig.AckID)
	}
	p.Settled = p.Settled || sig.Settled
	if p.Settled {
		for _, id := range p.AckIDs {
			emit(id)
		}
		p.AckIDs = nil
	}
	if err := fn.Pending.Write(sp, p); err != nil {
		return fmt.Errorf("ack: write state of message %s: %w", messageID, err)
	}
	fn.Expiry.Set(tp, min(ts.Add(settleHorizon), mtime.EndOfGlobalWindowTime).ToTime(), timers.WithNoOutputTimestamp())
	return nil
}

// OnTimer forgets the message.
func (fn *settleFn) OnTimer(ctx context.Context, sp state.Provider, _ timers.Provider, messageID string, _ timers.Context, _ func(string)) error {
	if err := fn.Pending.Clear(sp); err != nil {
		return fmt.Errorf("ack: clear state of message %s: %w", messageID, err)
	}
	return nil
}
