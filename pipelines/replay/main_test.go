package main

import (
	"flag"
	"testing"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/pipelines/replay/replayjob"
)

// TestReadmeListsEveryFlag keeps the README's flags table of the replay
// job true to the command's flags.
func TestReadmeListsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	replayjob.RegisterFlags(fs)
	testenv.CheckReadmeFlags(t, "Replaying dead letters", fs, "project", "runner", "dry_run")
}
