//go:build unix

package flink

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

const (
	testDataset = "universal_e2e"

	// prismPackage is Beam's standalone Prism job server, a tool
	// dependency of the module (the tool line in go.mod).
	prismPackage = "github.com/apache/beam/sdks/v2/go/cmd/prism"

	jobServerStartTimeout = 30 * time.Second
	batchJobTimeout       = 3 * time.Minute
)

// TestBatchJobThroughTheJobAPI runs the batch job the way it runs on
// Flink: the command a user types, with --runner=universal and the
// --endpoint of a job server, submitting over Beam's Job API. The job
// server is Prism's standalone one instead of Flink's (Docker is not
// needed); the workers run in the submitting process (LOOPBACK), so they
// see the emulators' environment. It then checks what landed in BigQuery
// against the committed sample's manifest, and that the job ran on that
// job server.
func TestBatchJobThroughTheJobAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Prism's job server and the batch command, starts the emulators and runs the batch job")
	}
	m := readManifest(t)
	bins := t.TempDir()
	prism := goBuild(t, bins, "prism", prismPackage)
	batch := goBuild(t, bins, "batch", "./pipelines/batch")

	te := testenv.Start(t, testenv.Emulators{Storage: true, BigQuery: true})
	lakeRoot := te.SampleLake(t, "lake")
	db := te.Dataset(testDataset)
	endpoint := startJobServer(t, prism)

	const jobName = "railyard-batch-universal"
	runID := "universal-" + time.Now().UTC().Format("20060102t150405")
	gap := time.Duration(m.SessionGapSeconds) * time.Second
	days := m.Days
	start := time.Now()
	job := startProcess(t, "batch", nil, batch,
		"--runner=universal",
		"--endpoint="+endpoint,
		"--environment_type=LOOPBACK",
		"--job_name="+jobName,
		"--project="+testenv.Project,
		"--dataset="+testDataset,
		"--lake="+lakeRoot,
		"--from="+days[0],
		"--to="+days[len(days)-1],
		"--session_gap="+gap.String(),
		"--run_id="+runID,
	)
	if err := job.wait(batchJobTimeout); err != nil {
		t.Fatalf("batch job on the job server at %s: %v\nits output (warnings, errors, other lines):\n%s",
			endpoint, err, job.logTail(40, notable))
	}
	t.Logf("batch job ran in %s", time.Since(start).Round(time.Millisecond))

	t.Run("the job ran to DONE on the job server it was sent to", func(t *testing.T) {
		state, err := jobState(t.Context(), endpoint, jobName)
		if err != nil {
			t.Fatal(err)
		}
		if state != jobpb.JobState_DONE {
			t.Errorf("job %s is %s on %s, want DONE", jobName, state, endpoint)
		}
	})

	for _, tc := range []struct {
		name, table, where string
		want               int
	}{
		{"events_batch holds every valid unique event", schemas.TableEventsBatch, "", m.Lake.ValidUnique},
		{"dead_letter holds every bad record of the lake", schemas.TableDeadLetter, "layer = 'batch'", m.Lake.DeadLetters},
		{"metrics_minute_batch holds a row per minute and dimensions", schemas.TableMetricsMinuteBatch, "", len(sample.MetricsMinute(m.Events))},
		{"sessions_batch holds every session", schemas.TableSessionsBatch, "", len(sample.Sessions(m.Events, gap))},
		{"batch_coverage records each batch table for each day of the run", schemas.TableBatchCoverage,
			"run_id = '" + runID + "'", len(schemas.BatchTables) * len(days)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sql := "SELECT COUNT(*) FROM {ds}." + tc.table
			if tc.where != "" {
				sql += " WHERE " + tc.where
			}
			if got := db.One(t, sql); got != fmt.Sprint(tc.want) {
				t.Errorf("%s has %s rows (where %q), the manifest implies %d", tc.table, got, tc.where, tc.want)
			}
		})
	}
}

// readManifest reads the committed sample's manifest: what a correct run
// over testdata/sample/lake writes.
func readManifest(t *testing.T) sample.Manifest {
	t.Helper()
	f, err := os.Open(testenv.Path(t, "testdata", "sample", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := sample.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Days) == 0 {
		t.Fatal("the sample manifest covers no day")
	}
	return m
}

// listening is the line Prism's job server logs once it has bound its port.
var listening = regexp.MustCompile(`msg="Serving JobManagement" endpoint=(\S+)`)

// startJobServer starts Prism's standalone job server on a port the kernel
// picks (read back from its log, so two tests never race for a port),
// waits until its Job API answers and returns its endpoint. The server and
// its process group are killed when the test ends; should the test
// process die first, the server shuts itself down once idle.
func startJobServer(t *testing.T, bin string) string {
	t.Helper()
	p := startProcess(t, "prism", nil, bin,
		"--job_port=0",
		"--serve_http=false",
		"--log_kind=text",
		"--idle_shutdown_timeout=2m",
	)
	t.Cleanup(p.stop)
	ctx, cancel := context.WithTimeout(t.Context(), jobServerStartTimeout)
	defer cancel()
	var endpoint string
	for endpoint == "" {
		if out, err := os.ReadFile(p.log); err == nil {
			if m := listening.FindSubmatch(out); m != nil {
				endpoint = string(m[1])
				continue
			}
		}
		if err := pause(ctx, p); err != nil {
			t.Fatalf("prism job server not listening: %v\n%s", err, p.logTail(20, notable))
		}
	}
	var last error
	for {
		_, last = jobState(ctx, endpoint, "")
		if last == nil {
			return endpoint
		}
		if err := pause(ctx, p); err != nil {
			t.Fatalf("prism job server at %s does not answer GetJobs: %v (last: %v)\n%s", endpoint, err, last, p.logTail(20, notable))
		}
	}
}

// pause waits a moment, and fails when ctx ends or p has exited.
func pause(ctx context.Context, p *process) error {
	select {
	case <-p.exited():
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

// jobState asks the job server at endpoint, over the Job API, for the
// state of the job named name; an empty name only checks that it answers.
func jobState(ctx context.Context, endpoint, name string) (jobpb.JobState_Enum, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil || name == "" {
		return 0, err
	}
	var names []string
	for _, j := range resp.GetJobInfo() {
		if j.GetJobName() == name {
			return j.GetState(), nil
		}
		names = append(names, j.GetJobName())
	}
	return 0, fmt.Errorf("the job server at %s knows no job %q (it has %q)", endpoint, name, names)
}
