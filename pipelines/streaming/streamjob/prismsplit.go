package streamjob

import (
	"slices"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"

	"github.com/railyard/railyard/pipelines/config"
)

// noSplitExperiment turns off Prism's splitting of slow bundles.
//
// Prism v2.77.0 releases the keys of a split bundle's residual while the
// primary still runs: when both hold elements of one key (a hot metrics
// key with several panes queued), a stateful stage then runs that key in
// two bundles at once, and a running total in state (metrics.PerMinute,
// dedup) loses an update. Without splits a key runs in one bundle at a
// time, as the Beam model promises.
const noSplitExperiment = "prism_disable_sdf_split"

var noSplitOnce sync.Once

// keepKeysInOneBundle adds noSplitExperiment to the job's experiments
// when its runner splits a key across bundles
// (config.Profile.SplitRunsKeyTwice).
func keepKeysInOneBundle(p config.Profile) {
	if !p.SplitRunsKeyTwice {
		return
	}
	noSplitOnce.Do(func() {
		if exps := jobopts.GetExperiments(); !slices.Contains(exps, noSplitExperiment) {
			*jobopts.Experiments = strings.Join(append(exps, noSplitExperiment), ",")
		}
	})
}
