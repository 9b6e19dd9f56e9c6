// Command streaming measures the streaming job end to end on this
// machine: it publishes a live stream to pstest at a target rate, runs
// the streaming job on Prism into the BigQuery emulator (and the lake into
// fake-gcs-server), and reports the sustained events/s and the
// event→row-visible latency, with the machine it ran on.
//
//	go run ./runners/bench/streaming --events=100000 --rate=20000
//
// Latency is read from the row count of events_speed (table metadata),
// polled every
// --poll: when the count reaches k, the k-th unique event published has
// (in publish order, roughly) become visible. Its publish time is known,
// so each poll gives one latency sample.
//
// To say where the time goes it runs the job (Prism and the pipeline) in
// its own process, pstest, fake-gcs-server and the publisher in a child
// process, and the BigQuery emulator in another, and prints the CPU time
// of each: the job's, per event, is its cost. --cpuprofile writes the
// job's process's CPU profile.
//
// --source=synthetic replaces pstest and the publisher: the same stream is
// released on schedule inside the job's process (streamjob.RunFrom), so
// the run shows what the job sustains on this machine when Pub/Sub costs
// nothing. The job then acknowledges nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/proc"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
	"github.com/railyard/railyard/transforms/bqsink"
)

var (
	events     = flag.Int("events", 100_000, "How many messages to publish.")
	rate       = flag.Int("rate", 20_000, "Target publish rate, messages a second.")
	shards     = flag.Int("read_shards", streamjob.DefaultReadShards, "Pull loops of the streaming job.")
	poll       = flag.Duration("poll", 250*time.Millisecond, "How often to count the rows of events_speed.")
	archive    = flag.Duration("archive_window", streamjob.DefaultArchiveWindow, "The job's --archive_window: a message stays unacknowledged in pstest until its window is archived.")
	early      = flag.Duration("early_firing", streamjob.DefaultEarlyFiring, "The job's --early_firing.")
	cpuprofile = flag.String("cpuprofile", "", "Write the job's process's CPU profile (Prism and the pipeline) here.")
	source     = flag.String("source", "pubsub", "Where the job reads: \"pubsub\", the stream published to pstest; or \"synthetic\", the same stream released in the job's process on schedule, without pstest or the publisher (the job then acknowledges nothing).")
)

// syntheticStartDelay is how long after the bench starts the synthetic
// source begins releasing the stream: time for the job to start.
const syntheticStartDelay = 8 * time.Second

const project = "railyard-bench"

