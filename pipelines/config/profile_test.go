package config

import (
	"testing"

	"github.com/railyard/railyard/transforms/bqsink"
)

func TestProfileOf(t *testing.T) {
	for _, tc := range []struct {
		runner string
		want   Profile
	}{
		{"", Profile{Runner: "prism", EarlyTimerRace: true, SplitRunsKeyTwice: true, StateScanPerWindow: true, Sink: bqsink.BigQueryServer}},
		{"Prism", Profile{Runner: "prism", EarlyTimerRace: true, SplitRunsKeyTwice: true, StateScanPerWindow: true, Sink: bqsink.BigQueryServer}},
		{"dataflow", Profile{Runner: "dataflow", NativePubSub: true, SessionEarlyFirings: true, Sink: bqsink.BigQueryServer}},
		{" DataflowRunner ", Profile{Runner: "dataflow", NativePubSub: true, SessionEarlyFirings: true, Sink: bqsink.BigQueryServer}},
		{"flink", Profile{Runner: "flink", SessionEarlyFirings: true, Sink: bqsink.BigQueryServer}},
		{"universal", Profile{Runner: "universal", SessionEarlyFirings: true, Sink: bqsink.BigQueryServer}},
	} {
		t.Setenv(bqsink.EnvStorageEmulatorHost, "")
		if got := ProfileOf(tc.runner); got != tc.want {
			t.Errorf("ProfileOf(%q) = %+v, want %+v", tc.runner, got, tc.want)
		}
	}
	t.Run("the BigQuery emulator's limits when the environment points at it", func(t *testing.T) {
		t.Setenv(bqsink.EnvStorageEmulatorHost, "127.0.0.1:9060")
		if got := ProfileOf("prism").Sink; got != bqsink.EmulatorServer {
			t.Errorf("sink %+v, want the emulator's %+v", got, bqsink.EmulatorServer)
		}
	})
}

func TestValidateRunner(t *testing.T) {
	for runner, ok := range map[string]bool{
		"": true, "prism": true, "dataflow": true, "DataflowRunner": true, "flink": true, "universal": true,
		"direct": false, "spark": false, "dataflw": false,
	} {
		err := ValidateRunner(runner)
		if (err == nil) != ok {
			t.Errorf("ValidateRunner(%q) = %v, want ok=%v", runner, err, ok)
		}
	}
}
