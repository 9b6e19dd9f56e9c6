package dataflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	df "google.golang.org/api/dataflow/v1b3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
	"github.com/railyard/railyard/transforms/pubsubio"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init() // Beam's runners refuse to run before it
	dir, err := os.MkdirTemp("", "railyard-dataflow-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	commands.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The job the tests translate. Nothing of it exists: a dry run must not
// look.
const (
	project         = "railyard-test"
	region          = "us-central1"
	bucket          = "railyard-dry-run"
	stagingLocation = "gs://" + bucket + "/staging"
	tempLocation    = "gs://" + bucket + "/tmp"
	lakeRoot        = "gs://" + bucket
	from, to        = "2026-11-01", "2026-11-02"
	subscription    = "projects/" + project + "/subscriptions/railyard-events"
	streamingJob    = "railyard-streaming"
)

// batchSteps are the batch job's steps by the names users rely on: the
// names batchjob.Build gives them, which the Dataflow console shows and
// its monitoring and alerting select steps by.
var batchSteps = []string{
	"ReadLake", "DecodeEvents", "DedupEvents", "KeepCoveredDays", "LeaveOutFutureEvents", "ComputeMetrics",
	"ComputeSessions", "KeepCoveredSessions", "WriteEvents", "WriteMetrics",
	"WriteSessions", "WriteDeadLetters",
}

// streamingSteps are the streaming job's steps by the names streamjob.Build
// gives them. Beyond the console and monitoring, a streaming update
// (--update) matches the running job's steps to the new job's by these
// names: renaming one needs --transform_name_mapping (README.md).
var streamingSteps = []string{
	"ReadPubSub", "ArchiveRaw", "DecodeEvents", "DedupEvents", "ThisRunOnly", "LeaveOutFutureEvents",
	"OnTimeForMetrics", "ComputeMetrics", "OnTimeForSessions", "ComputeSessions",
	"WriteEvents", "WriteMetrics", "WriteSessions", "WriteDeadLetters",
}

// streamingStepsNotOnDataflow are streaming steps that other runners run
// and Dataflow must not: Dataflow's own Pub/Sub source acknowledges the
// messages itself, on its durable commits.
var streamingStepsNotOnDataflow = []string{"AckDurable", "AckMessages", "ReadPubSub/pubsubio.Read"}

// TestBatchJobTranslatesForDataflow builds the batch job (batchjob.Build)
// in this process and translates it with Beam's Dataflow runner and its
// --dry_run flag, offline.
func TestBatchJobTranslatesForDataflow(t *testing.T) {
	stubs := goOffline(t)
	setDryRunFlags(t)
	logged := captureBeamLog(t)

	p, s := beam.NewPipelineWithRoot()
	cfg := batchjob.Config{
		Destination: config.Destination{Project: project, Dataset: "railyard"},
		Lake:        lakeRoot, From: from, To: to,
		SessionGap: batchjob.DefaultSessionGap,
		RunID:      "dry-run",
	}
	if err := batchjob.Build(s, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := beam.Run(ctx, "dataflow", p); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	checkTranslation(t, logged(), batchTranslation)
	stubs.checkNoCalls(t)
}

// TestBatchCommandDryRun runs the batch command exactly as a user would
// to see the Dataflow job it would submit, and checks that it prints the
// job and calls nothing: not BigQuery (no dataset, tables or views are
// prepared, no coverage is recorded) and nothing outside this machine.
func TestBatchCommandDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the batch command")
	}
	stubs := goOffline(t)
	batch := goBuild(t, "batch", "./pipelines/batch")

	args := []string{
		"--runner=dataflow", "--dry_run",
		"--project=" + project, "--region=" + region,
		"--staging_location=" + stagingLocation, "--temp_location=" + tempLocation,
		"--lake=" + lakeRoot, "--from=" + from, "--to=" + to,
	}
	out, err := runCommand(t, batch, args...)
	if err != nil {
		stubs.checkNoCalls(t)
		t.Fatalf("batch %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 20))
	}
	checkTranslation(t, logMessages(out), batchTranslation)
	stubs.checkNoCalls(t)
}

// streamingConfig is the streaming job the tests translate, with the
// flags' defaults.
func streamingConfig() streamjob.Config {
	cfg := streamjob.DefaultConfig()
	cfg.Project, cfg.Runner = project, "dataflow"
	cfg.Subscription, cfg.Lake, cfg.RunID = subscription, lakeRoot, "dry-run"
	return cfg
}

// TestStreamingJobTranslatesForDataflow builds the streaming job
// (streamjob.Build, as a first run's) in this process and translates it
// with Beam's Dataflow runner and its --dry_run flag, offline.
func TestStreamingJobTranslatesForDataflow(t *testing.T) {
	stubs := goOffline(t)
	setDryRunFlags(t)
	setFlag(t, "job_name", streamingJob)
	logged := captureBeamLog(t)

	p, s := beam.NewPipelineWithRoot()
	if err := streamjob.Build(s, streamingConfig(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := beam.Run(ctx, "dataflow", p); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	_, model := checkTranslation(t, logged(), streamingTranslation)
	t.Run("reads Pub/Sub with Dataflow's own source", func(t *testing.T) {
		checkNativePubSubRead(t, model)
	})
	stubs.checkNoCalls(t)
}

// TestStreamingStepNamesForUpdate pins the streaming job's top-level
// steps, by which a streaming update (--update) matches the running job's
// steps to the new job's, in the two graphs the job has: a first run's,
// and a recovering run's (a recovery floor, found in events_speed at
// start, adds RecoverOpenWindows before DedupEvents). README.md lists
// them: change both together.
func TestStreamingStepNamesForUpdate(t *testing.T) {
	firstRun := []string{
		"ArchiveRaw", "CollectDeadLetters", "ComputeMetrics", "ComputeSessions", "DecodeEvents", "DedupEvents",
		"LeaveOutFutureEvents", "OnTimeForMetrics", "OnTimeForSessions", "ReadPubSub", "ThisRunOnly",
		"WriteDeadLetters", "WriteEvents", "WriteMetrics", "WriteSessions",
	}
	recovering := append(slices.Clone(firstRun), "RecoverOpenWindows")
	slices.Sort(recovering)
	for _, tc := range []struct {
		name  string
		floor int64
		want  []string
	}{
		{"of a first run", 0, firstRun},
		{"of a recovering run", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), recovering},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			if err := streamjob.Build(s, streamingConfig(), tc.floor); err != nil {
				t.Fatal(err)
			}
			edges, _, err := p.Build()
			if err != nil {
				t.Fatal(err)
			}
			model, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:default:v1"}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range model.GetRootTransformIds() {
				got = append(got, model.GetComponents().GetTransforms()[id].GetUniqueName())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("top-level steps %q, want %q (README.md, \"Update\")", got, tc.want)
			}
		})
	}
}

