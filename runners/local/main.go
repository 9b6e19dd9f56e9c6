// Command local runs Railyard's two layers on this machine with nothing but
// Go: it starts the Pub/Sub, Cloud Storage and BigQuery emulators, loads
// the sample lake from testdata/, sends a live stream in real time over
// HTTP through the collection edge (pipelines/collect), which publishes it
// to Pub/Sub, while the streaming job (speed layer) reads it on Prism,
// runs the batch job (batch layer) over the whole lake (the history and what the stream
// archived), then prints both jobs' counters with their reconciliation,
// the streamed minutes as each layer counted them, and the serving views.
// It stops every emulator it started, also on Ctrl-C; with --keep it
// leaves them running and prints how to reach them until Ctrl-C.
//
//	go run ./runners/local [--keep] [--stream_messages=3000 --stream_rate=200]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
)

// options are the command's flags.
type options struct {
	sampleDir      string
	project        string
	dataset        string
	bucket         string
	streamMessages int
	streamRate     int
	stopAfterIdle  time.Duration
	keep           bool
}

var opts options

func init() {
	flag.StringVar(&opts.sampleDir, "sample", "", "Lake folder to load as the history (default: testdata/sample/lake of this checkout).")
	flag.StringVar(&opts.project, "emulator_project", "railyard-local", "Project id inside the emulators.")
	flag.StringVar(&opts.dataset, "dataset", "railyard", "BigQuery dataset to write.")
	flag.StringVar(&opts.bucket, "bucket", "railyard-lake", "Emulated Cloud Storage bucket for the lake.")
	flag.IntVar(&opts.streamMessages, "stream_messages", 3000, "Messages of the live stream to publish (with duplicates, bad records and late events); 0 runs the batch layer only.")
	flag.IntVar(&opts.streamRate, "stream_rate", 200, "Messages a second the stream is published at, in real time.")
	flag.DurationVar(&opts.stopAfterIdle, "stop_after_idle", 10*time.Second, "The streaming job ends once the subscription has been idle this long and everything read is written (on Prism at least 10 early firings, 10s).")
	flag.BoolVar(&opts.keep, "keep", false, "After the jobs, leave the emulators running, print their addresses and commands to query them, and wait for Ctrl-C.")
}

// Names inside the emulators.
const (
	topicName        = "events"
	subscriptionName = "railyard-speed"
)

func (o options) topic() string { return "projects/" + o.project + "/topics/" + topicName }
func (o options) subscription() string {
	return "projects/" + o.project + "/subscriptions/" + subscriptionName
}
func (o options) lake() string { return "gs://" + o.bucket }
func (o options) destination() config.Destination {
	return config.Destination{Project: o.project, Dataset: o.dataset}
}
func (o options) streaming() bool { return o.streamMessages > 0 }

// streamConfig is the streaming job of this run: the defaults, reading
// the local subscription and archiving to the local lake, ending once idle.
func (o options) streamConfig(runID string) streamjob.Config {
	cfg := streamjob.DefaultConfig()
	cfg.Destination = o.destination()
	cfg.Subscription = o.subscription()
	cfg.Lake = o.lake()
	cfg.StopAfterIdle = o.stopAfterIdle
	cfg.RunID = runID
	return cfg
}

// batchConfig is one batch run over the lake's event days from..to.
func (o options) batchConfig(runID, from, to string) batchjob.Config {
	return batchjob.Config{
		Destination: o.destination(),
		Lake:        o.lake(), From: from, To: to,
		SessionGap: batchjob.DefaultSessionGap,
		RunID:      runID,
	}
}

// jobFlags renames the jobs' flags in their validation messages to the
// flags of this command that set them.
var jobFlags = strings.NewReplacer("--project=", "--emulator_project=", "--lake=", "--bucket=")

