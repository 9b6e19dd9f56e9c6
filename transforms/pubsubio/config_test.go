package pubsubio_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/transforms/pubsubio"
)

const goodSub = "projects/railyard-test/subscriptions/railyard-speed"

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  pubsubio.Config
		want []string // substrings of the error; none for a valid config
	}{
		{"accepts a full subscription name", pubsubio.Config{Subscription: goodSub}, nil},
		{"accepts every field set", pubsubio.Config{
			Project: "billing-project", Subscription: goodSub, Shards: 8, MaxMessagesPerPull: 500,
			EventTimeAttribute: "event_time", StopAfterIdle: time.Minute, PollInterval: time.Second,
			PullTimeout: time.Second, MaxBundleMessages: 100, MaxBundleDuration: time.Second,
			IdleWatermarkLag: time.Second, AckExtension: time.Minute,
		}, nil},
		{"accepts the longest deadline and extension", pubsubio.Config{
			Subscription: goodSub, AckDeadline: 600 * time.Second, AckExtension: time.Hour,
		}, nil},
		{"accepts Pub/Sub's shortest deadline as deadline and extension", pubsubio.Config{
			Subscription: goodSub, AckDeadline: 10 * time.Second, AckExtension: 10 * time.Second,
		}, nil},
		{"rejects a deadline beyond Pub/Sub's limit", pubsubio.Config{Subscription: goodSub, AckDeadline: 601 * time.Second},
			[]string{"AckDeadline is 10m1s; want 10s to 10m0s"}},
		{"rejects a deadline shorter than a subscription's", pubsubio.Config{Subscription: goodSub, AckDeadline: 5 * time.Second},
			[]string{"AckDeadline is 5s; want 10s to 10m0s"}},
		{"rejects an extension beyond an hour", pubsubio.Config{Subscription: goodSub, AckExtension: time.Hour + time.Second},
			[]string{"AckExtension is 1h0m1s; want the ack deadline (1m0s) to 1h0m0s"}},
		{"rejects an extension shorter than the deadline", pubsubio.Config{Subscription: goodSub, AckDeadline: 30 * time.Second, AckExtension: 20 * time.Second},
			[]string{"AckExtension is 20s; want the ack deadline (30s) to 1h0m0s"}},
		{"requires a subscription", pubsubio.Config{}, []string{"Subscription is required"}},
		{"rejects a bare subscription id", pubsubio.Config{Subscription: "railyard-speed"},
			[]string{`Subscription "railyard-speed" is not a full subscription name`}},
		{"rejects a topic name", pubsubio.Config{Subscription: "projects/p1/topics/events"},
			[]string{"is not a full subscription name"}},
		{"rejects a name starting with a digit", pubsubio.Config{Subscription: "projects/p1/subscriptions/1abc"},
			[]string{"is not a full subscription name"}},
		{"rejects a name starting with goog", pubsubio.Config{Subscription: "projects/p1/subscriptions/google-sub"},
			[]string{`may not start with "goog"`}},
		{"rejects an upper-case project", pubsubio.Config{Subscription: "projects/My_Project/subscriptions/abc"},
			[]string{`"My_Project" is not a project id`}},
		{"rejects a bad billing project", pubsubio.Config{Project: "a/b", Subscription: goodSub},
			[]string{`Project "a/b" is not a project id`}},
		{"rejects negative shards", pubsubio.Config{Subscription: goodSub, Shards: -1},
			[]string{"Shards is -1; want 1 to 256"}},
		{"rejects too many shards", pubsubio.Config{Subscription: goodSub, Shards: 1000},
			[]string{"Shards is 1000"}},
		{"rejects a negative pull size", pubsubio.Config{Subscription: goodSub, MaxMessagesPerPull: -5},
			[]string{"MaxMessagesPerPull is -5"}},
		{"rejects a negative bundle size", pubsubio.Config{Subscription: goodSub, MaxBundleMessages: -1},
			[]string{"MaxBundleMessages is -1"}},
		{"rejects an attribute with spaces", pubsubio.Config{Subscription: goodSub, EventTimeAttribute: " ts"},
			[]string{"EventTimeAttribute \" ts\" has leading or trailing spaces"}},
		{"rejects negative durations", pubsubio.Config{Subscription: goodSub, StopAfterIdle: -time.Second,
			PollInterval: -1, PullTimeout: -1, MaxBundleDuration: -1, IdleWatermarkLag: -1, AckDeadline: -1, AckExtension: -1},
			[]string{"StopAfterIdle is -1s", "PollInterval is", "PullTimeout is", "MaxBundleDuration is", "IdleWatermarkLag is",
				"AckDeadline is -1ns; want 0 or more", "AckExtension is -1ns; want 0 or more"}},
		{"accepts the flow-control caps at their bounds", pubsubio.Config{
			Subscription: goodSub, MaxOutstandingMessages: 10_000_000, MaxOutstandingBytes: 1 << 20,
		}, nil},
		{"rejects a negative message cap", pubsubio.Config{Subscription: goodSub, MaxOutstandingMessages: -1},
			[]string{"MaxOutstandingMessages is -1; want 1 to 10000000 (0 for the default, 200000)"}},
		{"rejects a message cap beyond ten million", pubsubio.Config{Subscription: goodSub, MaxOutstandingMessages: 10_000_001},
			[]string{"MaxOutstandingMessages is 10000001"}},
		{"rejects a byte cap under 1 MiB", pubsubio.Config{Subscription: goodSub, MaxOutstandingBytes: 1000},
			[]string{"MaxOutstandingBytes is 1000; want 1048576 (1 MiB) to 68719476736 (64 GiB)"}},
		{"rejects a byte cap beyond 64 GiB", pubsubio.Config{Subscription: goodSub, MaxOutstandingBytes: 65 << 30},
			[]string{"MaxOutstandingBytes is 69793218560"}},
		{"reports every problem at once", pubsubio.Config{Shards: -1, MaxMessagesPerPull: -1},
			[]string{"Subscription is required", "Shards is -1", "MaxMessagesPerPull is -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "pubsubio: ") {
				t.Errorf("Validate() = %q, want the pubsubio: prefix", err)
			}
		})
	}
}

func TestReadPanicsWhileBuildingOnABadConfig(t *testing.T) {
	for name, build := range map[string]func(beam.Scope, pubsubio.Config){
		"Read":       func(s beam.Scope, cfg pubsubio.Config) { pubsubio.Read(s, cfg) },
		"ReadNative": func(s beam.Scope, cfg pubsubio.Config) { pubsubio.ReadNative(s, cfg) },
		"Ack":        func(s beam.Scope, cfg pubsubio.Config) { pubsubio.Ack(s, cfg, beam.Create(s, "ack-id")) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "Subscription is required") {
					t.Fatalf("recovered %v, want the validation error", r)
				}
			}()
			_, s := beam.NewPipelineWithRoot()
			build(s, pubsubio.Config{})
		})
	}
}
