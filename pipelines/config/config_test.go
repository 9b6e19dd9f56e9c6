package config

import (
	"strings"
	"testing"
)

func TestValidateLake(t *testing.T) {
	for _, tc := range []struct {
		name, lake, want string
	}{
		{"accepts a bucket", "gs://lake", ""},
		{"accepts a bucket and prefix", "gs://lake/prod/", ""},
		{"accepts a local folder", "/data/lake", ""},
		{"rejects no lake", "", "--lake is required"},
		{"rejects a bad bucket name", "gs://Lake", `"Lake" is not a Cloud Storage bucket name`},
		{"rejects another scheme", "s3://lake", "only gs:// and local folders"},
		{"rejects a star in the prefix", "gs://b/x*", `--lake="gs://b/x*" holds a glob character (*?[])`},
		{"rejects a star in the bucket", "gs://lake*", "holds a glob character"},
		{"rejects a question mark", "gs://b/x?", "holds a glob character"},
		{"rejects a bracket", "gs://b/x[12]", "holds a glob character"},
		{"rejects a glob in a local folder", "/data/lake-*", "holds a glob character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, ValidateLake(tc.lake), tc.want)
		})
	}
}

func TestValidateRunID(t *testing.T) {
	for _, tc := range []struct {
		name, id, want string
	}{
		{"accepts the default form", "batch-20261101t030000", ""},
		{"accepts underscores", "rerun_2026_11_01", ""},
		{"rejects dots", "2026.11.01", `--run_id="2026.11.01" is not a run name: 1-64 letters, digits, _ or -`},
		{"rejects a slash", "a/b", "is not a run name"},
		{"rejects a space", "re run", "is not a run name"},
		{"rejects 65 characters", strings.Repeat("r", 65), "is not a run name"},
		{"rejects an empty name", "", "is not a run name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, ValidateRunID(tc.id), tc.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}
