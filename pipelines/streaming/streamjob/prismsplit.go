package streamjob

import (
	"slices"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
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
// when it runs on Prism.
func keepKeysInOneBundle(runner string) {
	if runner != "" && !strings.EqualFold(runner, "prism") {
		return
	}
	noSplitOnce.Do(func() {
		if exps := jobopts.GetExperiments(); !slices.Contains(exps, noSplitExperiment) {
			*jobopts.Experiments = strings.Join(append(exps, noSplitExperiment), ",")
		}
	})
}
