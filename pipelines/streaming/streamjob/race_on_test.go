//go:build race

package streamjob

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
