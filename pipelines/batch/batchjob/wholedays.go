package batchjob

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/schemas"
)

// lakeFile matches the path of a file in the lake layout,
// <root>/raw/dt=YYYY-MM-DD/hr=HH/<file>, and captures its root and day.
var lakeFile = regexp.MustCompile(`^(?:(.*)/)?raw/dt=(\d{4}-\d{2}-\d{2})/hr=\d{2}/[^/]+$`)

// dayListings is how many lake days checkWholeDays lists at a time.
const dayListings = 8

// PartialDay is a lake day that --input reads only some files of.
type PartialDay struct {
	// Root is the lake root, Day the event day (YYYY-MM-DD).
	Root, Day string
	// Read is how many of the day's files the input reads, Files how
	// many the day has.
	Read, Files int
}

// PartialDaysError stops a run whose --input reads part of some lake
// days: the run would replace each of those days with the events of the
// files read, dropping the rest. It is a usage error: the command exits
// as for a bad flag, before any job starts.
type PartialDaysError struct {
	// Days are sorted by root, then day.
	Days []PartialDay
}

func (e *PartialDaysError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--input reads only part of %d lake day(s); a batch run replaces each day it reads whole, so each would keep only the events of the files read. Nothing was run:", len(e.Days))
	for _, d := range e.Days {
		fmt.Fprintf(&b, "\n  day %s of lake %s: %d of its %d files", d.Day, d.Root, d.Read, d.Files)
	}
	b.WriteString("\nRead whole days instead:")
	for i := 0; i < len(e.Days); {
		j := i
		for j+1 < len(e.Days) && e.Days[j+1].Root == e.Days[i].Root {
			j++
		}
		fmt.Fprintf(&b, "\n  --lake=%s --from=%s --to=%s", e.Days[i].Root, e.Days[i].Day, e.Days[j].Day)
		i = j + 1
	}
	return b.String()
}

// lakeDay is one event day of one lake root.
type lakeDay struct{ root, day string }

// checkWholeDays lists the files the --input globs match and, for every
// lake day among them (a file at <root>/raw/dt=DAY/hr=HH/<file>, on
// Cloud Storage or local disk), every file of that day, as --lake with
// --from/--to would read it (config.DayGlob). It returns a
// *PartialDaysError naming the days whose files the inputs read only in
// part. Files outside the lake layout are not checked: the run takes
// them as the whole of each day they hold.
func (c Config) checkWholeDays(ctx context.Context) error {
	if len(c.Inputs) == 0 {
		return nil // --from/--to reads whole days
	}
	fss := map[string]filesystem.Interface{}
	defer func() {
		for _, fs := range fss {
			fs.Close()
		}
	}()
	// One file system per scheme, made before the listings run together.
	fsFor := func(path string) (filesystem.Interface, error) {
		scheme, _, _ := strings.Cut(path, "://")
		if !strings.Contains(path, "://") {
			scheme = ""
		}
		if fs, ok := fss[scheme]; ok {
			return fs, nil
		}
		fs, err := filesystem.New(ctx, path)
		if err != nil {
			return nil, err
		}
		fss[scheme] = fs
		return fs, nil
	}

	read := map[string]bool{}
	days := map[lakeDay]bool{} // the lake days of the files read
	for _, glob := range c.Inputs {
		fs, err := fsFor(glob)
		if err != nil {
			return fmt.Errorf("--input=%q: %w", glob, err)
		}
		files, err := fs.List(ctx, glob)
		if err != nil {
			return fmt.Errorf("list --input=%q: %w", glob, err)
		}
		for _, f := range files {
			f = cleanPath(f)
			d, ok := dayOf(f)
			if !ok || read[f] {
				continue
			}
			read[f] = true
			days[d] = true
		}
	}
	if len(days) == 0 {
		return nil
	}

	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		slots   = make(chan struct{}, dayListings)
		partial []PartialDay
		errs    []error
	)
	for d := range days {
		glob := config.DayGlob(d.root, d.day)
		fs, err := fsFor(glob)
		if err != nil {
			return fmt.Errorf("lake day %s of %s: %w", d.day, d.root, err)
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			files, err := fs.List(ctx, glob)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("list lake day %s to check --input reads it whole: %w", glob, err))
				return
			}
			total, unread := 0, 0
			for _, f := range files {
				f = cleanPath(f)
				if g, ok := dayOf(f); ok && g == d {
					total++
					if !read[f] {
						unread++
					}
				}
			}
			if unread > 0 {
				partial = append(partial, PartialDay{Root: d.root, Day: d.day, Read: total - unread, Files: total})
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	if len(partial) > 0 {
		slices.SortFunc(partial, func(a, b PartialDay) int {
			return strings.Compare(a.Root+"\x00"+a.Day, b.Root+"\x00"+b.Day)
		})
		return &PartialDaysError{Days: partial}
	}
	slog.InfoContext(ctx, "batch input reads whole lake days", "run_id", c.RunID, "days", len(days), "files", len(read))
	return nil
}

// dayOf returns the lake day of a file in the lake layout.
func dayOf(path string) (lakeDay, bool) {
	m := lakeFile.FindStringSubmatch(path)
	if m == nil {
		return lakeDay{}, false
	}
	if _, err := time.Parse(schemas.DayLayout, m[2]); err != nil {
		return lakeDay{}, false
	}
	root := m[1]
	if root == "" {
		root = "." // a relative local path that starts at raw/
	}
	return lakeDay{root: root, day: m[2]}, true
}

// cleanPath cleans a local path, so that a file the input names and the
// same file listed under its day compare equal; gs:// names are exact.
func cleanPath(p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return filepath.Clean(p)
}
