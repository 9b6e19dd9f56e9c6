package dataflow

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	df "google.golang.org/api/dataflow/v1b3"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/runners/emulators"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init() // Beam's runners refuse to run before it
	os.Exit(m.Run())
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
)

// stepNames are the batch job's steps by the names users rely on: the
// names batchjob.Build gives them, which the Dataflow console shows and
// its monitoring and alerting select steps by.
var stepNames = []string{
	"ReadLake", "DecodeEvents", "DedupEvents", "ComputeMetrics", "ComputeSessions",
	"WriteEvents", "WriteMetrics", "WriteSessions", "WriteDeadLetters",
}

// TestBatchJobTranslatesForDataflow builds the batch job (batchjob.Build)
// in this process and translates it with Beam's Dataflow runner and its
// --dry_run flag, offline.
func TestBatchJobTranslatesForDataflow(t *testing.T) {
	stubs := goOffline(t)
	for name, value := range map[string]string{
		"dry_run":          "true",
		"project":          project,
		"region":           region,
		"staging_location": stagingLocation,
		"temp_location":    tempLocation,
	} {
		setFlag(t, name, value)
	}
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
	checkTranslation(t, logged())
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
	batch := goBuild(t, t.TempDir(), "batch", "./pipelines/batch")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, batch,
		"--runner=dataflow", "--dry_run",
		"--project="+project, "--region="+region,
		"--staging_location="+stagingLocation, "--temp_location="+tempLocation,
		"--lake="+lakeRoot, "--from="+from, "--to="+to,
	)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("the dry run took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		stubs.checkNoCalls(t)
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, lastLines(out.String(), 20))
	}
	checkTranslation(t, logMessages(out.String()))
	stubs.checkNoCalls(t)
}

// checkTranslation checks what a dry run logged: the Dataflow job and the
// Beam pipeline it would submit. Beam Go submits to Dataflow's portable
// job API: the job's steps list stays empty and the graph the console
// shows comes from the pipeline, which Beam stages beside the job
// (sdkPipelineOptions.options.pipelineUrl) and the dry run logs.
func checkTranslation(t *testing.T, messages []string) {
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

	t.Run("is a batch job of the project", func(t *testing.T) {
		if job.Type != "JOB_TYPE_BATCH" {
			t.Errorf("job type %q, want JOB_TYPE_BATCH", job.Type)
		}
		if job.ProjectId != project {
			t.Errorf("project %q, want %q", job.ProjectId, project)
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
		var opts struct {
			Options struct {
				PipelineURL string `json:"pipelineUrl"`
				Region      string `json:"region"`
			} `json:"options"`
		}
		if err := json.Unmarshal(env.SdkPipelineOptions, &opts); err != nil {
			t.Fatalf("sdkPipelineOptions: %v", err)
		}
		if !strings.HasPrefix(opts.Options.PipelineURL, stagingLocation+"/") {
			t.Errorf("pipeline staged at %q, want under %s", opts.Options.PipelineURL, stagingLocation)
		}
		if opts.Options.Region != region {
			t.Errorf("region %q, want %q", opts.Options.Region, region)
		}
	})

	t.Run("names the steps users rely on", func(t *testing.T) {
		names := map[string]bool{}
		for _, tr := range model.GetComponents().GetTransforms() {
			names[tr.GetUniqueName()] = true
		}
		for _, want := range stepNames {
			if !names[want] {
				t.Errorf("no step named %s in the translated pipeline", want)
			}
		}
	})
}

// network records what reaches the services a dry run must not call.
type network struct {
	bigQuery, outside *recorder
}

// goOffline points this process (and so its children) at stand-ins: an
// in-process Cloud Storage emulator for the staging bucket check Beam's
// Dataflow runner makes, a recorder in place of BigQuery (REST and gRPC)
// that refuses every call, and a recording HTTP proxy for everything else,
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
	n := &network{bigQuery: newRecorder(t, "BigQuery"), outside: newRecorder(t, "the internet (through HTTPS_PROXY)")}
	grpcAddr := n.bigQuery.listenRaw(t)
	for k, v := range map[string]string{
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
	for _, r := range []*recorder{n.bigQuery, n.outside} {
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

// goBuild builds pkg, a path relative to the module root, into dir/name
// with the go command on PATH, so the build cache is the developer's own.
// A warm cache links in seconds; a cold one on a busy 2-core machine took
// minutes here.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	return bin
}
