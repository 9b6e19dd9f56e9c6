package config

import (
	"strings"

	"github.com/railyard/railyard/transforms/bqsink"
)

// RunnerName is a --runner value as Railyard names runners: "" is prism,
// and Beam's own name of its Dataflow runner, DataflowRunner (what a Flex
// Template launcher passes), is dataflow.
func RunnerName(flag string) string {
	name := strings.ToLower(strings.TrimSpace(flag))
	switch name {
	case "":
		return "prism"
	case "dataflowrunner":
		return "dataflow"
	}
	return name
}

// Profile is what the runner and the BigQuery server a job runs against
// ask of it. A job decides it once, when it is built, from --runner and
// the environment, and hands its transforms plain settings made from it:
// no transform asks which runner or which server it is on. What each
// quirk is, and how it was measured, is in runners/KNOWN_ISSUES.md.
type Profile struct {
	// Runner is the runner's name (RunnerName).
	Runner string
	// NativePubSub: the runner has its own Pub/Sub source (Dataflow),
	// which acknowledges a message once the step that read it is durably
	// committed. Elsewhere the streaming job reads with pubsubio.Read and
	// acknowledges in the pipeline, once the message is archived and
	// written: Prism keeps a committed bundle in memory only, so a
	// message acknowledged at the commit would be lost if the job were
	// killed before its output is written; Go has no bundle finalization
	// on Flink, and a job restored from a Flink checkpoint would lose what
	// was acknowledged since it.
	NativePubSub bool
	// EarlyTimerRace: the runner fails the job when a window's state is
	// collected while an early-firing (processing-time) timer is still
	// pending for it (Prism v2.77.0). The streaming job then checks its
	// lateness against its early firings, caps the read's watermark
	// speed and stops taking events just before their window closes.
	EarlyTimerRace bool
	// SessionEarlyFirings: the runner takes a processing-time trigger on
	// session windows (Prism v2.77.0 rejects the job at submission).
	SessionEarlyFirings bool
	// SplitRunsKeyTwice: the runner, splitting a slow bundle, may run
	// one key of a stateful step in two bundles at once (Prism v2.77.0
	// releases the residual's keys while the primary still runs), and a
	// running total in state loses an update. The streaming job turns
	// splitting off there.
	SplitRunsKeyTwice bool
	// StateScanPerWindow: the runner gathers a bundle's state by looking
	// up every key of the bundle in every window the step holds state
	// in (Prism v2.77.0, ElementManager.StateForBundle), so a triggered
	// grouping over session windows — one window per user's session —
	// costs open sessions × keys per bundle, and the cost grows with the
	// square of the users active within a gap. The streaming job then
	// splits its sessions over independent groupings by user.
	StateScanPerWindow bool
	// Sink is the limits and answers of the BigQuery server the jobs
	// write to (the emulator's when BIGQUERY_STORAGE_EMULATOR_HOST is set).
	Sink bqsink.Server
}

// ProfileOf returns the profile of runner (a --runner value) against the
// BigQuery server the environment names. It does not check that Railyard
// supports runner: see ValidateRunner.
func ProfileOf(runner string) Profile {
	name := RunnerName(runner)
	prism := name == "prism"
	return Profile{
		Runner:              name,
		NativePubSub:        name == "dataflow",
		EarlyTimerRace:      prism,
		SessionEarlyFirings: !prism,
		SplitRunsKeyTwice:   prism,
		StateScanPerWindow:  prism,
		Sink:                bqsink.ServerFromEnv(),
	}
}
