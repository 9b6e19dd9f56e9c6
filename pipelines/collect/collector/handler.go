package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/railyard/railyard/schemas"
)

// Attributes the edge stamps on each message it publishes. The message
// data is the record's bytes exactly as received.
const (
	// AttrReceivedAt is when the edge received the request, RFC 3339 UTC.
	AttrReceivedAt = "railyard_received_at"
	// AttrEventTime is the record's event time, RFC 3339 UTC with
	// microseconds, on valid records only: the streaming job's
	// --timestamp_attribute can take it.
	AttrEventTime = "railyard_event_time"
	// AttrSource is the record's source (trimmed), on valid records.
	AttrSource = "railyard_source"
	// AttrEdgeReason marks a record the edge rejected, with the event
	// contract's reason code; the streaming job dead-letters it.
	AttrEdgeReason = "railyard_edge_reason"
	// AttrEdgeCut marks a rejected record published cut to its first
	// MaxPublishedRejected bytes, with the record's size in bytes.
	AttrEdgeCut = "railyard_edge_cut"
	// AttrAPIKey is the name (never the key) of the API key that sent
	// the record, with --auth=api_key.
	AttrAPIKey = "railyard_api_key"
	// AttrClientIP is the client's address, only with
	// --client_ip_attribute.
	AttrClientIP = "railyard_client_ip"
)

// MaxPublishedRejected is the most of a rejected record the edge
// publishes: a record may be larger than a Pub/Sub message may be (10 MB;
// the emulator's gRPC server takes 4 MiB). A too_large record is cut to
// it, marked AttrEdgeCut; dead_letter keeps at most
// schemas.MaxDeadLetterPayload (4 MiB) of a record anyway.
const MaxPublishedRejected = 3 << 20

// Record outcomes in a response and in MetricRecords.
const (
	statusAccepted = "accepted"
	statusRejected = "rejected"
	statusFailed   = "failed"
)

// Reasons of failed records.
const (
	failFlowControl = "flow_control"
	failUnavailable = "unavailable"
	failTimeout     = "timeout"
)

// Retry-After of a 429 (the publisher is full: it drains in moments)
// and of a 503 (Pub/Sub could not be reached).
const (
	retryAfterFull        = "1"
	retryAfterUnavailable = "5"
)

// RecordStatus is what became of one record of a request.
type RecordStatus struct {
	// Index is the record's position in the request, from 0 (for NDJSON,
	// among the non-blank lines).
	Index int `json:"index"`
	// Status is accepted (published and acknowledged by Pub/Sub),
	// rejected (it breaks the event contract: Reason is the contract's
	// reason code) or failed (not published: retry it).
	Status string `json:"status"`
	// Reason is the contract's reason code of a rejected record, or
	// flow_control, unavailable or timeout for a failed one.
	Reason string `json:"reason,omitempty"`
	// Message says what is wrong, for a developer.
	Message string `json:"message,omitempty"`
}

// Response is the body of every answer to POST /v1/events that got as far
// as judging records (200, 429, 503).
type Response struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
	// RejectedPublished says whether rejected records were published
	// (marked rejected) to land in dead_letter with their raw bytes.
	RejectedPublished bool `json:"rejected_published"`
	// BlankLines is how many blank lines of an NDJSON body were skipped.
	BlankLines int            `json:"blank_lines,omitempty"`
	Records    []RecordStatus `json:"records"`
}

// ErrorResponse is the body of an answer that refused the whole request
// (400, 401, 403, 405, 408, 413, 415): nothing of it was published.
type ErrorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer put back in the pool.
const maxPooledBody = 1 << 20

func (c *Collector) serveEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := c.handleEvents(w, r, start)
	label := strconv.Itoa(code)
	c.m.requests.WithLabelValues(label).Inc()
	c.m.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
}

