package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/collect/collector"
)

// TestBinaryLinksNoEmulator keeps the emulators out of the command.
func TestBinaryLinksNoEmulator(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "/internal/emulators") || strings.HasSuffix(dep, "/pstest") || strings.Contains(dep, "fake-gcs-server") {
			t.Errorf("the collect command links %s", dep)
		}
	}
}

// TestSIGTERM runs the command against pstest, posts an event, and sends
// SIGTERM: the process ends cleanly within --shutdown_timeout, the event
// published.
func TestSIGTERM(t *testing.T) {
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Host)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "railyard-test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := "projects/railyard-test/topics/events"
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "collect")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--topic="+topic, "--port="+port, "--shutdown_timeout=5s")
	var logs strings.Builder
	cmd.Stderr = &logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	url := "http://127.0.0.1:" + port
	var ready bool
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		if res, err := http.Get(url + "/readyz"); err == nil {
			res.Body.Close()
			ready = res.StatusCode == 200
		}
	}
	if !ready {
		t.Fatalf("not ready within 20s; logs:\n%s", logs.String())
	}
	ev := `{"event_id":"t-1","event_type":"page.view","event_time":"2026-11-01T10:00:00Z","source":"web-shop"}`
	res, err := http.Post(url+"/v1/events", "application/json", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; logs:\n%s", err, logs.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	if !strings.Contains(logs.String(), `"msg":"collection edge stopped"`) || strings.Contains(logs.String(), "page.view") {
		t.Errorf("logs: want JSON lines with the stop and no payload:\n%s", logs.String())
	}
	var found bool
	for _, m := range ps.Server.Messages() {
		found = found || string(m.Data) == ev
	}
	if !found {
		t.Errorf("the event is not in Pub/Sub")
	}
}

// TestReadmeListsEveryFlag keeps the README's flags table of the
// collection edge true to the command's flags.
func TestReadmeListsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	collector.RegisterFlags(fs)
	testenv.CheckReadmeFlags(t, "Running the collection edge", fs, "port", "debug")
}
