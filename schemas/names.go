package schemas

import "regexp"

// DayLayout is the format of an event day (UTC): the lake's dt= folders,
// the batch job's --from/--to, the days a batch run covers and the
// BigQuery day partitions it replaces.
const DayLayout = "2006-01-02"

var (
	datasetPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`) // at most 1024 characters, checked apart: RE2 repeats stop at 1000
	bucketPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$`)
)

// ValidDataset reports whether d is a BigQuery dataset name: 1-1024
// letters, digits and underscores. Railyard pastes dataset names into
// SQL, so nothing else may pass.
func ValidDataset(d string) bool { return len(d) <= 1024 && datasetPattern.MatchString(d) }

// ValidBucket reports whether b is a Cloud Storage bucket name: 3-222
// lowercase letters, digits, dots, underscores and hyphens, starting and
// ending with a letter or digit. The lake's root is gs://BUCKET[/prefix].
func ValidBucket(b string) bool { return bucketPattern.MatchString(b) }
