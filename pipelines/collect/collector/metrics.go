package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names the edge exposes at /metrics, in Prometheus' format
// (Cloud Monitoring's managed Prometheus scrapes it).
const (
	// MetricRequests counts requests to /v1/events by HTTP status code.
	MetricRequests = "railyard_collect_requests_total"
	// MetricRecords counts records by outcome (accepted, rejected, failed)
	// and reason (the contract's reason code of a rejected record;
	// flow_control, unavailable or timeout for a failed one).
	MetricRecords = "railyard_collect_records_total"
	// MetricRequestSeconds is the latency of requests to /v1/events, from
	// the handler's start to the answer, by status code.
	MetricRequestSeconds = "railyard_collect_request_duration_seconds"
	// MetricPublishSeconds is how long Pub/Sub took to acknowledge a
	// request's records.
	MetricPublishSeconds = "railyard_collect_publish_duration_seconds"
	// MetricRecordsPerRequest is how many records the requests carried.
	MetricRecordsPerRequest = "railyard_collect_records_per_request"
)

type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	records      *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	publish      prometheus.Histogram
	perRequest   prometheus.Histogram
	accepted     prometheus.Counter // records{outcome=accepted,reason=""}
	blankSkipped prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests, Help: "Requests to /v1/events by HTTP status code.",
	}, []string{"code"})
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRecords, Help: "Records received, by outcome (accepted, rejected, failed) and reason.",
	}, []string{"outcome", "reason"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricRequestSeconds, Help: "Latency of requests to /v1/events, by HTTP status code.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"code"})
	m.publish = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: MetricPublishSeconds, Help: "Time from publishing a request's records to Pub/Sub acknowledging the last of them.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.perRequest = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: MetricRecordsPerRequest, Help: "Records a request to /v1/events carried.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000},
	})
	m.blankSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "railyard_collect_blank_lines_total", Help: "Blank lines of NDJSON bodies, skipped (and counted in each response).",
	})
	m.reg.MustRegister(m.requests, m.records, m.latency, m.publish, m.perRequest, m.blankSkipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.accepted = m.records.WithLabelValues(statusAccepted, "")
	return m
}
