package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runAsCommand, set in a child process's environment, makes the test
// binary run the batch command's main with the child's arguments.
const runAsCommand = "RAILYARD_TEST_RUN_BATCH_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCommand) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command is one run of the batch command in a child process.
type command struct {
	code   int
	stderr string
}

// runCommand runs the batch command with args, BigQuery pointed at
// bigQuery, and returns its exit code and standard error.
func runCommand(t *testing.T, bigQuery string, args ...string) command {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsCommand+"=1",
		"BIGQUERY_EMULATOR_HOST="+bigQuery, "BIGQUERY_STORAGE_EMULATOR_HOST="+bigQuery)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return command{code: 0, stderr: stderr.String()}
	case errors.As(err, &exit) && ctx.Err() == nil:
		return command{code: exit.ExitCode(), stderr: stderr.String()}
	default:
		t.Fatalf("batch %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		return command{}
	}
}

// TestBatchCommandRejectsBadFlagsBeforeBigQuery runs the batch command
// with a bad --run_id, a bad --lake and an --input of part of a lake day
// against a server that stands in for BigQuery and refuses every
// request: the command must stop with a usage error (exit 2) naming the
// flag, and never call it.
func TestBatchCommandRejectsBadFlagsBeforeBigQuery(t *testing.T) {
	var calls atomic.Int64
	bq := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"error":{"code":400,"message":"no BigQuery call was expected"}}`, http.StatusBadRequest)
	}))
	defer bq.Close()
	host := strings.TrimPrefix(bq.URL, "http://")
	lake := t.TempDir()
	sampleLake := filepath.Join("..", "..", "testdata", "sample", "lake")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a run id with dots is a usage error",
			[]string{"--run_id=2026.11.01", "--lake=" + lake, "--from=2026-11-01", "--to=2026-11-01"},
			`--run_id="2026.11.01" is not a run name: 1-64 letters, digits, _ or -`},
		{"a lake root with a glob character is a usage error",
			[]string{"--run_id=r1", "--lake=" + lake + "/x*", "--from=2026-11-01", "--to=2026-11-01"},
			`holds a glob character (*?[]): --lake names one lake root`},
		{"an input of part of a lake day is a usage error",
			[]string{"--run_id=r1", "--input=" + filepath.Join(sampleLake, "raw", "dt=2026-11-01", "hr=05", "*")},
			"day 2026-11-01 of lake " + sampleLake + ": 2 of its 59 files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			got := runCommand(t, host, append([]string{"--project=railyard-test", "--dataset=flags"}, tc.args...)...)
			if got.code != 2 || !strings.Contains(got.stderr, tc.want) {
				t.Errorf("exit code %d, want 2 with a message containing %q; stderr:\n%s", got.code, tc.want, lastLines(got.stderr, 10))
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("the command made %d BigQuery requests before stopping", n)
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
