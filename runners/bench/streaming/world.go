package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/sample"
)

// The outside world of the job — pstest, fake-gcs-server and the
// publisher — runs in a child process of its own, so that the CPU of the
// bench's process is the job's (Prism and the pipeline) and the
// emulators' is measured apart.
var (
	mode        = flag.String("mode", "", "Internal: \"world\" runs pstest, fake-gcs-server and the publisher for a parent bench.")
	streamStart = flag.Int64("stream_start", 0, "Internal: the stream's start, Unix microseconds, for --mode=world.")
)

const (
	topic = "projects/" + project + "/topics/events"
	sub   = "projects/" + project + "/subscriptions/railyard-speed"
)

// stream returns the messages the bench publishes, and how many unique
// events they hold; parent and child build the same stream from start.
func stream(start time.Time) (msgs []sample.Message, unique int) {
	for m := range sample.Live(sample.LiveConfig{Seed: 1, Start: start, Rate: *rate, LateShare: -1}, *events) {
		msgs = append(msgs, m)
		if m.Kind == sample.KindEvent {
			unique++
		}
	}
	return msgs, unique
}

// world is the child process, seen from the parent: it reads the child's
// reports from its standard output and sends it commands on its standard
// input.
type world struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	env  map[string]string
	done chan error
}

// startWorld starts the child and waits for its emulators.
func startWorld(start time.Time) (*world, error) {
	cmd := exec.Command(os.Args[0], "--mode=world", "--stream_start="+strconv.FormatInt(start.UnixMicro(), 10),
		"--events="+strconv.Itoa(*events), "--rate="+strconv.Itoa(*rate))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulators' process: %w", err)
	}
	w := &world{cmd: cmd, in: in, out: bufio.NewScanner(out), done: make(chan error, 1)}
	if err := w.read(&w.env); err != nil {
		w.Close()
		return nil, fmt.Errorf("the emulators' process did not start: %w", err)
	}
	return w, nil
}

// read reads the child's next report into v.
func (w *world) read(v any) error {
	if !w.out.Scan() {
		return errors.Join(errors.New("the emulators' process ended"), w.out.Err())
	}
	return json.Unmarshal(w.out.Bytes(), v)
}

// Pid is the child's process id.
func (w *world) Pid() int { return w.cmd.Process.Pid }

// publish tells the child to start publishing the stream, paced.
func (w *world) publish() error {
	_, err := io.WriteString(w.in, "publish\n")
	return err
}

// published waits until the child has published the stream, and returns
// how far its publisher fell behind the stream's pace at worst.
func (w *world) published() (time.Duration, error) {
	var r published
	if err := w.read(&r); err != nil {
		return 0, err
	}
	if r.Err != "" {
		return 0, fmt.Errorf("publish: %s", r.Err)
	}
	return r.Behind, nil
}

// Close stops the child: it stops its emulators when its input ends.
func (w *world) Close() error {
	w.in.Close()
	return w.cmd.Wait()
}

// published is the child's report at the end of publishing.
type published struct {
	Behind time.Duration `json:"behind"`
	Err    string        `json:"err,omitempty"`
}

// runWorld is the child: it starts pstest and fake-gcs-server, reports
// their environment, publishes the stream when told to, and stops when
// its input ends.
func runWorld(ctx context.Context) (err error) {
	gcs, err := emulators.StartStorage()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, gcs.Close()) }()
	ps := emulators.StartPubSub()
	defer ps.Close()
	gcs.CreateBucket("lake")
	env := maps.Clone(gcs.Env())
	maps.Copy(env, ps.Env())
	for k, v := range env {
		os.Setenv(k, v)
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(env); err != nil {
		return err
	}
	msgs, _ := stream(time.UnixMicro(*streamStart))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "publish" {
			return fmt.Errorf("unknown command %q", in.Text())
		}
		var r published
		if err := publishStream(ctx, msgs, &r); err != nil {
			r.Err = err.Error()
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return in.Err()
}

func publishStream(ctx context.Context, msgs []sample.Message, r *published) error {
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()
	sent, err := publish.Messages(ctx, client, topic, msgs, true)
	r.Behind = sent.Behind
	return err
}
