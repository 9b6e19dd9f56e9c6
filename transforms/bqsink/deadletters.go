package bqsink

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// deadLetters turns rows that could not be written into dead letters of
// one layer and counts them (write_failed).
type deadLetters struct {
	table  string
	layer  string
	failed beam.Counter
}

// newDeadLetters makes the batch layer's dead letters of table's rows;
// set layer for another layer's.
func newDeadLetters(t schemas.Table) deadLetters {
	return deadLetters{table: t.Name, layer: schemas.LayerBatch, failed: beam.NewCounter(metricnames.Namespace, metricnames.WriteFailed)}
}

// ofRow is the dead letter of a Go row that was not sent.
func (d deadLetters) ofRow(ctx context.Context, enc *Encoder, row any, msg string) schemas.DeadLetter {
	payload, err := enc.JSON(row)
	return d.make(ctx, payload, err, enc.String(row, "source_uri"), enc.String(row, "message_id"), msg)
}

// ofData is the dead letter of an encoded row BigQuery rejected.
func (d deadLetters) ofData(ctx context.Context, enc *Encoder, data []byte, msg string) schemas.DeadLetter {
	payload, err := enc.DecodeJSON(data)
	if err != nil {
		payload = data // the encoded row: still the row's bytes
	}
	return d.make(ctx, payload, err, enc.DecodeString(data, "source_uri"), enc.DecodeString(data, "message_id"), msg)
}

func (d deadLetters) make(ctx context.Context, payload []byte, payloadErr error, sourceURI, messageID *string, msg string) schemas.DeadLetter {
	d.failed.Inc(ctx, 1)
	text := fmt.Sprintf("BigQuery rejected the row for %s: %s", d.table, msg)
	if payloadErr != nil {
		text += fmt.Sprintf(" (payload is the encoded row: %v)", payloadErr)
	}
	return schemas.DeadLetter{
		// A write failure happens now: failed_at is processing time by
		// definition, not an event time.
		FailedAt:  time.Now().UnixMicro(),
		Layer:     d.layer,
		Stage:     "write_" + d.table,
		Reason:    schemas.ReasonWriteFailed,
		Error:     text,
		Payload:   payload,
		SourceURI: sourceURI,
		MessageID: messageID,
	}
}
