package batchjob

import (
	"flag"
	"time"

	"github.com/railyard/railyard/pipelines/config"
)

// RegisterFlags defines the batch command's own flags on fs, with the
// names, defaults and help texts of the command-line contract, and returns
// a function that builds the run's Config from them once fs is parsed.
//
// Beam defines --project, --runner and --dry_run on flag.CommandLine; the
// Config reads --project and --dry_run from fs where fs defines them, so
// on another FlagSet (a generator of template parameters, a test) the
// Config has no project and is not a dry run. RunID defaults to
// batch-<UTC time>.
func RegisterFlags(fs *flag.FlagSet) func() Config {
	input := fs.String("input", "", "Lake files to read: comma-separated globs, local or gs:// (** recurses on gs://). Alternative to --lake with --from/--to.")
	lakeRoot := fs.String("lake", "", "The lake root, gs://BUCKET[/prefix]: with --from/--to, reads <lake>/raw/dt=DAY/ for each day.")
	from := fs.String("from", "", "First event day to (re)compute, YYYY-MM-DD (UTC), inclusive.")
	to := fs.String("to", "", "Last event day to (re)compute, YYYY-MM-DD (UTC), inclusive.")
	dataset := fs.String("dataset", "railyard", "BigQuery dataset to write.")
	sessionGap := fs.Duration("session_gap", DefaultSessionGap, "Inactivity that closes a user's session.")
	maxFuture := fs.Duration("max_future", DefaultMaxFuture, "How far ahead of its ingest time (the archived publish time, or a bare line's file creation time) an event may be dated and still be aggregated; events dated later are written and counted (future_events), and left out of metrics and sessions, as in the streaming job.")
	runID := fs.String("run_id", "", "Name of this run (default: batch-<UTC time>).")

	return func() Config {
		cfg := Config{
			Destination: config.Destination{Project: config.FlagValue(fs, "project"), Dataset: *dataset},
			Inputs:      config.SplitList(*input),
			Lake:        *lakeRoot, From: *from, To: *to,
			SessionGap: *sessionGap,
			MaxFuture:  *maxFuture,
			RunID:      *runID,
			DryRun:     config.FlagValue(fs, "dry_run") == "true",
		}
		if cfg.RunID == "" {
			cfg.RunID = "batch-" + time.Now().UTC().Format("20060102t150405")
		}
		return cfg
	}
}
