package bqsink

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config says where Railyard's tables live and names a batch run.
type Config struct {
	// Project is the Google Cloud project of the dataset (and of the jobs).
	Project string
	// Dataset holds Railyard's tables, for example "railyard".
	Dataset string
	// Location is where Ensure creates the dataset, for example "US" or
	// "europe-west1"; "" leaves it to BigQuery's default.
	Location string
	// RunID names the batch run in its staging tables' names, so that an
	// operator can tell which run left one. Letters, digits, _ and -.
	// Required by ReplacePartitions and ReplaceDeadLetters.
	RunID string
	// StagingExpiration is how long a staging table lives if a crash
	// keeps it from being dropped; 0 means DefaultStagingExpiration.
	StagingExpiration time.Duration
}

// DefaultStagingExpiration is the life of a staging table a crash did not
// drop.
const DefaultStagingExpiration = 24 * time.Hour

var (
	datasetPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	runIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Validate reports what is missing or malformed in c for Ensure.
func (c Config) Validate() error {
	var errs []error
	if c.Project == "" {
		errs = append(errs, errors.New("project is empty"))
	}
	if !datasetPattern.MatchString(c.Dataset) || len(c.Dataset) > 1024 {
		errs = append(errs, fmt.Errorf("dataset %q is not 1-1024 letters, digits or underscores", c.Dataset))
	}
	if c.StagingExpiration < 0 {
		errs = append(errs, fmt.Errorf("staging expiration %v is negative", c.StagingExpiration))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bqsink config: %w", err)
	}
	return nil
}

// validateWrite is Validate plus what the writes need.
func (c Config) validateWrite() error {
	err := c.Validate()
	if !runIDPattern.MatchString(c.RunID) {
		err = errors.Join(err, fmt.Errorf("bqsink config: run id %q is not 1-64 letters, digits, _ or -", c.RunID))
	}
	return err
}

func (c Config) stagingExpiration() time.Duration {
	if c.StagingExpiration == 0 {
		return DefaultStagingExpiration
	}
	return c.StagingExpiration
}
