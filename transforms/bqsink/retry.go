package bqsink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// retryPolicy bounds the retries of one call: about a minute in all.
type retryPolicy struct {
	attempts int
	backoff  gax.Backoff
	// outage paces the retries that last as long as BigQuery is
	// unavailable (the streaming sink's); zero elsewhere.
	outage gax.Backoff
}

func defaultRetry() retryPolicy {
	return retryPolicy{attempts: 6, backoff: gax.Backoff{Initial: 500 * time.Millisecond, Max: 16 * time.Second, Multiplier: 2}}
}

// do calls f until it succeeds, fails with an error that is not
// transient, or has been tried p.attempts times. onRetry runs before each
// retry.
func (p retryPolicy) do(ctx context.Context, onRetry func(error), f func() error) error {
	b := p.backoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !transient(err) || attempt >= p.attempts {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		if serr := gax.Sleep(ctx, b.Pause()); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// transient reports whether err is worth retrying: BigQuery's
// backend, rate-limit and internal errors, concurrent DML conflicts, and
// the gRPC codes the Storage Write API documents as retryable.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.DeadlineExceeded:
			return true
		}
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		switch gerr.Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		for _, e := range gerr.Errors {
			if transientReason(e.Reason) {
				return true
			}
		}
	}
	var berr *bigquery.Error
	if errors.As(err, &berr) && transientReason(berr.Reason) {
		return true
	}
	var cerr *commitError
	if errors.As(err, &cerr) && cerr.transient() {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "Could not serialize access to table") ||
		strings.Contains(msg, "Too many DML statements outstanding") ||
		// The emulator's SQLite, when a gRPC write meets a REST job.
		strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "database table is locked")
}

func transientReason(reason string) bool {
	switch reason {
	case "backendError", "rateLimitExceeded", "internalError", "jobRateLimitExceeded", "jobBackendError", "jobInternalError":
		return true
	}
	return false
}