// handleEvents answers one request and returns its status code.
func (c *Collector) handleEvents(w http.ResponseWriter, r *http.Request, received time.Time) int {
	if !c.cors(w, r) {
		return c.refuse(w, refuse(http.StatusForbidden, codeOriginNotAllowed, "origin %q is not allowed: the operator lists the allowed origins in --allowed_origins", r.Header.Get("Origin")))
	}
	if r.Method == http.MethodOptions {
		return c.preflight(w, r)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		return c.refuse(w, refuse(http.StatusMethodNotAllowed, codeMethod, "%s: send events with POST", r.Method))
	}
	if c.draining.Load() {
		w.Header().Set("Retry-After", retryAfterUnavailable)
		return c.refuse(w, refuse(http.StatusServiceUnavailable, codeShuttingDown, "the edge is shutting down: retry"))
	}
	var key *storedKey
	if c.cfg.Auth == AuthAPIKey {
		presented := presentedKey(r)
		if presented == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="railyard"`)
			return c.refuse(w, refuse(http.StatusUnauthorized, codeNoKey, "no API key: send it in the %s header (or Authorization: Bearer KEY)", HeaderAPIKey))
		}
		if key = c.keys.lookup(presented); key == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="railyard", error="invalid_token"`)
			return c.refuse(w, refuse(http.StatusUnauthorized, codeUnknownKey, "the API key is not one this edge knows: check the key, or ask the operator whether it was revoked"))
		}
	}
	format, rerr := bodyFormat(r.Header.Get("Content-Type"))
	if rerr != nil {
		return c.refuse(w, rerr)
	}
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	pooled := true
	defer func() {
		if pooled && buf.Cap() <= maxPooledBody {
			bodies.Put(buf)
		}
	}()
	l := limits{maxBody: c.cfg.MaxBodyBytes, maxDecompressed: c.cfg.MaxDecompressedBytes, maxRecords: c.cfg.MaxRecords}
	if rerr := readBody(buf, r.Body, r.ContentLength, r.Header.Get("Content-Encoding"), l); rerr != nil {
		if rerr.status == http.StatusRequestTimeout || rerr.status == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		return c.refuse(w, rerr)
	}
	records, blank, rerr := splitRecords(buf.Bytes(), format, l.maxRecords)
	if rerr != nil {
		return c.refuse(w, rerr)
	}
	c.m.perRequest.Observe(float64(len(records)))
	if blank > 0 {
		c.m.blankSkipped.Add(float64(blank))
	}

	resp := Response{RejectedPublished: c.cfg.PublishRejected, BlankLines: blank, Records: make([]RecordStatus, len(records))}
	// What the attributes of a valid record need of its event.
	type valid struct {
		eventTime int64
		source    string
	}
	events := make([]valid, len(records))
	for i, rec := range records {
		resp.Records[i].Index = i
		ev, err := schemas.ParseEvent(rec)
		if err != nil {
			var ce *schemas.ContractError
			if !errors.As(err, &ce) {
				ce = &schemas.ContractError{Reason: schemas.ReasonInvalidJSON, Msg: err.Error()}
			}
			resp.Records[i].Status, resp.Records[i].Reason, resp.Records[i].Message = statusRejected, ce.Reason, ce.Msg
			continue
		}
		if key != nil && !key.allows(ev.Source) {
			return c.refuse(w, refuse(http.StatusForbidden, codeSourceNotAllowed,
				"record %d has source %q, which API key %q may not send: nothing of this request was published; ask the operator to bind the key to the source", i, ev.Source, key.name))
		}
		events[i] = valid{ev.EventTime, ev.Source}
	}

	// Publish every record to publish, then wait for Pub/Sub to
	// acknowledge each: 2xx only for what it has made durable.
	receivedAt := received.UTC().Format(time.RFC3339Nano)
	clientIP := ""
	if c.cfg.ClientIPAttribute {
		clientIP = clientAddr(r)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.cfg.PublishTimeout)
	defer cancel()
	results := make([]*pubsub.PublishResult, len(records))
	publishStart := time.Now()
	for i, rec := range records {
		st := &resp.Records[i]
		if st.Status == statusRejected && !c.cfg.PublishRejected {
			continue
		}
		attrs := make(map[string]string, 4)
		attrs[AttrReceivedAt] = receivedAt
		data := rec
		if st.Status == statusRejected {
			attrs[AttrEdgeReason] = st.Reason
			if len(rec) > MaxPublishedRejected {
				data = rec[:MaxPublishedRejected]
				attrs[AttrEdgeCut] = strconv.Itoa(len(rec))
			}
		} else {
			attrs[AttrEventTime] = time.UnixMicro(events[i].eventTime).UTC().Format(time.RFC3339Nano)
			attrs[AttrSource] = events[i].source
		}
		if key != nil {
			attrs[AttrAPIKey] = key.name
		}
		if clientIP != "" {
			attrs[AttrClientIP] = clientIP
		}
		results[i] = c.pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs})
	}
	var failed, flowControl int
	var firstErr error
	for i, res := range results {
		if res == nil {
			continue
		}
		st := &resp.Records[i]
		if _, err := res.Get(ctx); err != nil {
			// The message may still be in the publisher: its bytes
			// must not be reused.
			pooled = false
			reason := failureReason(err)
			if reason == failFlowControl {
				flowControl++
			}
			failed++
			if firstErr == nil {
				firstErr = err
			}
			st.Status, st.Reason, st.Message = statusFailed, reason, failureMessage(reason)
			continue
		}
		if st.Status == "" {
			st.Status = statusAccepted
		}
	}
	c.m.publish.Observe(time.Since(publishStart).Seconds())
	for i := range resp.Records {
		st := &resp.Records[i]
		switch st.Status {
		case "", statusAccepted: // "": not published, so rejected
			st.Status = statusAccepted
			resp.Accepted++
			c.m.accepted.Inc()
		case statusRejected:
			resp.Rejected++
			c.m.records.WithLabelValues(statusRejected, st.Reason).Inc()
		case statusFailed:
			resp.Failed++
			c.m.records.WithLabelValues(statusFailed, st.Reason).Inc()
		}
	}
	code := http.StatusOK
	switch {
	case failed > 0 && failed == flowControl:
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", retryAfterFull)
	case failed > 0:
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
	if failed > 0 {
		c.log.Warn("records not published", "records", len(records), "failed", failed, "flow_control", flowControl, "error", firstErr)
	} else {
		c.log.Debug("records published", "records", len(records), "accepted", resp.Accepted, "rejected", resp.Rejected)
	}
	writeBody(w, code, resp.appendJSON(make([]byte, 0, 128+32*len(resp.Records))))
	return code
}

// appendJSON appends r as JSON, as encoding/json would write it, without
// reflection for the common record (accepted, no message).
func (r *Response) appendJSON(b []byte) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(r.Accepted), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(r.Rejected), 10)
	b = append(b, `,"failed":`...)
	b = strconv.AppendInt(b, int64(r.Failed), 10)
	b = append(b, `,"rejected_published":`...)
	b = strconv.AppendBool(b, r.RejectedPublished)
	if r.BlankLines != 0 {
		b = append(b, `,"blank_lines":`...)
		b = strconv.AppendInt(b, int64(r.BlankLines), 10)
	}
	b = append(b, `,"records":[`...)
	for i, rec := range r.Records {
		if i > 0 {
			b = append(b, ',')
		}
		if rec.Status == statusAccepted && rec.Reason == "" && rec.Message == "" {
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(rec.Index), 10)
			b = append(b, `,"status":"accepted"}`...)
			continue
		}
		j, _ := json.Marshal(rec) // strings and ints: cannot fail
		b = append(b, j...)
	}
	return append(b, "]}\n"...)
}

// failureReason classifies a publish error.
func failureReason(err error) string {
	switch {
	case errors.Is(err, pubsub.ErrFlowControllerMaxOutstandingMessages), errors.Is(err, pubsub.ErrFlowControllerMaxOutstandingBytes):
		return failFlowControl
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		return failTimeout
	}
	return failUnavailable
}

func failureMessage(reason string) string {
	switch reason {
	case failFlowControl:
		return "the edge is at its publishing capacity: not published, retry after Retry-After"
	case failTimeout:
		return "Pub/Sub did not acknowledge it in time: retry (a retry of a record that did arrive is removed by its event_id)"
	}
	return "Pub/Sub could not be reached: not published, retry after Retry-After"
}

// refuse answers a request-level error and returns its status.
func (c *Collector) refuse(w http.ResponseWriter, e *requestError) int {
	var body ErrorResponse
	body.Error.Code, body.Error.Message = e.code, e.msg
	c.log.Debug("request refused", "status", e.status, "code", e.code)
	writeJSON(w, e.status, &body)
	return e.status
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // not for these types
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, code, append(b, '\n'))
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// cors sets the CORS headers of a request from an allowed origin and
// reports whether the origin (if any) is allowed.
func (c *Collector) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !c.anyOrig && !c.origins[origin] {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

// preflight answers a CORS preflight of an allowed origin.
func (c *Collector) preflight(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	if m := r.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodPost {
		return c.refuse(w, refuse(http.StatusMethodNotAllowed, codeMethod, "%s: send events with POST", m))
	}
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization, "+HeaderAPIKey)
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Allow", "POST, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// clientAddr is the client's address: the first of X-Forwarded-For
// (Cloud Run's front end sets it), else the connection's peer.
func clientAddr(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
