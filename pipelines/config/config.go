// Package config holds what both jobs' command lines share: the BigQuery
// destination, the runner, and the lake's day layout, each validated with
// a message that names the flag, before any job starts.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

// Destination is where a job writes: a BigQuery project and dataset.
type Destination struct {
	Project string
	Dataset string
}

// Validate checks the destination flags.
func (d Destination) Validate() error {
	switch {
	case d.Project == "":
		return fmt.Errorf("--project is required: the Google Cloud project that holds the BigQuery dataset")
	case !schemas.ValidProject(d.Project):
		return fmt.Errorf("--project=%q is not a Google Cloud project id (6-30 lowercase letters, digits and hyphens, starting with a letter)", d.Project)
	case !schemas.ValidDataset(d.Dataset):
		return fmt.Errorf("--dataset=%q is not a BigQuery dataset name (letters, digits and underscores only)", d.Dataset)
	}
	return nil
}

// Sink is the bqsink configuration of a job writing to d, its run named
// runID.
func (d Destination) Sink(runID string) bqsink.Config {
	return bqsink.Config{Project: d.Project, Dataset: d.Dataset, RunID: runID}
}

// Runners are the --runner values Railyard supports, as RunnerName names
// them ("" and DataflowRunner are prism and dataflow).
var Runners = []string{"prism", "dataflow", "flink", "universal"}

// ValidateRunner checks --runner.
func ValidateRunner(name string) error {
	if slices.Contains(Runners, RunnerName(name)) {
		return nil
	}
	return fmt.Errorf("--runner=%q is not supported; use one of %s", name, strings.Join(Runners, ", "))
}

// MaxDays bounds a --from/--to range, so a typo in a year does not start a
// job over decades of empty prefixes.
const MaxDays = 3660

// Days expands an inclusive --from/--to range into the days it covers.
func Days(from, to string) ([]string, error) {
	f, err := time.Parse(schemas.DayLayout, from)
	if err != nil {
		return nil, fmt.Errorf("--from=%q is not a date YYYY-MM-DD", from)
	}
	t, err := time.Parse(schemas.DayLayout, to)
	if err != nil {
		return nil, fmt.Errorf("--to=%q is not a date YYYY-MM-DD", to)
	}
	if t.Before(f) {
		return nil, fmt.Errorf("--to=%s is before --from=%s", to, from)
	}
	n := int(t.Sub(f).Hours()/24) + 1
	if n > MaxDays {
		return nil, fmt.Errorf("--from=%s --to=%s covers %d days; the limit is %d", from, to, n, MaxDays)
	}
	days := make([]string, 0, n)
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(schemas.DayLayout))
	}
	return days, nil
}

// lakeGlobChars are the characters Cloud Storage and local globs read as
// patterns: a lake root holding one would make the batch job read the
// union of every folder it matches.
const lakeGlobChars = "*?[]"

// ValidateLake checks --lake: gs://bucket[/prefix] or a local folder,
// without glob characters.
func ValidateLake(lake string) error {
	if lake == "" {
		return fmt.Errorf("--lake is required: gs://BUCKET[/prefix] (or a local folder for local runs)")
	}
	if strings.ContainsAny(lake, lakeGlobChars) {
		return fmt.Errorf("--lake=%q holds a glob character (%s): --lake names one lake root, gs://BUCKET[/prefix] or a local folder; to read chosen files give --input globs instead", lake, lakeGlobChars)
	}
	if rest, ok := strings.CutPrefix(lake, "gs://"); ok {
		bucket, _, _ := strings.Cut(rest, "/")
		if !schemas.ValidBucket(bucket) {
			return fmt.Errorf("--lake=%q: %q is not a Cloud Storage bucket name", lake, bucket)
		}
		return nil
	}
	if strings.Contains(lake, "://") {
		return fmt.Errorf("--lake=%q: only gs:// and local folders are supported", lake)
	}
	return nil
}

// ValidateRunID checks --run_id: it names the run's staging tables, so
// it must be what bqsink accepts there.
func ValidateRunID(id string) error {
	if !bqsink.ValidRunID(id) {
		return fmt.Errorf("--run_id=%q is not a run name: 1-64 letters, digits, _ or -, such as 2026-11-01_0300", id)
	}
	return nil
}

// DayGlob returns the glob of every lake file of one event day.
func DayGlob(lake, day string) string {
	return strings.TrimSuffix(lake, "/") + "/raw/dt=" + day + "/hr=*/*"
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