// launcherFlags is the command line a Dataflow Flex Template launcher
// gives the job's binary besides the template's parameters (the launcher
// sorts them; here, for a test, without a network or service account):
// it names Beam's runner DataflowRunner and, with --template_location,
// has the binary write the job for the launcher to submit, not submit it.
// Source: the Go launcher's command line as a Beam SDK's test reproduces
// it; not observed here (README.md, "What is verified").
func launcherFlags(jobName string) []string {
	return []string{
		"--job_name=" + jobName,
		"--project=" + project,
		"--region=" + region,
		"--runner=DataflowRunner",
		"--staging_location=" + stagingLocation,
		"--temp_location=" + tempLocation,
		"--template_location=" + stagingLocation + "/template_launches/dry-run/job_object",
	}
}

// TestStreamingCommandDryRun runs the streaming command with the command
// line a Flex Template launcher gives it, plus --dry_run, and checks that
// it prints the streaming job and calls nothing: not BigQuery (no dataset,
// tables or views are prepared, no recovery floor is read), not Pub/Sub,
// and nothing outside this machine. The command is built as the Flex
// Template image builds it (static, linux/amd64 where the test runs
// there), so it names itself the worker binary.
func TestStreamingCommandDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the streaming command")
	}
	stubs := goOffline(t)
	streaming := goBuild(t, "streaming", "./pipelines/streaming", "CGO_ENABLED=0")

	args := append(launcherFlags(streamingJob), "--dry_run",
		"--subscription="+subscription, "--lake="+lakeRoot)
	out, err := runCommand(t, streaming, args...)
	if err != nil {
		stubs.checkNoCalls(t)
		t.Fatalf("streaming %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 20))
	}
	job, model := checkTranslation(t, logMessages(out), streamingTranslation)
	t.Run("reads Pub/Sub with Dataflow's own source", func(t *testing.T) {
		checkNativePubSubRead(t, model)
	})
	t.Run("names itself the worker binary", func(t *testing.T) {
		if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
			t.Skipf("a %s/%s build is not a Dataflow worker", runtime.GOOS, runtime.GOARCH)
		}
		if got := pipelineOptions(t, job).Go.Flags.WorkerBinary; got != streaming {
			t.Errorf("worker_binary %q, want the command itself, %s: Beam Go v2.77.0 would otherwise need the go command to build one", got, streaming)
		}
	})
	stubs.checkNoCalls(t)
}

