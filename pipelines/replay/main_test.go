package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/railyard/railyard/pipelines/replay/replayjob"
)

// TestReadmeListsEveryFlag keeps the README's flags table of the replay
// job true to the command's flags.
func TestReadmeListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Replaying dead letters\n")
	if !ok {
		t.Fatal(`README.md has no "## Replaying dead letters" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, f := range strings.Split(cell, ",") {
			listed[strings.Trim(strings.TrimSpace(f), "`-")] = true
		}
	}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	replayjob.RegisterFlags(fs)
	want := map[string]bool{"project": true, "runner": true, "dry_run": true} // Beam's
	fs.VisitAll(func(f *flag.Flag) { want[f.Name] = true })
	for name := range want {
		if !listed[name] {
			t.Errorf("README.md's flags table lacks --%s", name)
		}
	}
	for name := range listed {
		if !want[name] {
			t.Errorf("README.md's flags table lists --%s, which the command does not have", name)
		}
	}
}
