package monitoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	logging "google.golang.org/api/logging/v2"
	cm "google.golang.org/api/monitoring/v3"

	"github.com/railyard/railyard/schemas/metricnames"
)

var update = flag.Bool("update", false, "rewrite the list of emitted metrics in README.md")

// The files this package holds, by directory.
const (
	policiesDir   = "policies"
	logMetricsDir = "logmetrics"
)

// systemMetrics are the Cloud Monitoring metric types a policy may use,
// besides the logs-based metrics of logmetrics/. Each is listed at
// https://cloud.google.com/monitoring/api/metrics_gcp; the dataflow ones
// are written against the monitored resource dataflow_job, whose label
// job_name the policies select on.
var systemMetrics = []string{
	"dataflow.googleapis.com/job/user_counter", // a Beam counter: label metric_name is its name
	"dataflow.googleapis.com/job/data_watermark_age",
	"dataflow.googleapis.com/job/system_lag",
	"dataflow.googleapis.com/job/per_stage_data_watermark_age",
	"dataflow.googleapis.com/job/per_stage_system_lag",
	"dataflow.googleapis.com/job/elapsed_time",
	"dataflow.googleapis.com/job/is_failed",
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age",
	"pubsub.googleapis.com/subscription/num_undelivered_messages",
}

// userCounter is the metric Dataflow exports Beam counters as.
const userCounter = "dataflow.googleapis.com/job/user_counter"

// logMetricPrefix is the metric type of a logs-based metric, before its name.
const logMetricPrefix = "logging.googleapis.com/user/"

// placeholders are the variables the files leave for envsubst. README.md
// documents each; anything else written ${…} is a mistake.
var placeholders = []string{"PROJECT_ID", "REGION", "DATASET", "JOB_NAME_PREFIX", "STREAMING_JOB_NAME", "SUBSCRIPTION_ID"}

var notPromQL = regexp.MustCompile(`[^A-Za-z0-9_]`)

// promName maps a Cloud Monitoring metric type to its PromQL name: the
// first / becomes :, every other character that is not a letter, a digit
// or _ becomes _.
// https://cloud.google.com/monitoring/promql/promql-mapping
func promName(metricType string) string {
	domain, path, _ := strings.Cut(metricType, "/")
	return notPromQL.ReplaceAllString(domain, "_") + ":" + notPromQL.ReplaceAllString(path, "_")
}

// world is what the checks compare the files against.
type world struct {
	root     string
	code     *code
	logNames map[string]bool // logs-based metrics defined in logmetrics/
	views    map[string]bool // schemas/views/*.sql and schemas.Table* names
}