// validate checks the flags before anything starts and returns every
// problem, each naming its flag. The jobs' own validation checks what
// they will be given, so this command cannot drift from them.
func (o options) validate() error {
	var errs []error
	if o.streamMessages < 0 || o.streamMessages > 1_000_000 {
		errs = append(errs, fmt.Errorf("--stream_messages=%d must be between 0 (no stream) and 1,000,000", o.streamMessages))
	}
	if o.streaming() {
		if o.streamRate < 1 || o.streamRate > 100_000 {
			errs = append(errs, fmt.Errorf("--stream_rate=%d must be between 1 and 100,000 messages a second", o.streamRate))
		}
		if o.stopAfterIdle <= 0 {
			errs = append(errs, fmt.Errorf("--stop_after_idle=%v must be positive: it is how the streaming job ends", o.stopAfterIdle))
		} else if err := o.streamConfig("local-check").Validate(); err != nil {
			errs = append(errs, errors.New(jobFlags.Replace(err.Error())))
		}
	}
	if err := o.batchConfig("local-check", "2026-11-01", "2026-11-01").Validate(); err != nil {
		errs = append(errs, errors.New(jobFlags.Replace(err.Error())))
	}
	return errors.Join(dedupErrors(errs)...)
}

// dedupErrors drops repeated messages: both jobs check the destination.
func dedupErrors(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, err := range errs {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !seen[line] {
				seen[line] = true
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}

func main() {
	flag.Parse()
	beam.Init()
	// Warnings and errors only on stderr; silenced once interrupted, when
	// the jobs' goroutines only complain about the emulators going away.
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level})))

	if err := opts.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "local: %v\nRun with -help for the flags.\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() {
		level.Set(slog.LevelError + 100)
		stop() // a second Ctrl-C ends the process at once; the BigQuery emulator dies with it
	})

	err := run(ctx, os.Stdout, opts)
	switch {
	case err == nil:
		if opts.keep {
			fmt.Println("Stopped the emulators; nothing is left running.")
		}
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "local: interrupted; stopped the jobs and the emulators.")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "local: %v\n", err)
		os.Exit(1)
	}
}

// defaultSampleDir is testdata/sample/lake of the checkout this file is in.
func defaultSampleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "sample", "lake")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sample", "lake")
}

func closeWith(err *error, closeFn func() error) {
	*err = errors.Join(*err, closeFn())
}

// run is the whole local run: emulators, history, speed layer, batch
// layer, report, and with o.keep the wait for Ctrl-C.
func run(ctx context.Context, out io.Writer, o options) (err error) {
	dir := o.sampleDir
	if dir == "" {
		dir = defaultSampleDir()
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("sample lake: %w (give --sample=DIR)", err)
	}
	p := newProgress(out)

	// 1. Emulators, with this process pointed at them.
	p.say("Starting the emulators (Pub/Sub and Cloud Storage in-process, BigQuery as a child process; its first run builds it, which takes minutes)…")
	env, err := startEmulators(ctx, o)
	if err != nil {
		return err
	}
	defer closeWith(&err, env.Close)

	// 2. The history: the committed sample lake.
	n, err := env.gcs.UploadDir(ctx, dir, o.bucket)
	if err != nil {
		return err
	}
	p.say("Loaded %d lake files from %s into %s/raw/ (the history).", n, dir, o.lake())

	// 3. Speed layer: a live stream through the streaming job.
	var speed *speedResult
	if o.streaming() {
		if speed, err = runSpeedLayer(ctx, p, env, o); err != nil {
			return err
		}
	}

	// 4. Batch layer: the whole lake, history and archive.
	batch, err := runBatchLayer(ctx, p, env, o)
	if err != nil {
		return err
	}

	// 5. What each layer did, and what the views serve.
	fmt.Fprintln(out)
	if speed != nil {
		printCounters(out, "Streaming job counters (namespace railyard)", speed.counters)
		r := reconcile(speedLayer, speed.counters)
		fmt.Fprintf(out, "%s\n%s\n\n", r, landedCheck(r, speed.landed))
	}
	printCounters(out, fmt.Sprintf("Batch job counters (namespace railyard; %s)", batch.describe()), batch.counters)
	printReconciliation(out, reconcile(batchLayer, batch.counters))
	if speed != nil {
		if err := printStreamedMinutes(ctx, out, env, o, speed); err != nil {
			return err
		}
	}
	if err := printViews(ctx, out, env.bqClient, o.destination(), batch); err != nil {
		return err
	}
	if err := showReplay(ctx, out, p, o); err != nil {
		return err
	}
	p.say("Done in %s.", p.elapsed())

	// 6. With --keep, leave everything up until Ctrl-C.
	if o.keep {
		return keepRunning(ctx, out, env, o, batch)
	}
	return nil
}
