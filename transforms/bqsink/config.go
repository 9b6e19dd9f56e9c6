package bqsink

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/railyard/railyard/schemas"
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
	// Server is the Storage Write API server's limits and answers; the
	// zero Server is ServerFromEnv(), taken when the transform is built.
	Server Server
}

// withServer returns c with its Server decided: the transforms call it
// when they are built, so that their steps carry the decision.
func (c Config) withServer() Config {
	if c.Server == (Server{}) {
		c.Server = ServerFromEnv()
	}
	return c
}

// DefaultStagingExpiration is the life of a staging table a crash did not
// drop.
const DefaultStagingExpiration = 24 * time.Hour

var (
	runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ValidRunID reports whether id can name a batch run in staging tables'
// names: 1-64 letters, digits, _ and -.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// Validate reports what is missing or malformed in c for Ensure. Every
// write validates its Config while the pipeline is built: the project
// and dataset end up in SQL statements.
func (c Config) Validate() error {
	var errs []error
	if !schemas.ValidProject(c.Project) {
		errs = append(errs, fmt.Errorf("project %q is not a Google Cloud project id (6-30 lowercase letters, digits and hyphens, starting with a letter)", c.Project))
	}
	if !schemas.ValidDataset(c.Dataset) {
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
	if !ValidRunID(c.RunID) {
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
