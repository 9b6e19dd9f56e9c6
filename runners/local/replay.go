package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/railyard/railyard/pipelines/replay/replayjob"
	"github.com/railyard/railyard/schemas"
)

// showReplay runs the dead-letter replay job as a dry run over today's
// dead letters (those of the runs just made) and prints its report: per
// reason, how many would pass under the current contract and how many
// still fail. It changes nothing, so the views printed before stay true.
func showReplay(ctx context.Context, out io.Writer, p *progress, o options) error {
	today := time.Now().UTC().Format(schemas.DayLayout)
	cfg := replayjob.Config{Destination: o.destination(), Lake: o.lake(), From: today, To: today, DryRun: true,
		RunID: "local-replay-" + time.Now().UTC().Format("20060102t150405")}
	p.say("Replay: a dry run of the dead-letter replay over today's dead letters (go run ./pipelines/replay --dry_run)…")
	res, err := replayjob.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay dry run: %w", err)
	}
	fmt.Fprintf(out, "\nDead-letter replay, dry run over failed_at %s: %d dead letters, %d distinct; nothing written.\n", today, res.Matched, len(res.Inputs))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "reason\twould pass\tstill fail\texample error")
	for _, r := range res.Report {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Reason, r.WouldPass, r.Failing, r.ExampleError)
	}
	return tw.Flush()
}
