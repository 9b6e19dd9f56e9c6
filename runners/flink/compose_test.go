package flink

import (
	"os"
	"regexp"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core"
)

// TestComposeMatchesTheBeamSDK keeps compose.yaml's images in step with the
// Beam Go SDK in go.mod: a job server or worker pool of another Beam
// version may reject the pipeline or fail at run time, and the Flink
// cluster must be the Flink version the job server was built for.
// (Docker is not needed; go.mod requires no YAML parser, so the file is
// read as text.)
func TestComposeMatchesTheBeamSDK(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	beamImages := regexp.MustCompile(`apache/(beam_[a-z0-9_.]+):(\S+)`).FindAllSubmatch(data, -1)
	if len(beamImages) < 2 {
		t.Fatalf("compose.yaml names %d Beam images, want the job server and the Go SDK worker pool", len(beamImages))
	}
	for _, m := range beamImages {
		if tag := string(m[2]); tag != core.SdkVersion {
			t.Errorf("image apache/%s:%s; the Beam Go SDK in go.mod is %s", m[1], tag, core.SdkVersion)
		}
	}
	jobServer := regexp.MustCompile(`apache/beam_flink(\d+\.\d+)_job_server:`).FindSubmatch(data)
	cluster := regexp.MustCompile(`\bflink:(\d+\.\d+)\.\d+`).FindSubmatch(data)
	switch {
	case jobServer == nil || cluster == nil:
		t.Errorf("compose.yaml lacks a Beam Flink job server image or a flink:X.Y.Z cluster image")
	case string(jobServer[1]) != string(cluster[1]):
		t.Errorf("the job server is built for Flink %s, the cluster runs Flink %s", jobServer[1], cluster[1])
	}
}
