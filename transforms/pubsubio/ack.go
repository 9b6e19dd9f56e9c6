package pubsubio

import (
	"context"
	"log/slog"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas/metricnames"
)

func init() {
	register.DoFn1x0[string](&ackFn{})
}

// Ack acknowledges Pub/Sub messages by ack id: the AckIDs of the Records
// Read emits, once the pipeline has made what each message must become
// durable. ackIDs is a PCollection<string>; empty ids are skipped. cfg
// names the subscription (Project and Subscription; the rest is
// ignored). It panics if cfg is invalid (see Config.Validate).
//
// Each bundle's ids are acknowledged when the bundle finishes, in
// requests of at most 1000 ids, each tried a few times with backoff while
// it fails transiently. An ack that still fails is logged and counted in
// pubsub_ack_failures and never fails the bundle: its messages come back
// after their deadline, and dedup removes them. Acked ids are counted in
// pubsub_acks.
func Ack(s beam.Scope, cfg Config, ackIDs beam.PCollection) {
	s = s.Scope("pubsubio.Ack")
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	beam.ParDo0(s, &ackFn{Cfg: cfg.withDefaults(), AckerID: newReaderID()}, ackIDs)
}

// ackFn collects a bundle's ack ids and acknowledges them in
// FinishBundle, and has the worker's leaseBook stop renewing their leases.
// It shares one Pub/Sub client per worker with the other instances of its
// Ack.
type ackFn struct {
	Cfg     Config
	AckerID string

	leases         *leaseBook
	r              *reader
	ids            []string
	acks, failures beam.Counter
}

func (fn *ackFn) Setup() {
	fn.leases = leaseBookFor(fn.Cfg.Subscription)
	r, created := fn.leases.readerFor("ack/"+fn.AckerID, fn.Cfg)
	if created {
		slog.Info("pubsub acker starting", "subscription", fn.Cfg.Subscription)
	}
	fn.r = r
	fn.acks = beam.NewCounter(metricnames.Namespace, metricnames.PubsubAcks)
	fn.failures = beam.NewCounter(metricnames.Namespace, metricnames.PubsubAckFailures)
}

func (fn *ackFn) StartBundle() {
	fn.ids = fn.ids[:0]
}

func (fn *ackFn) ProcessElement(ackID string) {
	if ackID != "" {
		fn.ids = append(fn.ids, ackID)
	}
}

func (fn *ackFn) FinishBundle(ctx context.Context) {
	if len(fn.ids) == 0 {
		return
	}
	acked, err := fn.r.acknowledge(ctx, fn.ids)
	// Acked, or failed to be after retries: either way the lease need not
	// be kept, and a failed one comes back sooner.
	fn.leases.forget(fn.ids)
	fn.acks.Inc(ctx, int64(acked))
	if failed := len(fn.ids) - acked; failed > 0 {
		fn.failures.Inc(ctx, int64(failed))
		slog.WarnContext(ctx, "pubsub ack failed; the messages will be redelivered", "subscription", fn.Cfg.Subscription,
			"messages", failed, "error", err)
	}
	fn.ids = fn.ids[:0]
}