// TestBatchCommandRefusesAFlexTemplateLaunch checks that the batch command
// stops, before any call, when a Flex Template launcher starts it: the
// launcher has it write the job (--template_location) and expects it to
// exit, but the batch job records its days as covered only once its
// pipeline has finished. README.md says how the batch job runs instead.
func TestBatchCommandRefusesAFlexTemplateLaunch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the batch command")
	}
	stubs := goOffline(t)
	batch := goBuild(t, "batch", "./pipelines/batch")

	args := append(launcherFlags("railyard-batch-dry-run"), "--lake="+lakeRoot, "--from="+from, "--to="+to)
	out, err := runCommand(t, batch, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("batch with a launcher's command line: %v, want exit status 2\n%s", err, lastLines(out, 20))
	}
	if want := "--template_location are not supported"; !strings.Contains(out, want) {
		t.Errorf("the batch command said\n%s\nwant it to say %q", lastLines(out, 5), want)
	}
	stubs.checkNoCalls(t)
}

// runCommand runs a built command with args in a scratch TMPDIR and
// returns what it printed.
func runCommand(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s took %s", filepath.Base(bin), time.Since(start).Round(time.Millisecond))
	return out.String(), err
}

// setDryRunFlags sets Beam's flags for a dry run of the job in this
// process, and --update (which -update of this package's golden test
// also sets) to false.
func setDryRunFlags(t *testing.T) {
	t.Helper()
	for name, value := range map[string]string{
		"dry_run":          "true",
		"update":           "false",
		"project":          project,
		"region":           region,
		"staging_location": stagingLocation,
		"temp_location":    tempLocation,
	} {
		setFlag(t, name, value)
	}
}

// translation is what a dry run must show of a job.
type translation struct {
	jobType string   // JOB_TYPE_BATCH or JOB_TYPE_STREAMING
	jobName string   // the Dataflow job name; "" takes Beam's go-job-… name
	steps   []string // steps that must be there, by unique name
	absent  []string // steps that must not be there
}

var batchTranslation = translation{jobType: "JOB_TYPE_BATCH", steps: batchSteps}

var streamingTranslation = translation{
	jobType: "JOB_TYPE_STREAMING", jobName: streamingJob,
	steps: streamingSteps, absent: streamingStepsNotOnDataflow,
}

// checkTranslation checks what a dry run logged: the Dataflow job and the
// Beam pipeline it would submit, and returns the pipeline. Beam Go submits
// to Dataflow's portable job API: the job's steps list stays empty and the
// graph the console shows comes from the pipeline, which Beam stages
// beside the job (sdkPipelineOptions.options.pipelineUrl) and the dry run
// logs.
func checkTranslation(t *testing.T, messages []string, want translation) (*df.Job, *pipepb.Pipeline) {
	t.Helper()
	if !slices.Contains(messages, "Dry-run: not submitting job!") {
		t.Fatalf("the output is not a dry run's: %d log messages, none says it does not submit", len(messages))
	}
	var job *df.Job
	var model *pipepb.Pipeline
	for _, msg := range messages {
		switch {
		case job == nil && strings.HasPrefix(msg, "{"):
			var j df.Job
			if json.Unmarshal([]byte(msg), &j) == nil && j.Type != "" {
				job = &j
			}
		case model == nil && strings.Contains(msg, "root_transform_ids"):
			var m pipepb.Pipeline
			if prototext.Unmarshal([]byte(msg), &m) == nil {
				model = &m
			}
		}
	}
	if job == nil || model == nil {
		t.Fatalf("the dry run logged no Dataflow job (found: %t) or no pipeline (found: %t)", job != nil, model != nil)
	}

	t.Run("is a job of the project, of the right type and name", func(t *testing.T) {
		if job.Type != want.jobType {
			t.Errorf("job type %q, want %s", job.Type, want.jobType)
		}
		if job.ProjectId != project {
			t.Errorf("project %q, want %q", job.ProjectId, project)
		}
		if want.jobName != "" && job.Name != want.jobName {
			t.Errorf("job name %q, want %q (what the alert policies select the job by)", job.Name, want.jobName)
		}
	})

	t.Run("stages under --staging_location and keeps temporary files under --temp_location", func(t *testing.T) {
		env := job.Environment
		if env == nil {
			t.Fatal("the job has no environment")
		}
		if env.TempStoragePrefix != tempLocation {
			t.Errorf("temp storage prefix %q, want %q", env.TempStoragePrefix, tempLocation)
		}
		opts := pipelineOptions(t, job).Dataflow
		if !strings.HasPrefix(opts.PipelineURL, stagingLocation+"/") {
			t.Errorf("pipeline staged at %q, want under %s", opts.PipelineURL, stagingLocation)
		}
		if opts.Region != region {
			t.Errorf("region %q, want %q", opts.Region, region)
		}
	})

	t.Run("names the steps users rely on", func(t *testing.T) {
		names := map[string]bool{}
		for _, tr := range model.GetComponents().GetTransforms() {
			names[tr.GetUniqueName()] = true
		}
		for _, step := range want.steps {
			if !names[step] {
				t.Errorf("no step named %s in the translated pipeline", step)
			}
		}
		for _, step := range want.absent {
			if names[step] {
				t.Errorf("a step named %s is in the translated pipeline; it must not run on Dataflow", step)
			}
		}
	})
	return job, model
}

