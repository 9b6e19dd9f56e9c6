// Package replayjob brings dead letters back: it selects rows of
// dead_letter, re-decodes each payload under the current contract with
// the jobs' own decode transform (a write_<table> dead letter's row is
// re-validated instead), writes the records that pass now to the lake as
// archive envelopes under their event day, and records in
// dead_letter_replays what happened to each dead letter. The batch run of
// the days it touched (--rebuild_days) then puts them into the batch
// tables and the views.
//
// A replay never deletes a dead letter and is idempotent: a lake object
// is named by its dead letter's id (schemas.DeadLetterID) and only ever
// created, never overwritten; a dead letter already replayed is not
// selected again, and an outcome already recorded is not recorded twice.
// A replay killed at any point and run again ends in the same state.
package replayjob

import (
	"fmt"
	"strings"
	"time"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/schemas"
)

// Config is one replay run, from its flags.
type Config struct {
	config.Destination
	// Lake is the lake root the records that pass are written to,
	// gs://BUCKET[/prefix] (--lake).
	Lake string
	// From and To select dead letters by the UTC day of failed_at,
	// inclusive (--from, --to).
	From, To string
	// Reasons, Layer, Stage and SourceURIPrefix narrow the selection
	// (--reason, --layer, --stage, --source_uri); empty selects all.
	Reasons         []string
	Layer, Stage    string
	SourceURIPrefix string
	// RunID names the run in dead_letter_replays and in the envelopes it
	// writes (--run_id).
	RunID string
	// DryRun re-decodes the selection and reports per reason how many
	// would pass and how many still fail, with an example error each,
	// and changes nothing (--dry_run).
	DryRun bool
	// RebuildDays runs the batch job over the days the replay wrote to
	// (--rebuild_days).
	RebuildDays bool
	// MaxDeadLetters is the largest selection a run takes (the selection
	// travels in the job's graph); a larger one is refused, naming the
	// flag. 0 is DefaultMaxDeadLetters.
	MaxDeadLetters int
}

// DefaultMaxDeadLetters is the --max_dead_letters default.
const DefaultMaxDeadLetters = 10_000

// MaxMaxDeadLetters is the largest --max_dead_letters: a selection is
// sent with the job (at most 4 MiB of payload per dead letter, most far
// smaller); narrow a larger one by --from/--to or --reason.
const MaxMaxDeadLetters = 100_000

// maxDeadLetters is MaxDeadLetters or its default.
func (c Config) maxDeadLetters() int {
	if c.MaxDeadLetters == 0 {
		return DefaultMaxDeadLetters
	}
	return c.MaxDeadLetters
}

// Validate checks the configuration and returns the first problem, worded
// for the person who typed the flags.
func (c Config) Validate() error {
	if err := c.Destination.Validate(); err != nil {
		return err
	}
	if err := config.ValidateLake(c.Lake); err != nil {
		return err
	}
	if !strings.HasPrefix(c.Lake, "gs://") {
		return fmt.Errorf("--lake=%q: a replay writes to a Cloud Storage lake, gs://BUCKET[/prefix]", c.Lake)
	}
	if c.From == "" || c.To == "" {
		return fmt.Errorf("--from and --to are required: the first and last UTC day of failed_at to select dead letters from, YYYY-MM-DD, inclusive")
	}
	if _, err := config.Days(c.From, c.To); err != nil {
		return err
	}
	for _, r := range c.Reasons {
		if !reasonPattern.MatchString(r) {
			return fmt.Errorf("--reason=%q is not a reason code (lowercase letters, digits and _, as in dead_letter.reason)", r)
		}
	}
	switch c.Layer {
	case "", schemas.LayerBatch, schemas.LayerSpeed:
	default:
		return fmt.Errorf("--layer=%q: give %s or %s, or leave it out for both", c.Layer, schemas.LayerBatch, schemas.LayerSpeed)
	}
	if c.Stage != "" && !stagePattern.MatchString(c.Stage) {
		return fmt.Errorf("--stage=%q: give read, decode or write_<table>, as in dead_letter.stage", c.Stage)
	}
	if c.SourceURIPrefix != "" && !strings.HasPrefix(c.SourceURIPrefix, "gs://") {
		return fmt.Errorf("--source_uri=%q: give the start of a lake file's address, gs://BUCKET/raw/…", c.SourceURIPrefix)
	}
	if c.RunID == "" {
		return fmt.Errorf("replayjob: RunID is empty")
	}
	if err := config.ValidateRunID(c.RunID); err != nil {
		return err
	}
	if c.MaxDeadLetters < 0 || c.MaxDeadLetters > MaxMaxDeadLetters { // 0 is the default
		return fmt.Errorf("--max_dead_letters=%d must be between 1 and %d", c.MaxDeadLetters, MaxMaxDeadLetters)
	}
	if c.DryRun && c.RebuildDays {
		return fmt.Errorf("--rebuild_days does nothing with --dry_run, which changes nothing: give one of them")
	}
	return nil
}

// failedAtRange is the half-open range of failed_at the run selects.
func (c Config) failedAtRange() (from, until time.Time) {
	from, _ = time.Parse(schemas.DayLayout, c.From) // checked by Validate
	to, _ := time.Parse(schemas.DayLayout, c.To)
	return from, to.AddDate(0, 0, 1)
}
