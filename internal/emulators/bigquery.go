package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"time"
)

// BigQueryEmulatorVersion is the goccy/bigquery-emulator release the tools
// module beside this package pins; the cached binary is named after it.
const BigQueryEmulatorVersion = "v0.8.1"

// Environment variables that StartBigQuery reads.
const (
	// EnvBigQueryEmulatorBinary names a prebuilt emulator binary to use
	// instead of the cached one.
	EnvBigQueryEmulatorBinary = "RAILYARD_BIGQUERY_EMULATOR"
	// EnvCache names the directory that caches built tools; the default
	// is os.UserCacheDir()/railyard.
	EnvCache = "RAILYARD_CACHE"
	// EnvBigQueryEmulatorLog names a file the emulator's output is
	// appended to and kept after Close. By default the log lives in the
	// emulator's temporary directory and goes with it.
	EnvBigQueryEmulatorLog = "RAILYARD_BIGQUERY_EMULATOR_LOG"
)

const (
	bigQueryEmulatorPackage = "github.com/goccy/bigquery-emulator/cmd/bigquery-emulator"
	bigQueryStartTimeout    = time.Minute
)

var listenLine = regexp.MustCompile(`\[bigquery-emulator\] (REST|gRPC) server listening at (\S+)`)

// BigQuery is goccy/bigquery-emulator running as a child process on
// 127.0.0.1. It serves the BigQuery REST API on Host and the Storage Read
// and Write APIs (gRPC) on GRPCHost.
type BigQuery struct {
	// Project is the one project the emulator serves.
	Project string
	// Host is the REST host:port, the value of BIGQUERY_EMULATOR_HOST.
	Host string
	// GRPCHost is the gRPC host:port, the value of
	// BIGQUERY_STORAGE_EMULATOR_HOST.
	GRPCHost string
	// LogPath is the file that holds the emulator's output.
	LogPath string

	dir       string // temporary directory: database, log
	proc      *os.Process
	done      chan struct{} // closed once the process has exited and been reaped
	waitErr   error         // the process's exit status, set before done closes
	closeOnce sync.Once
	closeErr  error
}

// StartBigQuery starts the BigQuery emulator for project on free ports of
// 127.0.0.1 and returns once it answers REST requests. ctx bounds finding
// or building the binary and the start; the emulator runs until Close.
//
// The binary is, in order: the file named by $RAILYARD_BIGQUERY_EMULATOR;
// the cached build <cache>/bigquery-emulator-v0.8.1, where <cache> is
// $RAILYARD_CACHE or os.UserCacheDir()/railyard; or, when neither exists,
// a fresh build from the tools module beside this package's source (minutes
// and gigabytes cold; parallel callers wait for one build under a lock).
//
// The emulator runs in its own process group and, on Linux, is killed by
// the kernel if this process dies first, so a crashed test leaves nothing
// behind. Its database and log live in a temporary directory removed by
// Close.
func StartBigQuery(ctx context.Context, project string) (*BigQuery, error) {
	if project == "" {
		return nil, errors.New("bigquery emulator: project is empty")
	}
	bin, err := BigQueryEmulatorBinary(ctx)
	if err != nil {
		return nil, fmt.Errorf("bigquery emulator: %w", err)
	}
	dir, err := os.MkdirTemp("", "railyard-bigquery-")
	if err != nil {
		return nil, fmt.Errorf("bigquery emulator: %w", err)
	}
	b := &BigQuery{Project: project, dir: dir, done: make(chan struct{}), LogPath: filepath.Join(dir, "emulator.log")}
	if p := os.Getenv(EnvBigQueryEmulatorLog); p != "" {
		b.LogPath = p
	}
	if err := b.start(ctx, bin); err != nil {
		b.Close()
		return nil, fmt.Errorf("bigquery emulator: %w", err)
	}
	return b, nil
}

func (b *BigQuery) start(ctx context.Context, bin string) error {
	logFile, err := os.OpenFile(b.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	logStart, err := logFile.Seek(0, 2)
	if err != nil {
		return err
	}

	// Port 0: the kernel picks free ports at bind time and the emulator
	// prints the addresses it bound, so two emulators never race for a port.
	cmd := exec.Command(bin,
		"--project", b.Project,
		"--host", "127.0.0.1",
		"--port", "0",
		"--grpc-port", "0",
		"--database", filepath.Join(b.dir, "bigquery.db"),
		"--log-level", "info",
	)
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(), "TMPDIR="+b.dir)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childProcAttr()
	if err := startLocked(cmd, b.done, &b.waitErr); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	b.proc = cmd.Process

	ctx, cancel := context.WithTimeout(ctx, bigQueryStartTimeout)
	defer cancel()
	if err := b.awaitListening(ctx, logStart); err != nil {
		return err
	}
	return b.awaitREST(ctx)
}