func main() {
	flag.Parse()
	beam.Init()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if *source != "pubsub" && *source != "synthetic" {
		fmt.Fprintf(os.Stderr, "bench: --source=%q: want \"pubsub\" or \"synthetic\"\n", *source)
		os.Exit(2)
	}
	run := run
	if *mode == "world" {
		run = runWorld
	}
	if err := run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	streamStart := time.Now()
	msgs, unique := stream(streamStart)
	world, err := startWorld(streamStart)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, world.Close()) }()
	bq, err := emulators.StartBigQuery(ctx, project)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, bq.Close()) }()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	selfCPU0, worldCPU0, bqCPU0 := proc.SelfCPU(), proc.CPU(world.Pid()), proc.CPU(bq.Pid())
	for _, env := range []map[string]string{world.env, bq.Env()} {
		for k, v := range env {
			os.Setenv(k, v)
		}
	}
	pub, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := publish.Setup(ctx, pub, topic, sub); err != nil {
		return err
	}
	client, err := bqsink.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()

	cfg := streamjob.DefaultConfig()
	cfg.Destination = config.Destination{Project: project, Dataset: "bench"}
	cfg.Subscription, cfg.Lake = sub, "gs://lake"
	cfg.ReadShards = *shards
	cfg.ArchiveWindow, cfg.EarlyFiring = *archive, *early
	cfg.StopAfterIdle = 10 * time.Second
	cfg.RunID = "bench"

	type done struct {
		res beam.PipelineResult
		err error
	}
	jobDone := make(chan done, 1)
	synthetic := *source == "synthetic"
	// start is when the stream begins: for the synthetic source, set now
	// (it is built into the job); for pstest, once the job is up.
	var start time.Time
	var from streamjob.Source
	if synthetic {
		start = time.Now().Add(syntheticStartDelay)
		from = syntheticSource(msgs, start, cfg.StopAfterIdle)
	}
	go func() {
		res, err := streamjob.RunFrom(ctx, cfg, from)
		jobDone <- done{res, err}
	}()
	// Let the job start (tables, views, Prism) before the clock starts.
	if err := waitForTable(ctx, client, "bench", "events_speed"); err != nil {
		return err
	}
	if synthetic {
		if time.Now().After(start) {
			return fmt.Errorf("the job took longer than %v to start: the synthetic source began before it", syntheticStartDelay)
		}
		time.Sleep(time.Until(start))
	} else {
		time.Sleep(3 * time.Second)
		start = time.Now()
		if err := world.publish(); err != nil {
			return err
		}
	}
	// publishedAt[k] is when the k-th unique event was due to be published.
	var publishedAt []time.Time
	for _, m := range msgs {
		if m.Kind == sample.KindEvent {
			publishedAt = append(publishedAt, start.Add(time.Duration(m.PublishTime-msgs[0].PublishTime)*time.Microsecond))
		}
	}
	var latencies []time.Duration
	var lastVisible time.Time
	for n := 0; n < unique; {
		time.Sleep(*poll)
		c, err := count(ctx, client, "bench", "events_speed")
		if err != nil {
			return err
		}
		now := time.Now()
		if c > n {
			lastVisible = now
			latencies = append(latencies, now.Sub(publishedAt[min(c, unique)-1]))
			n = c
		}
		select {
		case d := <-jobDone:
			return fmt.Errorf("the job ended before every event was visible (%d of %d): %v", n, unique, d.err)
		default:
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("gave up after 10 minutes: %d of %d events visible", n, unique)
		}
	}
	var behind time.Duration
	if !synthetic {
		if behind, err = world.published(); err != nil {
			return err
		}
	}
	publishTook := time.Duration(msgs[len(msgs)-1].PublishTime-msgs[0].PublishTime) * time.Microsecond
	d := <-jobDone
	if d.err != nil {
		return d.err
	}
	took := lastVisible.Sub(start)
	selfCPU, worldCPU, bqCPU := proc.SelfCPU()-selfCPU0, proc.CPU(world.Pid())-worldCPU0, proc.CPU(bq.Pid())-bqCPU0
	slices.Sort(latencies)
	host, _ := os.Hostname()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%s, %d cores, %s/%s, %s\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(tw, "job\t--read_shards=%d --archive_window=%v --early_firing=%v\n", *shards, *archive, *early)
	if synthetic {
		fmt.Fprintf(tw, "messages released\t%d at a target of %d/s over %v by the synthetic source, in the job's process (no pstest, no publisher)\n", len(msgs), *rate, publishTook.Round(time.Millisecond))
	} else {
		fmt.Fprintf(tw, "messages published\t%d at a target of %d/s over %v (publisher at most %v behind)\n", len(msgs), *rate, publishTook.Round(time.Millisecond), behind.Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "unique events visible\t%d in %v\n", unique, took.Round(time.Millisecond))
	fmt.Fprintf(tw, "sustained\t%.0f events/s (target rate %d/s: ratio %.2f)\n", float64(unique)/took.Seconds(), *rate, float64(unique)/took.Seconds()/float64(*rate))
	fmt.Fprintf(tw, "event→row-visible latency\tp50 %v, p99 %v, max %v (%d samples, poll %v)\n",
		pct(latencies, 0.50), pct(latencies, 0.99), latencies[len(latencies)-1].Round(time.Millisecond), len(latencies), *poll)
	wall := time.Since(start)
	fmt.Fprintf(tw, "CPU, the job's process\t%v (%.2f cores over %v): Prism and the job; %.0f µs per event, %.0f events per CPU second\n",
		selfCPU.Round(10*time.Millisecond), selfCPU.Seconds()/wall.Seconds(), wall.Round(time.Millisecond),
		float64(selfCPU.Microseconds())/float64(len(msgs)), float64(len(msgs))/selfCPU.Seconds())
	children := "pstest + fake-gcs-server + publisher"
	if synthetic {
		children = "fake-gcs-server (pstest idle)"
	}
	fmt.Fprintf(tw, "CPU, %s\t%v (%.2f cores)\n", children, worldCPU.Round(10*time.Millisecond), worldCPU.Seconds()/wall.Seconds())
	fmt.Fprintf(tw, "CPU, BigQuery emulator\t%v (%.2f cores)\n", bqCPU.Round(10*time.Millisecond), bqCPU.Seconds()/wall.Seconds())
	tw.Flush()
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
		return printBreakdown(os.Stdout, *cpuprofile)
	}
	return nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Round(time.Millisecond)
}

// count reads the table's row count from its metadata: in the emulator a
// query also writes a job record, which competes with the job's appends.
func count(ctx context.Context, client *bigquery.Client, dataset, table string) (int, error) {
	md, err := client.Dataset(dataset).Table(table).Metadata(ctx)
	if err != nil {
		return 0, err
	}
	return int(md.NumRows), nil
}

func waitForTable(ctx context.Context, client *bigquery.Client, dataset, table string) error {
	for range 600 {
		if _, err := client.Dataset(dataset).Table(table).Metadata(ctx); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("table %s.%s did not appear", dataset, table)
}
