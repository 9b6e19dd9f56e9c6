// Package decode turns raw records into events in canonical form under the
// event contract v1, and every record that breaks it into a dead letter
// that keeps its raw bytes. Both jobs run it unchanged.
package decode

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// Config configures Events.
type Config struct {
	// Layer is written on every row: schemas.LayerBatch or schemas.LayerSpeed.
	Layer string
	// MaxRecordBytes, when above 0, tightens the contract's record size
	// limit (schemas.MaxRecordBytes): a larger record is a too_large dead
	// letter. 0 keeps the contract's limit. Tests use it to produce dead
	// letters a later, normal decode lets pass (a dead-letter replay).
	MaxRecordBytes int
}

func (c Config) validate() error {
	if c.Layer != schemas.LayerBatch && c.Layer != schemas.LayerSpeed {
		return fmt.Errorf("decode: Layer must be %q or %q, got %q", schemas.LayerBatch, schemas.LayerSpeed, c.Layer)
	}
	if c.MaxRecordBytes < 0 || c.MaxRecordBytes > schemas.MaxRecordBytes {
		return fmt.Errorf("decode: MaxRecordBytes must be between 0 and the contract's %d, got %d", schemas.MaxRecordBytes, c.MaxRecordBytes)
	}
	return nil
}

// Events decodes records.
//
// PCollection<schemas.Record> → PCollection<schemas.Event> (each
// timestamped with its event time) and PCollection<schemas.DeadLetter>.
func Events(s beam.Scope, records beam.PCollection, cfg Config) (events, deadLetters beam.PCollection) {
	s = s.Scope("decode.Events")
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	return beam.ParDo2(s, &decodeFn{Layer: cfg.Layer, MaxRecordBytes: cfg.MaxRecordBytes}, records)
}

type decodeFn struct {
	Layer          string
	MaxRecordBytes int

	recordsIn, valid, deadLetters beam.Counter
	lag                           beam.Distribution
}

func (fn *decodeFn) Setup() {
	// Reconciliation reads them: records_in = events_valid + dead_letters
	// (and, after dedup, events_valid = unique events + duplicates).
	fn.recordsIn = beam.NewCounter(metricnames.Namespace, metricnames.RecordsIn)
	fn.valid = beam.NewCounter(metricnames.Namespace, metricnames.EventsValid)
	fn.deadLetters = beam.NewCounter(metricnames.Namespace, metricnames.DeadLetters)
	fn.lag = beam.NewDistribution(metricnames.Namespace, metricnames.EventLagMs)
}

func (fn *decodeFn) ProcessElement(ctx context.Context, rec schemas.Record, emitEvent func(beam.EventTime, schemas.Event), emitDead func(schemas.DeadLetter)) {
	fn.recordsIn.Inc(ctx, 1)
	ev, err := schemas.ParseEvent(rec.Data)
	if fn.MaxRecordBytes > 0 && len(rec.Data) > fn.MaxRecordBytes && err == nil {
		err = &schemas.ContractError{Reason: schemas.ReasonTooLarge, Msg: fmt.Sprintf("record is %d bytes, the limit is %d", len(rec.Data), fn.MaxRecordBytes)}
	}
	if err != nil {
		dl := schemas.NewDeadLetter(rec, fn.Layer, schemas.StageDecode, err, time.Now().UnixMicro())
		fn.deadLetters.Inc(ctx, 1)
		beam.NewCounter(metricnames.Namespace, metricnames.DeadLetter(dl.Reason)).Inc(ctx, 1)
		emitDead(dl)
		return
	}
	ev.IngestTime = rec.IngestTime
	ev.Layer = fn.Layer
	if rec.MessageID != "" {
		id := rec.MessageID
		ev.MessageID = &id
	}
	if rec.SourceURI != "" {
		uri := rec.SourceURI
		ev.SourceURI = &uri
	}
	fn.valid.Inc(ctx, 1)
	if rec.IngestTime != 0 {
		fn.lag.Update(ctx, (rec.IngestTime-ev.EventTime)/1000)
	}
	emitEvent(mtime.FromMilliseconds(ev.EventTime/1000), ev)
}

func init() {
	register.DoFn4x0[context.Context, schemas.Record, func(beam.EventTime, schemas.Event), func(schemas.DeadLetter)](&decodeFn{})
	register.Emitter2[beam.EventTime, schemas.Event]()
	register.Emitter1[schemas.DeadLetter]()
}
