// Cancelling a running job is a data race in Beam Go v2.77.0's SDK
// harness: on shutdown it closes its response channel (harness.go,
// close(respc)) while instruction goroutines may still send on it
// (harness.go, respc <- resp), and its data channel reads one gRPC stream
// from two goroutines (datamgr.go, dataWriter.send during
// removeInstruction). The race detector reports them when a bundle is in
// flight at the cancel, so this test does not build with -race;
// `go test ./transforms/pubsubio/` runs it.

//go:build !race

package pubsubio_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/transforms/pubsubio"
)

func TestRunsUntilCancelledWithoutStopAfterIdle(t *testing.T) {
	const n = 100
	f := newFixture(t, 10*time.Second)
	f.publish(t, testMessages(n))

	p, s := beam.NewPipelineWithRoot()
	readAndAck(s, pubsubio.Config{Subscription: f.sub, PollInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := run(ctx, p)
		done <- err
	}()
	waitAcked(t, f, n, done)

	select {
	case err := <-done:
		t.Fatalf("the pipeline ended on its own while idle: %v", err)
	case <-time.After(3 * time.Second):
	}
	cancel()
	select {
	case err := <-done:
		t.Logf("after the cancel: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the pipeline did not end within 10s of the cancel")
	}
	checkAckedOnce(t, f, 1)
}
