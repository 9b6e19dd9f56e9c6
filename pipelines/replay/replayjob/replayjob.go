package replayjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/pipelines/serving"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/bqsink"
)

// Result is what a replay run did.
type Result struct {
	Selection
	// Replayed and StillFailing count the dead letters of this run by
	// outcome (a dry run: would pass, still fail).
	Replayed, StillFailing int64
	// Report is the dry run's, one line per reason of the selection.
	Report []ReasonReport
	// Days are the event days the run wrote records to, sorted.
	Days []string
	// Rebuilt lists the batch runs --rebuild_days ran.
	Rebuilt []string
}

// ReasonReport is one line of a dry run's report.
type ReasonReport struct {
	Reason             string
	WouldPass, Failing int
	ExampleError       string
}

// Run replays the dead letters cfg selects: it reads the selection from
// dead_letter, runs the replay pipeline (on the runner of --runner; a dry
// run always on Prism here, as it only reads) and, with --rebuild_days,
// the batch job over the days it wrote to. A selection that matches
// nothing, or only dead letters replayed already, runs no pipeline.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	var client *bigquery.Client
	var err error
	if cfg.DryRun {
		client, err = bqsink.NewClient(ctx, cfg.Project) // a dry run creates nothing
	} else {
		client, err = serving.Prepare(ctx, cfg.Sink(cfg.RunID))
	}
	if err != nil {
		return res, err
	}
	defer client.Close()
	res.Selection, err = SelectDeadLetters(ctx, client, cfg)
	if err != nil {
		return res, err
	}
	slog.InfoContext(ctx, "replay: selection read", "run_id", cfg.RunID, "matched", res.Matched, "replayed_before", res.AlreadyReplayed, "repeats", res.Repeats, "to_replay", len(res.Inputs))
	if len(res.Inputs) == 0 {
		return res, nil
	}
	replayedAt := time.Now().UnixMicro() // when the run started: processing time by definition
	p, s := beam.NewPipelineWithRoot()
	if cfg.DryRun {
		f, err := os.CreateTemp("", "railyard-replay-report-*.tsv")
		if err != nil {
			return res, err
		}
		f.Close()
		defer os.Remove(f.Name())
		if err := Build(s, cfg, res.Inputs, replayedAt, f.Name()); err != nil {
			return res, err
		}
		pr, err := prism.Execute(ctx, p)
		if err != nil {
			return res, fmt.Errorf("replay %s (dry run): %w", cfg.RunID, err)
		}
		res.Replayed, res.StillFailing = counters(pr)
		res.Report, err = readReport(f.Name())
		return res, err
	}
	if err := Build(s, cfg, res.Inputs, replayedAt, ""); err != nil {
		return res, err
	}
	slog.InfoContext(ctx, "replay starting", "run_id", cfg.RunID, "dead_letters", len(res.Inputs))
	pr, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return res, fmt.Errorf("replay %s: %w", cfg.RunID, err)
	}
	config.LogCounters(ctx, "replay", cfg.RunID, pr)
	res.Replayed, res.StillFailing = counters(pr)
	if res.Days, err = daysWritten(ctx, client, cfg); err != nil {
		return res, err
	}
	if !cfg.RebuildDays {
		return res, nil
	}
	for i, r := range dayRanges(res.Days) {
		bcfg := batchjob.Config{
			Destination: cfg.Destination,
			Lake:        cfg.Lake, From: r[0], To: r[1],
			SessionGap: batchjob.DefaultSessionGap,
			RunID:      fmt.Sprintf("%s-batch-%d", cfg.RunID, i+1),
		}
		if len(bcfg.RunID) > 64 {
			bcfg.RunID = bcfg.RunID[len(bcfg.RunID)-64:]
		}
		slog.InfoContext(ctx, "replay: rebuilding days", "run_id", bcfg.RunID, "from", r[0], "to", r[1])
		if _, err := batchjob.Run(ctx, bcfg); err != nil {
			return res, fmt.Errorf("replay %s wrote the lake and recorded its replays; the batch run of %s to %s failed (rerun: go run ./pipelines/batch --lake=%s --from=%s --to=%s): %w",
				cfg.RunID, r[0], r[1], cfg.Lake, r[0], r[1], err)
		}
		res.Rebuilt = append(res.Rebuilt, bcfg.RunID)
	}
	return res, nil
}

func counters(pr beam.PipelineResult) (replayed, stillFailing int64) {
	if pr == nil {
		return 0, 0
	}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace != metricnames.Namespace {
			continue
		}
		switch c.Key.Name {
		case metricnames.ReplayReplayed:
			replayed += c.Result()
		case metricnames.ReplayStillFailing:
			stillFailing += c.Result()
		}
	}
	return replayed, stillFailing
}

func readReport(path string) ([]ReasonReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the dry run's report: %w", err)
	}
	var out []ReasonReport
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			continue
		}
		pass, _ := strconv.Atoi(f[1])
		fail, _ := strconv.Atoi(f[2])
		out = append(out, ReasonReport{Reason: f[0], WouldPass: pass, Failing: fail, ExampleError: f[3]})
	}
	return out, nil
}

// daysWritten returns the event days of the lake objects this run
// recorded (dt= of each), sorted.
func daysWritten(ctx context.Context, client *bigquery.Client, cfg Config) ([]string, error) {
	q := client.Query(fmt.Sprintf("SELECT DISTINCT lake_object FROM %s WHERE run_id = @run_id AND outcome = @replayed",
		cfg.ref(client, schemas.TableDeadLetterReplays)))
	q.Parameters = []bigquery.QueryParameter{{Name: "run_id", Value: cfg.RunID}, {Name: "replayed", Value: schemas.OutcomeReplayed}}
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the days the replay wrote to: %w", err)
	}
	var days []string
	for {
		var row struct {
			LakeObject bigquery.NullString `bigquery:"lake_object"`
		}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the days the replay wrote to: %w", err)
		}
		if _, rest, ok := strings.Cut(row.LakeObject.StringVal, "/raw/dt="); ok {
			if day, _, ok := strings.Cut(rest, "/"); ok && !slices.Contains(days, day) {
				days = append(days, day)
			}
		}
	}
	slices.Sort(days)
	return days, nil
}

// dayRanges groups sorted days into runs of consecutive days.
func dayRanges(days []string) [][2]string {
	var out [][2]string
	for _, d := range days {
		if n := len(out); n > 0 {
			last, _ := time.Parse(schemas.DayLayout, out[n-1][1])
			if last.AddDate(0, 0, 1).Format(schemas.DayLayout) == d {
				out[n-1][1] = d
				continue
			}
		}
		out = append(out, [2]string{d, d})
	}
	return out
}

func isNotFound(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusNotFound
}
