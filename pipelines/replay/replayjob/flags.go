package replayjob

import (
	"flag"
	"regexp"
	"time"

	"github.com/railyard/railyard/pipelines/config"
)

var (
	reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	stagePattern  = regexp.MustCompile(`^(read|decode|write_[a-z][a-z0-9_]{0,127})$`)
)

// RegisterFlags defines the replay command's own flags on fs and returns a
// function that builds the run's Config from them once fs is parsed.
//
// Beam defines --project, --runner and --dry_run on flag.CommandLine; the
// Config reads --project and --dry_run from fs where fs defines them.
// RunID defaults to replay-<UTC time>.
func RegisterFlags(fs *flag.FlagSet) func() Config {
	dataset := fs.String("dataset", "railyard", "BigQuery dataset holding dead_letter.")
	lakeRoot := fs.String("lake", "", "The lake root, gs://BUCKET[/prefix], the records that pass now are written to (raw/dt=DAY/hr=HH/replay-<dead_letter_id>.jsonl.gz).")
	from := fs.String("from", "", "First UTC day of failed_at to select dead letters from, YYYY-MM-DD, inclusive. Required.")
	to := fs.String("to", "", "Last UTC day of failed_at to select dead letters from, YYYY-MM-DD, inclusive. Required.")
	reason := fs.String("reason", "", "Only dead letters of these reasons (comma-separated reason codes).")
	layer := fs.String("layer", "", "Only dead letters of this layer: batch or speed.")
	stage := fs.String("stage", "", "Only dead letters of this stage: read, decode or write_<table>.")
	sourceURI := fs.String("source_uri", "", "Only dead letters whose source_uri starts with this (a lake file or folder, gs://…).")
	runID := fs.String("run_id", "", "Name of this run (default: replay-<UTC time>).")
	rebuild := fs.Bool("rebuild_days", false, "After writing the lake, run the batch job over the event days written to.")
	maxDead := fs.Int("max_dead_letters", DefaultMaxDeadLetters, "The largest selection a run takes; a larger one stops the run before anything changes.")
	return func() Config {
		cfg := Config{
			Destination:     config.Destination{Project: config.FlagValue(fs, "project"), Dataset: *dataset},
			Lake:            *lakeRoot,
			From:            *from,
			To:              *to,
			Reasons:         config.SplitList(*reason),
			Layer:           *layer,
			Stage:           *stage,
			SourceURIPrefix: *sourceURI,
			RunID:           *runID,
			DryRun:          config.FlagValue(fs, "dry_run") == "true",
			RebuildDays:     *rebuild,
			MaxDeadLetters:  *maxDead,
		}
		if cfg.RunID == "" {
			cfg.RunID = "replay-" + time.Now().UTC().Format("20060102t150405")
		}
		return cfg
	}
}
