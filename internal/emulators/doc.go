// Package emulators starts the Google Cloud emulators Railyard's tests and
// local runs use, and points the real Google Go clients at them the
// standard way (PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST,
// BIGQUERY_EMULATOR_HOST, BIGQUERY_STORAGE_EMULATOR_HOST):
//
//   - Cloud Storage: fake-gcs-server, in-process;
//   - Pub/Sub: pstest, in-process;
//   - BigQuery: goccy/bigquery-emulator, as a child process built from the
//     tools module beside this package, so its large dependency set stays
//     out of Railyard's go.mod and out of the pipeline binaries.
//
// Every emulator listens on 127.0.0.1 on a free port and stops with Close;
// nothing is left running.
package emulators