// awaitListening reads the addresses the emulator prints once both
// listeners are bound.
func (b *BigQuery) awaitListening(ctx context.Context, from int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if out, err := os.ReadFile(b.LogPath); err == nil && int64(len(out)) >= from {
			for _, m := range listenLine.FindAllSubmatch(out[from:], -1) {
				if string(m[1]) == "REST" {
					b.Host = string(m[2])
				} else {
					b.GRPCHost = string(m[2])
				}
			}
			if b.Host != "" && b.GRPCHost != "" {
				return nil
			}
		}
		select {
		case <-b.done:
			return fmt.Errorf("exited before listening (%v); log %s:\n%s", b.waitErr, b.LogPath, b.LogTail(4<<10))
		case <-ctx.Done():
			return fmt.Errorf("not listening: %w; log %s:\n%s", ctx.Err(), b.LogPath, b.LogTail(4<<10))
		case <-tick.C:
		}
	}
}

// awaitREST polls the datasets list of the project until it answers 200.
func (b *BigQuery) awaitREST(ctx context.Context) error {
	url := fmt.Sprintf("http://%s/bigquery/v2/projects/%s/datasets", b.Host, b.Project)
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-b.done:
			return fmt.Errorf("exited while starting (%v); log %s:\n%s", b.waitErr, b.LogPath, b.LogTail(4<<10))
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Env returns the environment that points Railyard's BigQuery clients here.
func (b *BigQuery) Env() map[string]string {
	return map[string]string{
		"BIGQUERY_EMULATOR_HOST":         b.Host,
		"BIGQUERY_STORAGE_EMULATOR_HOST": b.GRPCHost,
	}
}

// Pid returns the emulator's process id (also its process group id).
func (b *BigQuery) Pid() int {
	if b.proc == nil {
		return 0
	}
	return b.proc.Pid
}

// Exited is closed once the emulator process has exited.
func (b *BigQuery) Exited() <-chan struct{} { return b.done }

// LogTail returns up to the last n bytes of the emulator's log.
func (b *BigQuery) LogTail(n int) string {
	out, err := os.ReadFile(b.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(out) > n {
		out = out[len(out)-n:]
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
	}
	return string(out)
}

// Close kills the emulator's whole process group, waits for it to exit and
// removes its temporary directory. It is safe to call more than once.
func (b *BigQuery) Close() error {
	b.closeOnce.Do(func() {
		if b.proc != nil {
			select {
			case <-b.done: // exited by itself; its group id may be reused by now
			default:
				if err := killGroup(b.proc.Pid); err != nil {
					b.closeErr = fmt.Errorf("bigquery emulator: kill %d: %w", b.proc.Pid, err)
				}
			}
			<-b.done
		}
		if err := os.RemoveAll(b.dir); err != nil {
			b.closeErr = errors.Join(b.closeErr, fmt.Errorf("bigquery emulator: %w", err))
		}
	})
	return b.closeErr
}

// TB is the part of testing.TB that StartBigQueryForTest uses; this
// package does not import testing.
type TB interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// StartBigQueryForTest starts the emulator for a test and stops it when
// the test and its subtests end, even when the test fails or panics. A
// failed test logs the tail of the emulator's log.
func StartBigQueryForTest(t TB, project string) *BigQuery {
	t.Helper()
	b, err := StartBigQuery(t.Context(), project)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bigquery emulator log (%s), last lines:\n%s", b.LogPath, b.LogTail(8<<10))
		}
		if err := b.Close(); err != nil {
			t.Logf("%v", err)
		}
	})
	return b
}

// BigQueryEmulatorBinary returns the path of the emulator binary, building
// it into the cache when there is none (4-8 minutes and about 6 GB of
// memory cold). CI calls it once before the tests.
func BigQueryEmulatorBinary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBigQueryEmulatorBinary); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvBigQueryEmulatorBinary, err)
		}
		return p, nil
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "bigquery-emulator-"+BigQueryEmulatorVersion)
	if checkExecutable(bin) == nil {
		return bin, nil
	}
	tools, err := toolsModuleDir()
	if err != nil {
		return "", fmt.Errorf("no binary at %s and no tools module to build one (set $%s): %w", bin, EnvBigQueryEmulatorBinary, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, bin+".lock")
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", bin+".lock", err)
	}
	defer unlock()
	if checkExecutable(bin) == nil { // built by another process while we waited
		return bin, nil
	}
	return bin, buildBigQueryEmulator(ctx, tools, bin)
}

// buildBigQueryEmulator builds the emulator from the tools module into a
// temporary file and renames it into place, so that no reader ever sees a
// half-written binary.
func buildBigQueryEmulator(ctx context.Context, toolsDir, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build the emulator: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(bin), filepath.Base(bin)+".*.tmp")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove

	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp.Name(), bigQueryEmulatorPackage)
	cmd.Dir = toolsDir
	// The tools module's go.sum pins every dependency; flags meant for the
	// caller's build (-race, -cover, a workspace) must not leak in.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", bigQueryEmulatorPackage, toolsDir, err, out)
	}
	return os.Rename(tmp.Name(), bin)
}

func cacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set $%s): %w", EnvCache, err)
	}
	return filepath.Join(d, "railyard"), nil
}

// toolsModuleDir locates the tools module from this file's path at build
// time, which holds for tests and `go run` alike.
func toolsModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source of package emulators")
	}
	dir := filepath.Join(filepath.Dir(file), "tools")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", err
	}
	return dir, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: path, Err: errors.New("not an executable file")}
	}
	return nil
}
