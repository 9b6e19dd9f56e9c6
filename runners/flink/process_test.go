//go:build unix

package flink

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// moduleRoot is the root of the Railyard module, seen from this package.
var moduleRoot = filepath.Join("..", "..")

// buildTimeout bounds one go build: a warm cache links in seconds, a cold
// one on a busy 2-core machine took over four minutes here.
const buildTimeout = 10 * time.Minute

// goBuild builds pkg (relative to the module root, or an import path the
// module's go.mod resolves) into dir/name with the go command on PATH, so
// the build cache is the developer's own.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	bin := filepath.Join(dir, name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg)
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	return bin
}

// process is a child process that leads its own process group, with its
// output in a file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, set before done closes
}

// startProcess starts bin with args and env added to this process's
// environment, writing its output to a file in a temporary directory.
// TMPDIR points into that directory too, so whatever the child leaves
// behind goes with the test.
func startProcess(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+dir), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// wait waits up to timeout for the process to exit by itself and returns
// its exit status; past the timeout it kills the process group.
func (p *process) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.stop()
		return fmt.Errorf("%s did not finish within %s and was killed", p.name, timeout)
	}
}

// stop kills the process's whole group and waits for the process to exit.
func (p *process) stop() {
	select {
	case <-p.done: // exited; its group id may belong to someone else by now
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // ESRCH: already gone
	<-p.done
}

// exited is closed once the process has exited.
func (p *process) exited() <-chan struct{} { return p.done }

// logTail returns the last n lines of the process's output that keep
// matches, for a failure message.
func (p *process) logTail(n int, keep func(string) bool) string {
	f, err := os.Open(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if keep(sc.Text()) {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// notable keeps the lines of a Beam or Prism log worth reading after a
// failure: warnings, errors and anything that is not a structured log
// line (a panic, a flag error). Prism logs every bundle at INFO.
func notable(line string) bool {
	if !strings.HasPrefix(line, "time=") {
		return strings.TrimSpace(line) != ""
	}
	return strings.Contains(line, " level=WARN ") || strings.Contains(line, " level=ERROR ")
}
