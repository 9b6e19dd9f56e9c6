package schemas

import (
	"regexp"
	"time"
)

// DayLayout is the format of an event day (UTC): the lake's dt= folders,
// the batch job's --from/--to, the days a batch run covers and the
// BigQuery day partitions it replaces.
const DayLayout = "2006-01-02"

// DefaultSessionGap is the inactivity that closes a session when a job
// sets no --session_gap.
const DefaultSessionGap = 30 * time.Minute

// SessionDay is the UTC day of an event time in microseconds, as a day
// number since the Unix epoch, on Beam's millisecond timestamps: sessions
// end at midnight UTC, so two event times are in one session only if their
// SessionDay is the same. Both jobs and the sample's truth use it.
func SessionDay(eventTimeMicros int64) int64 {
	const dayMillis = int64(24 * time.Hour / time.Millisecond)
	return floorDiv(floorDiv(eventTimeMicros, 1000), dayMillis)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

var (
	datasetPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`) // at most 1024 characters, checked apart: RE2 repeats stop at 1000
	bucketPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$`)
	projectPattern = regexp.MustCompile(`^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
)

// ValidProject reports whether p is a Google Cloud project id: 6-30
// lowercase letters, digits and hyphens, starting with a letter and not
// ending with a hyphen, optionally after a domain ("example.com:p").
// Railyard pastes project ids into SQL and resource names, so nothing
// else may pass.
func ValidProject(p string) bool { return projectPattern.MatchString(p) }

// ValidDataset reports whether d is a BigQuery dataset name: 1-1024
// letters, digits and underscores. Railyard pastes dataset names into
// SQL, so nothing else may pass.
func ValidDataset(d string) bool { return len(d) <= 1024 && datasetPattern.MatchString(d) }

// ValidBucket reports whether b is a Cloud Storage bucket name: 3-222
// lowercase letters, digits, dots, underscores and hyphens, starting and
// ending with a letter or digit. The lake's root is gs://BUCKET[/prefix].
func ValidBucket(b string) bool { return bucketPattern.MatchString(b) }
