package dataflow

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
)

// The launch parameters reach the jobs as flags, which RegisterFlags turns
// into a Config: these tests check that each flag lands in its field, and
// that Beam's flags (here defined on the test's own FlagSet, as Beam
// defines them on flag.CommandLine) give the project, the runner and the
// dry run.

func TestStreamingFlagsBuildTheConfig(t *testing.T) {
	fs := flag.NewFlagSet("streaming", flag.ContinueOnError)
	fs.String("project", "", "Beam's")
	fs.String("runner", "", "Beam's")
	build := streamjob.RegisterFlags(fs)
	err := fs.Parse(strings.Fields(`--project=my-project --runner=DataflowRunner
		--subscription=projects/my-project/subscriptions/events --lake=gs://my-lake/railyard --dataset=rail
		--stop_after_idle=1m --read_shards=7 --timestamp_attribute=ts --early_firing=2s
		--allowed_lateness=3m --dedup_horizon=4h --session_gap=5m --max_future=45m --archive_shards=6
		--archive_window=2m --ack_deadline=30s --ack_extension=5m --recover=false --run_id=r1
		--max_outstanding_messages=5000 --max_outstanding_bytes=33554432`))
	if err != nil {
		t.Fatal(err)
	}
	want := streamjob.Config{
		Destination:        config.Destination{Project: "my-project", Dataset: "rail"},
		Runner:             "dataflow", // Beam's DataflowRunner, as a Flex Template launcher names it
		Subscription:       "projects/my-project/subscriptions/events",
		Lake:               "gs://my-lake/railyard",
		StopAfterIdle:      time.Minute,
		ReadShards:         7,
		TimestampAttribute: "ts",
		EarlyFiring:        2 * time.Second,
		AllowedLateness:    3 * time.Minute,
		DedupHorizon:       4 * time.Hour,
		SessionGap:         5 * time.Minute,
		MaxFuture:          45 * time.Minute,
		ArchiveShards:      6,
		ArchiveWindow:      2 * time.Minute,
		AckDeadline:        30 * time.Second,
		AckExtension:       5 * time.Minute,
		Recover:            false,
		RunID:              "r1",

		MaxOutstandingMessages: 5000,
		MaxOutstandingBytes:    32 << 20,
	}
	if got := build(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config = %+v\nwant %+v", got, want)
	}
}

func TestStreamingFlagDefaultsAreTheDefaultConfig(t *testing.T) {
	fs := flag.NewFlagSet("streaming", flag.ContinueOnError)
	got := streamjob.RegisterFlags(fs)()
	if !strings.HasPrefix(got.RunID, "stream-") {
		t.Errorf("RunID %q, want stream-<UTC time>", got.RunID)
	}
	got.RunID = ""
	if want := streamjob.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config of no flags = %+v\nwant DefaultConfig() = %+v", got, want)
	}
}

func TestBatchFlagsBuildTheConfig(t *testing.T) {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	fs.String("project", "", "Beam's")
	fs.Bool("dry_run", false, "Beam's")
	build := batchjob.RegisterFlags(fs)
	err := fs.Parse(strings.Fields(`--project=my-project --dry_run
		--input=gs://a/*,gs://b/** --lake=gs://my-lake --from=2026-11-01 --to=2026-11-02
		--dataset=rail --session_gap=5m --max_future=2h --run_id=r1`))
	if err != nil {
		t.Fatal(err)
	}
	want := batchjob.Config{
		Destination: config.Destination{Project: "my-project", Dataset: "rail"},
		Inputs:      []string{"gs://a/*", "gs://b/**"},
		Lake:        "gs://my-lake", From: "2026-11-01", To: "2026-11-02",
		SessionGap: 5 * time.Minute,
		MaxFuture:  2 * time.Hour,
		RunID:      "r1",
		DryRun:     true,
	}
	if got := build(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config = %+v\nwant %+v", got, want)
	}

	fs = flag.NewFlagSet("batch", flag.ContinueOnError)
	got := batchjob.RegisterFlags(fs)()
	if got.Dataset != "railyard" || got.SessionGap != batchjob.DefaultSessionGap || got.MaxFuture != batchjob.DefaultMaxFuture || !strings.HasPrefix(got.RunID, "batch-") || got.DryRun {
		t.Errorf("Config of no flags = %+v, want dataset railyard, the default session gap and max future, RunID batch-<UTC time>, no dry run", got)
	}
}
