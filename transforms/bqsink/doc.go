// Package bqsink is Railyard's BigQuery IO: it creates the dataset and
// tables (Ensure), writes the batch layer idempotently through the
// Storage Write API (ReplacePartitions, ReplaceDeadLetters), and the
// speed layer at least once through the tables' default streams (Stream).
//
// It talks to BigQuery through Google's Go clients only. When
// BIGQUERY_EMULATOR_HOST (REST, host:port) and
// BIGQUERY_STORAGE_EMULATOR_HOST (gRPC, host:port) are set, the clients go
// to the emulator without credentials; otherwise they use Application
// Default Credentials.
//
// # How a batch write replaces a day
//
// ReplacePartitions keys rows by the UTC day of the table's partition
// column and groups them per day. One DoFn call per (table, day):
//
//  1. creates a staging table with the table's columns and an expiration,
//     so that a crashed attempt leaves nothing that outlives it;
//  2. writes the day's rows to it through PENDING write streams, each
//     append under the 10 MB request limit; a stream is committed only
//     when every append on it succeeded, and a failed one is abandoned and
//     written again on a new stream, so the staging table holds each row
//     exactly once once every stream is committed;
//  3. replaces the day with one MERGE statement, atomic in BigQuery (see
//     replaceDaySQL): ON FALSE, every target row of the day is NOT
//     MATCHED BY SOURCE and deleted, every staging row is NOT MATCHED and
//     inserted. The emulator runs a MERGE in time proportional to the
//     staged rows times the table's rows, so there the day is replaced by
//     a DELETE and an INSERT … SELECT (replaceDayScript), which it does
//     not undo together when the second fails;
//  4. drops the staging table.
//
// Days are TIMESTAMP literals rather than query parameters: the emulator
// silently binds no parameter inside MERGE (see emulator_test.go). A
// rerun writes the same rows again and the MERGE replaces rather than
// adds, so the result is the same; a retried DoFn starts over on a new
// staging table.
//
// Rows BigQuery rejects one by one (row errors of an append, or a value
// the encoder knows BigQuery would refuse, such as a JSON column that
// does not parse) become dead letters rather than failing the day.
// Transient errors retry with backoff; any other error fails the bundle
// and leaves the target day as it was.
//
// # How the speed layer is written
//
// Stream appends each bundle's rows to the table's default stream, in
// appends of up to 5 MB or 5,000 rows, and ends the bundle only once
// every append is confirmed; it then emits the message ids of the rows
// written, so that the streaming job acknowledges a Pub/Sub message only
// once its row is in BigQuery. A retried bundle appends its rows again:
// the serving views remove the duplicates. Only a row BigQuery itself
// refuses becomes a speed-layer dead letter (write_failed): a row error,
// or a request it keeps refusing, sent in halves until the refused row is
// alone. When BigQuery cannot be reached or does not serve the job, the
// bundle waits and retries for as long as it takes (counter
// sink_unavailable_retries), acknowledging nothing meanwhile; a dead
// letter that cannot be written fails its bundle.
//
// Appends stay under the server's request limit (10 MB for BigQuery, 4 MiB
// for the emulator; see Server).
package bqsink
