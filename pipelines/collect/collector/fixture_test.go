package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/railyard/railyard/internal/emulators"
)

const testProject = "railyard-test"

// fixture is one edge serving on a real listener of 127.0.0.1, publishing
// to its own topic of its own pstest, with a subscription to check what
// was published.
type fixture struct {
	t      *testing.T
	ps     *emulators.PubSub
	client *pubsub.Client
	topic  string
	sub    string
	c      *Collector
	url    string // http://127.0.0.1:PORT
	stop   context.CancelFunc
	served chan error
}

var topicSeq atomic.Int64

// newClient is a Pub/Sub client of the server at host.
func newClient(t *testing.T, host string) *pubsub.Client {
	t.Helper()
	client, err := pubsub.NewClient(context.Background(), testProject,
		option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func testConfig(topic string) Config {
	cfg := DefaultConfig()
	cfg.Topic = topic
	cfg.PublishTimeout = 3 * time.Second
	return cfg
}

// startEdge starts pstest, a topic and subscription, and the edge with
// the test configuration changed by mutate, publishing through a client
// of pubsubHost (pstest itself when "").
func startEdge(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	return startEdgeOn(t, ps, ps.Host, mutate)
}

func startEdgeOn(t *testing.T, ps *emulators.PubSub, pubsubHost string, mutate func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, ps: ps}
	admin := newClient(t, ps.Host)
	n := topicSeq.Add(1)
	f.topic = fmt.Sprintf("projects/%s/topics/events-%d", testProject, n)
	f.sub = fmt.Sprintf("projects/%s/subscriptions/check-%d", testProject, n)
	if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: f.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: f.sub, Topic: f.topic, AckDeadlineSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	f.client = admin
	if pubsubHost != ps.Host {
		f.client = newClient(t, pubsubHost)
	}
	cfg := testConfig(f.topic)
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, f.client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	var sctx context.Context
	sctx, f.stop = context.WithCancel(ctx)
	f.served = make(chan error, 1)
	go func() { f.served <- c.Serve(sctx, ln) }()
	t.Cleanup(func() { f.shutdown() })
	return f
}

// shutdown stops the edge and returns what Serve returned.
func (f *fixture) shutdown() error {
	f.stop()
	select {
	case err := <-f.served:
		f.served <- err // for a second call
		return err
	case <-time.After(15 * time.Second):
		return errors.New("Serve did not return within 15 s of its context's end")
	}
}

// answer is one response.
type answer struct {
	status int
	header http.Header
	body   []byte
	resp   Response
	err    ErrorResponse
}

// post sends body to /v1/events.
func (f *fixture) post(contentType, encoding string, body io.Reader, header map[string]string) answer {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+PathEvents, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) answer {
	f.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	a := answer{status: res.StatusCode, header: res.Header, body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if bytes.Contains(b, []byte(`"error":`)) {
			err = json.Unmarshal(b, &a.err)
		} else {
			err = json.Unmarshal(b, &a.resp)
		}
		if err != nil {
			f.t.Fatalf("response %s: %v", b, err)
		}
	}
	return a
}

// published pulls every message of the check subscription and
// acknowledges it, in the order of their message ids.
func (f *fixture) published() []*pubsubpb.PubsubMessage {
	f.t.Helper()
	ctx := context.Background()
	admin := newClient(f.t, f.ps.Host)
	var out []*pubsubpb.PubsubMessage
	for {
		res, err := admin.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: f.sub, MaxMessages: 1000, ReturnImmediately: true})
		if err != nil {
			f.t.Fatalf("pull %s: %v", f.sub, err)
		}
		if len(res.ReceivedMessages) == 0 {
			break
		}
		var ids []string
		for _, m := range res.ReceivedMessages {
			out = append(out, m.Message)
			ids = append(ids, m.AckId)
		}
		if err := admin.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: f.sub, AckIds: ids}); err != nil {
			f.t.Fatal(err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return msgSeq(out[i]) < msgSeq(out[j]) })
	return out
}

// msgSeq orders pstest's message ids (decimal counters).
func msgSeq(m *pubsubpb.PubsubMessage) string {
	return fmt.Sprintf("%020s", m.MessageId)
}

func datas(msgs []*pubsubpb.PubsubMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

// TestMain sets Beam up for the end-to-end test's streaming job.
func TestMain(m *testing.M) { ptest.Main(m) }

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %.200s", err, b)
	}
	return nil
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }
