// Package collector is Railyard's collection edge: an HTTP service that
// takes events from apps, sites, services and devices, checks each
// against the event contract with the jobs' own code (schemas.ParseEvent),
// and publishes it to the Pub/Sub topic the streaming job reads. It
// answers "accepted" for a record only once Pub/Sub has acknowledged its
// publish. The command is pipelines/collect; its guide is
// pipelines/collect/README.md.
//
// # API
//
// POST /v1/events with one of:
//
//   - Content-Type: application/json — one event (a JSON object), or a
//     JSON array of events. A body that is not an array is one record,
//     whatever it holds: the contract judges it. An array that does not
//     parse is refused whole (400 bad_array): nothing of it is published.
//   - Content-Type: application/x-ndjson (or application/jsonl) — one
//     event a line; blank lines are skipped and counted (blank_lines).
//
// optionally with Content-Encoding: gzip, and with the key in X-API-Key
// (or Authorization: Bearer KEY) when the edge runs with --auth=api_key.
// Each record's bytes, exactly as sent (an array element as it stands in
// the body, an NDJSON line without its line end), become one message's
// data.
//
// The answer to a request whose records were judged is a Response:
//
//	{"accepted":1,"rejected":1,"failed":0,"rejected_published":true,
//	 "records":[{"index":0,"status":"accepted"},
//	            {"index":1,"status":"rejected","reason":"missing_source","message":"…"}]}
//
// Its status:
//
//   - 200: no record failed. Each record is accepted (published, and
//     acknowledged by Pub/Sub) or rejected with the contract's reason code
//     (the reason column of dead_letter). A rejected record is published
//     too, marked with the attribute railyard_edge_reason, so the
//     streaming job writes it to dead_letter with its raw bytes, unless
//     the edge runs with --publish_rejected=false (rejected_published
//     says which). Do not retry a rejected record: it breaks the contract.
//   - 429 with Retry-After: some records failed because the edge's
//     publisher is at its capacity (--max_outstanding_messages,
//     --max_outstanding_bytes); they are listed as failed/flow_control.
//   - 503 with Retry-After: some records failed because Pub/Sub could not
//     be reached or did not acknowledge them within --publish_timeout
//     (failed/unavailable, failed/timeout), or the edge is shutting down.
//
// Records listed as accepted are durable whatever the status. A client
// retries the failed records, or simply the whole request: retries are
// safe, since both layers keep one event per event_id (the streaming job
// within its --dedup_horizon, the batch layer always). A record answered
// failed/timeout may still have arrived; its retry is removed the same
// way.
//
// Refusals of the whole request publish nothing and answer an
// ErrorResponse {"error":{"code":"…","message":"…"}}: 400 (empty_body,
// bad_array, bad_gzip, read_failed), 401 (missing_api_key,
// unknown_api_key), 403 (source_not_allowed: a valid record's source is
// not one the key is bound to; origin_not_allowed), 405, 408
// (read_timeout: the body did not arrive within --read_timeout), 413
// (body_too_large, decompressed_too_large, too_many_records) and 415
// (unsupported_media_type, unsupported_encoding).
//
// A record larger than schemas.MaxRecordBytes (1 MiB) is rejected
// too_large, as the jobs would; one larger than MaxPublishedRejected
// (3 MiB) is published cut to it, marked railyard_edge_cut with its size.
//
// # Attributes
//
// Each message carries railyard_received_at (when the edge received the
// request), and for a valid record railyard_event_time (its event time,
// RFC 3339 UTC: the streaming job's --timestamp_attribute can take it)
// and railyard_source; railyard_edge_reason marks a rejected record,
// railyard_api_key names (never repeats) the key that sent it. Nothing
// personal is stamped unless asked: the client's address only with
// --client_ip_attribute.
//
// # Operations
//
// GET /healthz answers while the process runs; GET /readyz answers 200
// once Pub/Sub answers for the topic (checked at most every 5 s) and 503
// while it does not or the edge shuts down. GET /metrics exposes the
// counters and histograms named by the Metric constants in Prometheus'
// format. Logs are log/slog records, never a payload. Serve shuts down
// on its context's end: it stops taking connections, lets every request
// in flight finish and flushes the publisher within --shutdown_timeout.
package collector
