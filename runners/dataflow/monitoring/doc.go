// Package monitoring holds Railyard's Cloud Monitoring alert policies
// (policies/*.json, the AlertPolicy format of the Monitoring API) and the
// logs-based metrics they use (logmetrics/*.json, the LogMetric format of
// the Logging API), and the test that keeps them honest: every metric a
// policy names is one the jobs emit, every system metric is on an explicit
// allowlist, and every policy says what to do when it fires.
//
// README.md tells how to create them with gcloud.
package monitoring
