package pubsubio_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/protobuf/proto"

	"github.com/railyard/railyard/transforms/pubsubio"
)

const (
	requiresSDF          = "beam:requirement:pardo:splittable_dofn:v1"
	requiresFinalization = "beam:requirement:pardo:finalization:v1"
)

// pipelineProto is the portable pipeline a runner would receive.
func pipelineProto(t *testing.T, p *beam.Pipeline) *pipepb.Pipeline {
	t.Helper()
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:default:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

// nativeReads returns the payloads of the pipeline's Dataflow Pub/Sub sources.
func nativeReads(t *testing.T, pb *pipepb.Pipeline) []*pipepb.PubSubReadPayload {
	t.Helper()
	var out []*pipepb.PubSubReadPayload
	for _, tr := range pb.GetComponents().GetTransforms() {
		if tr.GetSpec().GetUrn() != pubsubio.NativeReadURN {
			continue
		}
		var pl pipepb.PubSubReadPayload
		if err := proto.Unmarshal(tr.GetSpec().GetPayload(), &pl); err != nil {
			t.Fatal(err)
		}
		out = append(out, &pl)
	}
	return out
}

func TestReadAndReadNativeBuildTheirSources(t *testing.T) {
	cfg := pubsubio.Config{Subscription: goodSub, EventTimeAttribute: "event_time"}
	cases := []struct {
		name         string
		native       bool
		requirements []string // wanted
		absent       []string // not wanted
	}{
		{"ReadNative is Dataflow's source, no splittable DoFn", true, nil, []string{requiresSDF, requiresFinalization}},
		{"Read is a splittable DoFn without bundle finalization", false, []string{requiresSDF}, []string{requiresFinalization}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, s := beam.NewPipelineWithRoot()
			if c.native {
				pubsubio.ReadNative(s, cfg)
			} else {
				pubsubio.Read(s, cfg)
			}
			pb := pipelineProto(t, p)
			reads := nativeReads(t, pb)
			if c.native {
				if len(reads) != 1 || reads[0].GetSubscription() != goodSub || !reads[0].GetWithAttributes() || reads[0].GetTimestampAttribute() != "" {
					t.Fatalf("native reads = %v; want one of %s with attributes and no timestamp attribute", reads, goodSub)
				}
			} else if len(reads) != 0 {
				t.Fatalf("native reads = %v; want none", reads)
			}
			for _, r := range c.requirements {
				if !slices.Contains(pb.GetRequirements(), r) {
					t.Errorf("requirements %v lack %s", pb.GetRequirements(), r)
				}
			}
			for _, r := range c.absent {
				if slices.Contains(pb.GetRequirements(), r) {
					t.Errorf("requirements %v include %s", pb.GetRequirements(), r)
				}
			}
		})
	}
}

func TestPrismRejectsTheNativeSource(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	pubsubio.ReadNative(s, pubsubio.Config{Subscription: goodSub})
	err := ptest.Run(p)
	if err == nil {
		t.Fatal("Prism ran Dataflow's Pub/Sub source")
	}
	t.Logf("Prism: %v", err)
	if !strings.Contains(err.Error(), pubsubio.NativeReadURN) {
		t.Errorf("error %q does not name %s", err, pubsubio.NativeReadURN)
	}
}