// options are the pipeline options a Dataflow job carries: Dataflow's
// own, and the Go SDK's (every flag given on the command line).
type options struct {
	Dataflow struct {
		PipelineURL string `json:"pipelineUrl"`
		Region      string `json:"region"`
	} `json:"options"`
	Go struct {
		Flags struct {
			WorkerBinary string `json:"worker_binary"`
		} `json:"options"`
	} `json:"beam:option:go_options:v1"`
}

func pipelineOptions(t *testing.T, job *df.Job) options {
	t.Helper()
	var opts options
	if err := json.Unmarshal(job.Environment.SdkPipelineOptions, &opts); err != nil {
		t.Fatalf("sdkPipelineOptions: %v", err)
	}
	return opts
}

// checkNativePubSubRead checks that the pipeline reads the subscription
// with Dataflow's own Pub/Sub source, the URN Beam's io/pubsubio.Read
// emits, inside the ReadPubSub step.
func checkNativePubSubRead(t *testing.T, model *pipepb.Pipeline) {
	t.Helper()
	var reads []string
	for _, tr := range model.GetComponents().GetTransforms() {
		if tr.GetSpec().GetUrn() != pubsubio.NativeReadURN {
			continue
		}
		reads = append(reads, tr.GetUniqueName())
		var payload pipepb.PubSubReadPayload
		if err := proto.Unmarshal(tr.GetSpec().GetPayload(), &payload); err != nil {
			t.Fatalf("%s: payload: %v", tr.GetUniqueName(), err)
		}
		if payload.GetSubscription() != subscription || !payload.GetWithAttributes() {
			t.Errorf("%s reads %q with attributes %t, want %s with attributes", tr.GetUniqueName(), payload.GetSubscription(), payload.GetWithAttributes(), subscription)
		}
		if !strings.HasPrefix(tr.GetUniqueName(), "ReadPubSub/") {
			t.Errorf("the Pub/Sub source is %s, want it inside the step ReadPubSub", tr.GetUniqueName())
		}
	}
	if len(reads) != 1 {
		t.Errorf("%d transforms of URN %s (%v), want exactly one: Dataflow's own Pub/Sub source", len(reads), pubsubio.NativeReadURN, reads)
	}
}

// network records what reaches the services a dry run must not call.
type network struct {
	bigQuery, pubSub, outside *recorder
}

// goOffline points this process (and so its children) at stand-ins: an
// in-process Cloud Storage emulator for the staging bucket check Beam's
// Dataflow runner makes, recorders in place of BigQuery (REST and gRPC)
// and Pub/Sub (gRPC) that refuse every call, and a recording HTTP proxy
// for everything else,
// so that a call to the internet is caught rather than made. (A client that
// ignores HTTPS_PROXY would still get out; Google's Go clients honour it.)
func goOffline(t *testing.T) *network {
	t.Helper()
	gcs, err := emulators.StartStorage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	gcs.CreateBucket(bucket)
	n := &network{
		bigQuery: newRecorder(t, "BigQuery"),
		pubSub:   &recorder{name: "Pub/Sub"},
		outside:  newRecorder(t, "the internet (through HTTPS_PROXY)"),
	}
	grpcAddr := n.bigQuery.listenRaw(t)
	for k, v := range map[string]string{
		"PUBSUB_EMULATOR_HOST":           n.pubSub.listenRaw(t),
		"STORAGE_EMULATOR_HOST":          gcs.Host,
		"BIGQUERY_EMULATOR_HOST":         n.bigQuery.host,
		"BIGQUERY_STORAGE_EMULATOR_HOST": grpcAddr,
		"HTTPS_PROXY":                    "http://" + n.outside.host,
		"HTTP_PROXY":                     "http://" + n.outside.host,
		"NO_PROXY":                       "",
		"GOOGLE_APPLICATION_CREDENTIALS": filepath.Join(t.TempDir(), "no-credentials.json"),
	} {
		t.Setenv(k, v)
	}
	return n
}

