// Package metrics counts events per one-minute event-time window and
// (event_type, source, platform, country): the rows of the
// metrics_minute_batch and metrics_minute_speed tables.
//
// The batch job uses the zero Config: one on-time pane per window. The
// streaming job sets a trigger and an allowed lateness; every firing of a
// window is then a new row, a revision, and the latest pane is the answer.
package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/windowing"
)

// WindowSize is the length of a metrics window.
const WindowSize = time.Minute

// PaneMode says what a later pane of a window holds (see windowing.PaneMode).
type PaneMode = windowing.PaneMode

// The pane modes.
const (
	Accumulating = windowing.Accumulating
	Discarding   = windowing.Discarding
)

// Config holds the windowing settings of PerMinute. The zero Config is the
// batch job's, for bounded input: one on-time row per minute, computed in
// the global window (so it fires when the input ends). A streaming job
// sets a Trigger.
type Config struct {
	// Trigger says when a window fires a pane; nil is Beam's default
	// trigger (once when the watermark passes the end of the window, then
	// once per late event within AllowedLateness).
	Trigger trigger.Trigger
	// AllowedLateness is how long after the end of a window its late
	// events still revise it; the runner drops events later than that.
	AllowedLateness time.Duration
	// Panes says what a later pane of a window holds.
	Panes PaneMode
	// ProcessedAt, when set, is every pane's processed_at, instead of the
	// wall clock at the time the pane is computed: for tests and golden
	// files.
	ProcessedAt time.Time
}

// Validate reports whether the configuration can build a pipeline.
func (c Config) Validate() error {
	return c.settings().Validate()
}

// settings are the windowing knobs of the configuration.
func (c Config) settings() windowing.Settings {
	return windowing.Settings{Trigger: c.Trigger, AllowedLateness: c.AllowedLateness, Panes: c.Panes, ProcessedAt: c.ProcessedAt}
}

// ErrInvalidConfig is wrapped by the panic of PerMinute on a bad Config.
var ErrInvalidConfig = errors.New("metrics: invalid config")

func init() {
	register.Function1x2(keyByMinuteKey)
	register.Combiner3[minuteAcc, minuteInput, minuteTotal](&minuteFn{})
	register.DoFn4x2[typex.PaneInfo, typex.Window, minuteKey, func(*minuteInput) bool, schemas.MetricMinuteSpeed, error](&paneMetricFn{})
	register.Iter1[minuteInput]()
	register.Function1x1(withoutPane)
}

// PerMinute takes a PCollection<schemas.Event>, deduplicated and stamped
// with event time, and returns a PCollection<schemas.MetricMinuteSpeed>:
// for each one-minute event-time window and (event_type, source, platform,
// country), the events, distinct non-NULL user_ids and value sum, with
// the pane that fired it. A NULL platform or country is a key of its own.
// It panics, while the pipeline is built, if cfg is not valid.
func PerMinute(s beam.Scope, events beam.PCollection, cfg Config) beam.PCollection {
	s = s.Scope("metrics.PerMinute")
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	processed := cfg.settings().ProcessedAtMicros()
	if cfg.settings().FiresOnce() {
		return perMinuteBatch(s, events, processed)
	}
	// The Go SDK v2.77.0 combine drops the pane (exec/combine.go builds its
	// output without it), so group, and apply minuteFn per pane. Each pane
	// is grouped discarding; accumulating panes are then running totals in
	// state (see accumulatingPerMinute), not a regroup of the window.
	discarding := cfg.settings()
	discarding.Panes = Discarding
	windowed := beam.WindowInto(s, window.NewFixedWindows(WindowSize), events, discarding.Options()...)
	keyed := beam.ParDo(s, keyByMinuteKey, windowed)
	if cfg.Panes == Accumulating {
		return accumulatingPerMinute(s, events, keyed, cfg.settings())
	}
	return beam.ParDo(s, &paneMetricFn{ProcessedAtMicros: processed}, beam.GroupByKey(s, keyed))
}

// WithoutPane takes a PCollection<schemas.MetricMinuteSpeed> and returns
// the PCollection<schemas.MetricMinute> of its metrics, for the batch table.
func WithoutPane(s beam.Scope, metrics beam.PCollection) beam.PCollection {
	s = s.Scope("metrics.WithoutPane")
	return beam.ParDo(s, withoutPane, metrics)
}

func withoutPane(m schemas.MetricMinuteSpeed) schemas.MetricMinute {
	return m.MetricMinute
}

// minuteKey is what a metric is grouped by within a window. A nil
// Platform or Country is NULL, a key apart from any value ("other"
// included): the SDK's row coder marks nil fields in a bitmap, so the
// key's encoding is deterministic, and nil, "" and "x" group apart.
type minuteKey struct {
	EventType string
	Source    string
	Platform  *string
	Country   *string
}

// minuteInput is the part of an event a metric needs.
type minuteInput struct {
	UserID *string
	Value  *float64
}

func keyByMinuteKey(ev schemas.Event) (minuteKey, minuteInput) {
	return minuteKey{EventType: ev.EventType, Source: ev.Source, Platform: ev.Platform, Country: ev.Country},
		minuteInput{UserID: ev.UserID, Value: ev.Value}
}

type paneMetricFn struct {
	// ProcessedAtMicros is written as processed_at; 0 means the wall clock.
	ProcessedAtMicros int64
}

func (fn *paneMetricFn) ProcessElement(pn typex.PaneInfo, w typex.Window, key minuteKey, inputs func(*minuteInput) bool) (schemas.MetricMinuteSpeed, error) {
	var combine minuteFn
	acc := combine.CreateAccumulator()
	var in minuteInput
	for inputs(&in) {
		acc = combine.AddInput(acc, in)
	}
	return metricRow(w, key, combine.ExtractOutput(acc), windowing.Pane(pn, fn.ProcessedAtMicros))
}

func metricRow(w typex.Window, key minuteKey, total minuteTotal, p schemas.Pane) (schemas.MetricMinuteSpeed, error) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return schemas.MetricMinuteSpeed{}, fmt.Errorf("metrics: window %v is a %T, want a fixed window", w, w)
	}
	return row(iw.Start.Milliseconds()*1000, iw.End.Milliseconds()*1000, key, total, p), nil
}

// row is the metrics row of one window [start, end), in microseconds.
func row(start, end int64, key minuteKey, total minuteTotal, p schemas.Pane) schemas.MetricMinuteSpeed {
	return schemas.MetricMinuteSpeed{
		MetricMinute: schemas.MetricMinute{
			WindowStart: start,
			WindowEnd:   end,
			EventType:   key.EventType,
			Source:      key.Source,
			Platform:    key.Platform,
			Country:     key.Country,
			Events:      total.Events,
			Users:       total.Users,
			ValueSum:    total.ValueSum,
		},
		Pane: p,
	}
}
