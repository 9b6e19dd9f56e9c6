// Command replay brings dead letters back once their cause is fixed: it
// selects rows of dead_letter by failed_at day (and reason, layer,
// stage, source_uri), re-decodes each under the current contract, writes
// the records that pass now to the lake as archive envelopes under their
// event day, and records each outcome in dead_letter_replays. With
// --rebuild_days it then runs the batch job over the days it wrote to, so
// the records reach the batch tables and the views.
//
//	go run ./pipelines/replay --project=P --dataset=D --lake=gs://BUCKET --from=YYYY-MM-DD --to=YYYY-MM-DD \
//	    [--reason=a,b] [--layer=batch|speed] [--stage=decode] [--source_uri=gs://…] [--dry_run] [--rebuild_days]
//
// --dry_run prints, per reason, how many dead letters would pass now and
// how many still fail, with an example error each, and changes nothing.
// A replay is idempotent: run it again, or after it was killed, and it
// ends in the same state. It never deletes a dead letter. The flags are
// replayjob.RegisterFlags'.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/replay/replayjob"
)

func main() {
	buildConfig := replayjob.RegisterFlags(flag.CommandLine)
	flag.Parse()
	beam.Init() // a worker started by the runner does not return from here

	cfg := buildConfig()
	*runners.Runner = config.RunnerName(*runners.Runner)
	if err := config.ValidateRunner(*runners.Runner); err != nil {
		fail(err)
	}
	if err := cfg.Validate(); err != nil {
		fail(err)
	}
	if err := config.DefaultWorkerBinary(*runners.Runner); err != nil {
		fail(err)
	}
	res, err := replayjob.Run(context.Background(), cfg)
	if err != nil {
		slog.Error("replay failed", "run_id", cfg.RunID, "error", err)
		os.Exit(1)
	}
	report(os.Stdout, cfg, res)
}

func report(w *os.File, cfg replayjob.Config, res replayjob.Result) {
	switch {
	case res.Matched == 0:
		fmt.Fprintf(w, "No dead letter matches the selection (failed_at %s to %s and the filters given): nothing to replay.\n", cfg.From, cfg.To)
		return
	case len(res.Inputs) == 0:
		fmt.Fprintf(w, "%d dead letters match; all of them were replayed already: nothing to do.\n", res.Matched)
		return
	}
	fmt.Fprintf(w, "%d dead letters match (%d replayed already, %d repeats of another row); %d re-decoded by run %s.\n",
		res.Matched, res.AlreadyReplayed, res.Repeats, len(res.Inputs), cfg.RunID)
	if cfg.DryRun {
		fmt.Fprintf(w, "Dry run: nothing was written.\n\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "reason\twould pass\tstill fail\texample error")
		for _, r := range res.Report {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Reason, r.WouldPass, r.Failing, r.ExampleError)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "Passed now and written to the lake: %d; still failing: %d.\n", res.Replayed, res.StillFailing)
	if len(res.Days) > 0 {
		fmt.Fprintf(w, "Event days written to: %s.\n", strings.Join(res.Days, ", "))
		if len(res.Rebuilt) == 0 {
			fmt.Fprintf(w, "Run the batch job over them (or replay with --rebuild_days): go run ./pipelines/batch --lake=%s --from=DAY --to=DAY\n", cfg.Lake)
		} else {
			fmt.Fprintf(w, "Batch runs: %s.\n", strings.Join(res.Rebuilt, ", "))
		}
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "replay: %v\nRun with -help for the flags.\n", err)
	os.Exit(2)
}