func (n *network) checkNoCalls(t *testing.T) {
	t.Helper()
	for _, r := range []*recorder{n.bigQuery, n.pubSub, n.outside} {
		if calls := r.calls(); len(calls) > 0 {
			t.Errorf("the dry run called %s %d times, first %s", r.name, len(calls), calls[0])
		}
	}
}

// recorder is a local server that answers every HTTP request with 403
// Forbidden (which Google's clients do not retry) and remembers it.
type recorder struct {
	name string
	host string
	mu   sync.Mutex
	seen []string
}

func newRecorder(t *testing.T, name string) *recorder {
	r := &recorder{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.add(fmt.Sprintf("%s %s%s", req.Method, req.Host, req.URL.RequestURI()))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"error":{"code":403,"message":"a dry run must not call %s","errors":[{"reason":"accessDenied"}]}}`, name)
	}))
	t.Cleanup(srv.Close)
	r.host = srv.Listener.Addr().String()
	return r
}

// listenRaw opens a plain TCP listener that records every connection
// (for gRPC clients) and closes it at once.
func (r *recorder) listenRaw(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			r.add("gRPC connection from " + c.RemoteAddr().String())
			c.Close()
		}
	}()
	return lis.Addr().String()
}

func (r *recorder) add(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, call)
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// setFlag sets one of Beam's command-line flags for a test and restores it
// after.
func setFlag(t *testing.T, name, value string) {
	t.Helper()
	f := flag.Lookup(name)
	if f == nil {
		t.Fatalf("no flag --%s: is Beam's Dataflow runner linked in?", name)
	}
	old := f.Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set(name, old) })
}

// captureBeamLog sends Beam's log to memory until the test ends, and
// returns a function that reads the messages logged so far.
func captureBeamLog(t *testing.T) func() []string {
	l := &memoryLog{}
	beamlog.SetLogger(l)
	t.Cleanup(func() { beamlog.SetLogger(&beamlog.Structural{}) })
	return func() []string {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.Clone(l.msgs)
	}
}

type memoryLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *memoryLog) Log(_ context.Context, _ beamlog.Severity, _ int, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
}

// logMessages returns the msg of each log line a Beam Go program writes
// (log/slog's text format, which beam.Init sets up).
func logMessages(out string) []string {
	var msgs []string
	for _, line := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(line, " msg=")
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, `"`) {
			quoted, err := strconv.QuotedPrefix(rest)
			if err != nil {
				continue
			}
			rest, _ = strconv.Unquote(quoted)
		} else {
			rest, _, _ = strings.Cut(rest, " ")
		}
		msgs = append(msgs, rest)
	}
	return msgs
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 500 {
			lines[i] = l[:500] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// commands are the commands the tests built, each once per test binary.
var commands struct {
	mu    sync.Mutex
	dir   string
	built map[string]string // by pkg and env
}

// goBuild builds pkg, a path relative to the module root, with the go
// command on PATH and env added to this process's, so the build cache is
// the developer's own, and returns the binary; a second call for the same
// build returns the first's. A warm cache links in seconds; a cold one on
// a busy 2-core machine took minutes here (CGO_ENABLED=0 is a cache of its
// own where cgo is on by default: 15 minutes cold, on a loaded machine).
func goBuild(t *testing.T, name, pkg string, env ...string) string {
	t.Helper()
	commands.mu.Lock()
	defer commands.mu.Unlock()
	key := strings.Join(append([]string{pkg}, env...), " ")
	if bin, ok := commands.built[key]; ok {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	bin := filepath.Join(commands.dir, fmt.Sprintf("%s-%d", name, len(commands.built)))
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %s", key, time.Since(start).Round(time.Millisecond))
	if commands.built == nil {
		commands.built = map[string]string{}
	}
	commands.built[key] = bin
	return bin
}
