package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// batchEvery is how often the run reports that the batch job still runs.
const batchEvery = 5 * time.Second

// dayRange is an inclusive range of event days, YYYY-MM-DD.
type dayRange struct{ from, to string }

func (r dayRange) String() string {
	if r.from == r.to {
		return r.from
	}
	return r.from + ".." + r.to
}

// batchResult is what the batch layer did: one run per range of days.
type batchResult struct {
	ranges   []dayRange
	counters map[string]int64 // summed over the runs
}

// describe says which runs the batch layer made.
func (b *batchResult) describe() string {
	if len(b.ranges) == 1 {
		return "one run over " + joinRanges(b.ranges)
	}
	return fmt.Sprintf("%d runs, over %s", len(b.ranges), joinRanges(b.ranges))
}

func joinRanges(ranges []dayRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, " and ")
}

// runBatchLayer runs the batch job over every event day of the lake. It
// gives the job days (--lake with --from/--to), not --input globs: only a
// run by days records its days in batch_coverage, which is what switches
// the serving views from the speed rows to the batch rows; a run over
// --input=gs://…/raw/** writes the same batch rows but the views would
// not show them. The days form one run per range of consecutive days, so
// the days between the history and today, which hold nothing, are not
// each replaced (a partition MERGE per table and day).
func runBatchLayer(ctx context.Context, p *progress, e *env, o options) (*batchResult, error) {
	days, err := lakeDays(ctx, e.gcs, o.bucket)
	if err != nil {
		return nil, err
	}
	ranges, err := dayRanges(days)
	if err != nil {
		return nil, err
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("the lake %s holds no dt=YYYY-MM-DD folder under raw/", o.lake())
	}
	res := &batchResult{ranges: ranges, counters: map[string]int64{}}
	p.say("Batch layer: the lake holds %d event days; running the batch job on Prism over %s.", len(days), joinRanges(ranges))
	stamp := time.Now().UTC().Format("20060102t150405")
	for i, r := range ranges {
		cfg := o.batchConfig(fmt.Sprintf("local-batch-%s-%d", stamp, i+1), r.from, r.to)
		counters, took, err := runBatch(ctx, p, cfg, fmt.Sprintf("%s (run %d of %d)", r, i+1, len(ranges)))
		if err != nil {
			return nil, err
		}
		for k, v := range counters {
			res.counters[k] += v
		}
		p.say("Batch job over %s done in %s: %s lake lines read, %s events written.", r, took.Round(100*time.Millisecond),
			thousands(counters[metricnames.LakeLinesRead]), thousands(counters[metricnames.RowsWritten(schemas.TableEventsBatch)]))
	}
	return res, nil
}

// runBatch runs one batch job, reporting every batchEvery that it runs.
func runBatch(ctx context.Context, p *progress, cfg batchjob.Config, what string) (map[string]int64, time.Duration, error) {
	type finished struct {
		counters map[string]int64
		err      error
	}
	done := make(chan finished, 1)
	start := time.Now()
	go func() {
		res, err := batchjob.Run(ctx, cfg)
		if err != nil {
			// A failed run's result may hold no metrics, and reading
			// them then panics (Beam v2.77.0's universal runner).
			done <- finished{err: err}
			return
		}
		done <- finished{railyardCounters(res), nil}
	}()
	p.update("Batch job running over %s…", what)
	tick := time.NewTicker(batchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case f := <-done:
			return f.counters, time.Since(start), f.err
		case <-tick.C:
			p.update("Batch job running over %s… %s", what, time.Since(start).Round(time.Second))
		}
	}
}

// lakeDays lists the event days of the lake in bucket: its
// raw/dt=YYYY-MM-DD/ folders, sorted.
func lakeDays(ctx context.Context, gcs interface {
	Client(context.Context) (*storage.Client, error)
}, bucket string) ([]string, error) {
	client, err := gcs.Client(ctx)
	if err != nil {
		return nil, err
	}
	days := map[string]bool{}
	it := client.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: "raw/dt=", Delimiter: "/"})
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list gs://%s/raw/: %w", bucket, err)
		}
		if day, ok := dayOfPrefix(attrs.Prefix); ok {
			days[day] = true
		}
	}
	return slices.Sorted(maps.Keys(days)), nil
}

// dayOfPrefix returns the day of a lake folder raw/dt=YYYY-MM-DD/.
func dayOfPrefix(prefix string) (string, bool) {
	day, ok := strings.CutPrefix(strings.TrimSuffix(prefix, "/"), "raw/dt=")
	if !ok {
		return "", false
	}
	if t, err := time.Parse(schemas.DayLayout, day); err != nil || t.Format(schemas.DayLayout) != day {
		return "", false
	}
	return day, true
}

// dayRanges groups sorted, distinct days into ranges of consecutive days.
func dayRanges(days []string) ([]dayRange, error) {
	var out []dayRange
	var last time.Time
	for i, d := range days {
		t, err := time.Parse(schemas.DayLayout, d)
		if err != nil {
			return nil, fmt.Errorf("day %q is not YYYY-MM-DD", d)
		}
		switch {
		case i > 0 && !t.After(last):
			return nil, fmt.Errorf("days are not sorted and distinct: %s after %s", d, last.Format(schemas.DayLayout))
		case i > 0 && t.Equal(last.AddDate(0, 0, 1)):
			out[len(out)-1].to = d
		default:
			out = append(out, dayRange{from: d, to: d})
		}
		last = t
	}
	return out, nil
}