var loadWorld = sync.OnceValues(func() (*world, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := findModuleRoot(wd)
	if err != nil {
		return nil, err
	}
	c, err := readCode(root)
	if err != nil {
		return nil, err
	}
	w := &world{root: root, code: c, logNames: map[string]bool{}, views: map[string]bool{}}
	files, _ := filepath.Glob(filepath.Join(logMetricsDir, "*.json"))
	for _, file := range files {
		w.logNames[strings.TrimSuffix(filepath.Base(file), ".json")] = true
	}
	sqls, _ := filepath.Glob(filepath.Join(root, "schemas", "views", "*.sql"))
	for _, f := range sqls {
		w.views[strings.TrimSuffix(filepath.Base(f), ".sql")] = true
	}
	tables, err := os.ReadFile(filepath.Join(root, "schemas", "tables.go"))
	if err != nil {
		return nil, err
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*Table\w+\s*=\s*"(\w+)"`).FindAllStringSubmatch(string(tables), -1) {
		w.views[m[1]] = true
	}
	return w, nil
})

func mustWorld(t *testing.T) *world {
	t.Helper()
	w, err := loadWorld()
	if err != nil {
		t.Fatalf("read the jobs' code: %v", err)
	}
	return w
}

// decodeStrict decodes one JSON value into v, failing on a field v does
// not have, at any depth (the generated API types list every field the
// API takes), and on anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid: data after the JSON value")
	}
	return nil
}

// checkPolicy parses an AlertPolicy and returns everything wrong with it.
func (w *world) checkPolicy(data []byte) []error {
	var p cm.AlertPolicy
	if err := decodeStrict(data, &p); err != nil {
		return []error{err}
	}
	errs := w.checkPlaceholders(data)
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.DisplayName == "" {
		fail("no displayName")
	}
	if p.Name != "" || len(p.NotificationChannels) > 0 {
		fail("name and notificationChannels belong to one project: leave them out (README.md adds the channels)")
	}
	if !slices.Contains([]string{"CRITICAL", "ERROR", "WARNING"}, p.Severity) {
		fail("severity %q: want CRITICAL, ERROR or WARNING", p.Severity)
	}
	if got, want := p.UserLabels["severity"], strings.ToLower(p.Severity); got != want {
		fail("userLabels.severity = %q, want %q (the severity label notifications and filters use)", got, want)
	}
	errs = append(errs, w.checkDocumentation(p.Documentation)...)
	if len(p.Conditions) == 0 {
		fail("no condition")
	}
	for i, c := range p.Conditions {
		for _, err := range w.checkCondition(c, len(p.Conditions)) {
			fail("condition %d (%s): %w", i, c.DisplayName, err)
		}
	}
	return errs
}

func (w *world) checkDocumentation(d *cm.Documentation) []error {
	if d == nil || strings.TrimSpace(d.Content) == "" {
		return []error{errors.New("no documentation.content: say what it means, the first steps, and which BigQuery query to run")}
	}
	var errs []error
	if d.MimeType != "text/markdown" {
		errs = append(errs, fmt.Errorf("documentation.mimeType = %q, want text/markdown", d.MimeType))
	}
	for _, section := range []string{"**What it means.**", "**First steps.**", "**BigQuery.**", "```sql"} {
		if !strings.Contains(d.Content, section) {
			errs = append(errs, fmt.Errorf("documentation has no %s", section))
		}
	}
	refs := regexp.MustCompile("`\\$\\{PROJECT_ID\\}\\.\\$\\{DATASET\\}\\.(\\w+)`").FindAllStringSubmatch(d.Content, -1)
	if len(refs) == 0 {
		errs = append(errs, errors.New("documentation queries no `${PROJECT_ID}.${DATASET}.<view>`"))
	}
	for _, r := range refs {
		if !w.views[r[1]] {
			errs = append(errs, fmt.Errorf("documentation queries %s, which is neither a view of schemas/views nor a table of schemas", r[1]))
		}
	}
	for _, path := range regexp.MustCompile(`\b(?:schemas|pipelines|transforms|runners)/[\w./-]*\w`).FindAllString(d.Content, -1) {
		if _, err := os.Stat(filepath.Join(w.root, filepath.FromSlash(path))); err != nil {
			errs = append(errs, fmt.Errorf("documentation names %s, which does not exist", path))
		}
	}
	return errs
}

// checkPlaceholders fails on a ${…} that is not one of placeholders.
func (w *world) checkPlaceholders(data []byte) []error {
	var errs []error
	for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(string(data), -1) {
		if !slices.Contains(placeholders, m[1]) {
			errs = append(errs, fmt.Errorf("unknown placeholder ${%s}: use one of %v, which README.md documents", m[1], placeholders))
		}
	}
	return errs
}

func (w *world) checkCondition(c *cm.Condition, conditions int) []error {
	if c.DisplayName == "" {
		return []error{errors.New("no displayName")}
	}
	kinds := 0
	var errs []error
	if q := c.ConditionPrometheusQueryLanguage; q != nil {
		kinds++
		if conditions != 1 {
			errs = append(errs, errors.New("a PromQL condition must be the policy's only condition"))
		}
		for _, d := range []string{q.Duration, q.EvaluationInterval} {
			if d != "" && !regexp.MustCompile(`^[0-9]+s$`).MatchString(d) {
				errs = append(errs, fmt.Errorf("duration %q: want seconds, like \"60s\"", d))
			}
		}
		errs = append(errs, w.checkPromQL(q.Query)...)
	}
	if c.ConditionThreshold != nil {
		kinds++
		errs = append(errs, w.checkFilter(c.ConditionThreshold.Filter)...)
		if f := c.ConditionThreshold.DenominatorFilter; f != "" {
			errs = append(errs, w.checkFilter(f)...)
		}
	}
	if c.ConditionAbsent != nil {
		kinds++
		errs = append(errs, w.checkFilter(c.ConditionAbsent.Filter)...)
	}
	if c.ConditionMonitoringQueryLanguage != nil || c.ConditionMatchedLog != nil || c.ConditionSql != nil {
		errs = append(errs, errors.New("only PromQL, threshold and absence conditions are checked here (MQL is deprecated; log-match and SQL conditions name no metric)"))
	}
	if kinds != 1 {
		errs = append(errs, fmt.Errorf("%d condition kinds set, want exactly one", kinds))
	}
	return errs
}

func (w *world) checkPromQL(query string) []error {
	sels, err := promSelectors(query)
	if err != nil {
		return []error{fmt.Errorf("PromQL: %w", err)}
	}
	var errs []error
	for _, s := range sels {
		metricType, err := w.metricType(s.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var names []matcher
		for _, m := range s.matchers {
			if m.label == "metric_name" {
				names = append(names, m)
			}
		}
		errs = append(errs, w.checkUserCounter(metricType, names)...)
	}
	return errs
}

// metricType resolves a PromQL metric name (mapped, or a UTF-8 metric
// type) against the allowlist and the logs-based metrics of logmetrics/.
func (w *world) metricType(name string) (string, error) {
	for _, t := range systemMetrics {
		if name == t || name == promName(t) {
			return t, nil
		}
	}
	logName, ok := strings.CutPrefix(name, promName(logMetricPrefix))
	if !ok {
		logName, ok = strings.CutPrefix(name, logMetricPrefix)
	}
	if ok {
		if !w.logNames[logName] {
			return "", fmt.Errorf("%s: no logs-based metric %q in %s/", name, logName, logMetricsDir)
		}
		return logMetricPrefix + logName, nil
	}
	return "", fmt.Errorf("metric %s is not in the allowlist of Dataflow and Pub/Sub metric types (systemMetrics) nor a logs-based metric of %s/", name, logMetricsDir)
}

// checkUserCounter checks the metric_name matchers of one reference to
// metricType: a user counter must name counters the jobs emit.
func (w *world) checkUserCounter(metricType string, names []matcher) []error {
	if metricType != userCounter {
		if len(names) > 0 {
			return []error{fmt.Errorf("%s has no metric_name label", metricType)}
		}
		return nil
	}
	if len(names) == 0 {
		return []error{fmt.Errorf("%s without a metric_name matcher adds up every counter of the job", userCounter)}
	}
	var errs []error
	for _, m := range names {
		values, err := m.metricNames()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, v := range values {
			if err := jobCounter(v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func (w *world) checkFilter(filter string) []error {
	types, names, err := filterRefs(filter)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, t := range types {
		metricType, err := w.metricType(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, w.checkUserCounter(metricType, names)...)
	}
	return errs
}

// checkLogMetric parses a LogMetric and returns everything wrong with it.
func (w *world) checkLogMetric(file string, data []byte) []error {
	var lm logging.LogMetric
	if err := decodeStrict(data, &lm); err != nil {
		return []error{err}
	}
	errs := w.checkPlaceholders(data)
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(lm.Name) {
		fail("name %q: use [a-z0-9_], which PromQL keeps as it is", lm.Name)
	}
	if want := strings.TrimSuffix(filepath.Base(file), ".json"); lm.Name != want {
		fail("name %q, but the file is %s: the policies find it by file name", lm.Name, filepath.Base(file))
	}
	if lm.Description == "" {
		fail("no description")
	}
	if d := lm.MetricDescriptor; d == nil || d.MetricKind != "DELTA" || d.ValueType != "INT64" {
		fail("metricDescriptor: want a counter (metricKind DELTA, valueType INT64)")
	}
	msgs := regexp.MustCompile(`(?:textPayload\s*:|jsonPayload\.(?:msg|message)\s*=)\s*"([^"]+)"`).FindAllStringSubmatch(lm.Filter, -1)
	if len(msgs) == 0 {
		fail("filter %q matches no log message (textPayload:\"…\" or jsonPayload.msg=\"…\")", lm.Filter)
	}
	for _, m := range msgs {
		if !w.code.messages[m[1]] {
			fail("filter matches the message %q, which no slog call in the jobs' code logs", m[1])
		}
	}
	return errs
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/*.json: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = data
	}
	return out
}

func TestNoOtherJSONFiles(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		if dir := filepath.Dir(path); dir != policiesDir && dir != logMetricsDir {
			t.Errorf("%s: JSON files go in %s/ (AlertPolicy) or %s/ (LogMetric)", path, policiesDir, logMetricsDir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPolicies(t *testing.T) {
	w := mustWorld(t)
	for file, data := range readDir(t, policiesDir) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			for _, err := range w.checkPolicy(data) {
				t.Error(err)
			}
		})
	}
}

func TestLogMetrics(t *testing.T) {
	w := mustWorld(t)
	var policies strings.Builder
	for _, data := range readDir(t, policiesDir) {
		policies.Write(data)
	}
	for file, data := range readDir(t, logMetricsDir) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			for _, err := range w.checkLogMetric(file, data) {
				t.Error(err)
			}
			name := strings.TrimSuffix(filepath.Base(file), ".json")
			if !strings.Contains(policies.String(), promName(logMetricPrefix+name)) && !strings.Contains(policies.String(), logMetricPrefix+name) {
				t.Errorf("no policy uses the logs-based metric %s", name)
			}
		})
	}
}

// TestCheckRejects proves the checks fail a policy that names a metric
// nobody emits, and the other mistakes they are there for.
func TestCheckRejects(t *testing.T) {
	w := mustWorld(t)
	const doc = `"documentation": {"mimeType": "text/markdown", "content": "**What it means.** x **First steps.** y **BigQuery.**\n` + "```sql\\nSELECT * FROM `${PROJECT_ID}.${DATASET}.pipeline_health`\\n```" + `"}`
	policy := func(query string) string {
		q, _ := json.Marshal(query)
		return `{"displayName": "test", "severity": "ERROR", "userLabels": {"severity": "error"}, "combiner": "OR", ` + doc +
			`, "conditions": [{"displayName": "c", "conditionPrometheusQueryLanguage": {"query": ` + string(q) + `, "duration": "60s"}}]}`
	}
	threshold := func(filter string) string {
		f, _ := json.Marshal(filter)
		return `{"displayName": "test", "severity": "ERROR", "userLabels": {"severity": "error"}, "combiner": "OR", ` + doc +
			`, "conditions": [{"displayName": "c", "conditionThreshold": {"filter": ` + string(f) + `, "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "60s"}}]}`
	}
	counter := func(name string) string {
		return policy(`sum(delta(dataflow_googleapis_com:job_user_counter{metric_name="` + name + `"}[10m])) > 0`)
	}
	for _, tc := range []struct {
		name, policy, wantErr string // wantErr "": accepted
	}{
		{"accepts a counter the jobs emit", counter("records_in"), ""},
		{"accepts a reason counter", counter("dead_letter_invalid_json"), ""},
		{"accepts a table counter", counter("rows_written_events_speed"), ""},
		{"accepts an aggregation counter", counter("too_late_sessions"), ""},
		{"accepts a shard counter", counter("pubsub_messages_read_shard_07"), ""},
		{"accepts alternatives of emitted counters", counter(`records_in", metric_name=~"dead_letters|duplicates`), ""},
		{"accepts a threshold filter on an emitted counter",
			threshold(`resource.type = "dataflow_job" AND metric.type = "dataflow.googleapis.com/job/user_counter" AND metric.label.metric_name = "dead_letters"`), ""},
		{"fails on a counter nobody emits", counter("dead_leters"), `"dead_leters" is not a counter the jobs emit`},
		{"fails on a reason no code gives", counter("dead_letter_bad_mood"), `"dead_letter_bad_mood" is not a counter`},
		{"fails on a table the jobs do not write", counter("rows_written_batch_watermark"), `"rows_written_batch_watermark" is not a counter`},
		{"fails on a counter only a benchmark emits", counter("bench_unique"), `"bench_unique" is not a counter`},
		{"fails on a distribution", counter("event_lag_ms"), "is a Beam distribution"},
		{"fails on a regular expression it cannot check", counter(`records_in", metric_name=~"dead_.*`), "only plain names"},
		{"fails on user_counter without metric_name",
			policy(`sum(delta(dataflow_googleapis_com:job_user_counter{job_name="x"}[10m])) > 0`), "without a metric_name matcher"},
		{"fails on a metric outside the allowlist",
			policy(`compute_googleapis_com:instance_cpu_utilization > 0.9`), "not in the allowlist"},
		{"fails on a logs-based metric nobody defined",
			policy(`absent_over_time(logging_googleapis_com:user_railyard_nothing[1h])`), `no logs-based metric "railyard_nothing"`},
		{"fails on a filter naming a counter nobody emits",
			threshold(`metric.type = "dataflow.googleapis.com/job/user_counter" AND metric.labels.metric_name = "recordz_in"`), `"recordz_in" is not a counter`},
		{"fails on an unknown field", strings.Replace(counter("records_in"), `"combiner"`, `"combinator"`, 1), `unknown field "combinator"`},
		{"fails on an unknown nested field", strings.Replace(counter("records_in"), `"duration"`, `"durration"`, 1), `unknown field "durration"`},
		{"fails on invalid JSON", strings.TrimSuffix(counter("records_in"), "}"), "invalid"},
		{"fails on data after the policy", counter("records_in") + "{}", "data after"},
		{"fails without documentation", strings.Replace(counter("records_in"), doc+",", "", 1), "no documentation"},
		{"fails without a condition",
			`{"displayName": "test", "severity": "ERROR", "userLabels": {"severity": "error"}, ` + doc + `, "conditions": []}`, "no condition"},
		{"fails on a view that does not exist", strings.Replace(counter("records_in"), "pipeline_health", "pipeline_wealth", 1), "pipeline_wealth"},
		{"fails on an unknown placeholder", counter("records_in${SUFFIX}"), "unknown placeholder ${SUFFIX}"},
		{"fails on a severity label that disagrees", strings.Replace(counter("records_in"), `{"severity": "error"}`, `{"severity": "low"}`, 1), "userLabels.severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := w.checkPolicy([]byte(tc.policy))
			if tc.wantErr == "" {
				for _, err := range errs {
					t.Errorf("rejected: %v", err)
				}
				return
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.wantErr) {
					return
				}
			}
			t.Errorf("errors %v, want one containing %q", errs, tc.wantErr)
		})
	}
}

func TestCheckLogMetricRejectsAMessageNobodyLogs(t *testing.T) {
	w := mustWorld(t)
	data := []byte(`{"name": "x", "description": "d", "filter": "textPayload:\"serving: batch run recorded!\"",
		"metricDescriptor": {"metricKind": "DELTA", "valueType": "INT64"}}`)
	errs := w.checkLogMetric("x.json", data)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no slog call") {
		t.Errorf("checkLogMetric = %v, want one error about a message no slog call logs", errs)
	}
}

// jobCounter returns why name is not a Railyard counter the jobs emit, or
// nil if it is one.
func jobCounter(name string) error {
	m, ok := metricnames.Lookup(name)
	switch {
	case !ok:
		return fmt.Errorf("metric_name %q is not a counter the jobs emit (not in schemas/metricnames)", name)
	case m.BenchOnly:
		return fmt.Errorf("metric_name %q is not a counter the jobs emit: only %s emits it", name, m.Package)
	case m.Kind != metricnames.Counter:
		return fmt.Errorf("metric_name %q is a Beam %s (%s), not a counter: only counters are exported as job/user_counter", name, m.Kind, m.Package)
	}
	return nil
}

// The README lists what the jobs emit between these markers; -update
// rewrites the list from the code.
const (
	beginMetrics = "<!-- emitted metrics: generated by go test -update, do not edit -->"
	endMetrics   = "<!-- end of emitted metrics -->"
)

func TestReadmeListsEmittedMetrics(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(readme), beginMetrics)
	_, after, ok2 := strings.Cut(rest, endMetrics)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the markers %q and %q", beginMetrics, endMetrics)
	}
	var b strings.Builder
	b.WriteString("\n\n| name in `railyard` | kind | created in | what it counts | values of `<…>` |\n| --- | --- | --- | --- | --- |\n")
	for _, m := range metricnames.All() {
		if m.BenchOnly {
			continue
		}
		values := strings.Join(m.Values, ", ")
		if m.Digits > 0 {
			values = fmt.Sprintf("%d or more digits", m.Digits)
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", m.Name, m.Kind, m.Package, m.Meaning, values)
	}
	b.WriteString("\n")
	want := before + beginMetrics + b.String() + endMetrics + after
	if want == string(readme) {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's list of emitted metrics is stale; run go test ./runners/dataflow/monitoring/ -update")
}

func TestReadmeDocumentsPlaceholders(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, p := range placeholders {
		list = append(list, "${"+p+"}")
		if !strings.Contains(string(readme), "`"+p+"`") {
			t.Errorf("README.md does not document the placeholder %s", p)
		}
	}
	// envsubst with an explicit list replaces only these, leaving the $1
	// of a regular expression or the ${…} of a documentation variable.
	if want := "envsubst '" + strings.Join(list, " ") + "'"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not run %s", want)
	}
}
