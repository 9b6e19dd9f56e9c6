package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths the edge serves.
const (
	PathEvents  = "/v1/events"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
)

// Collector is one collection edge: the HTTP handler and the Pub/Sub
// publisher behind it. Create it with New, serve it with Serve (or mount
// Handler and call Stop when done).
type Collector struct {
	cfg     Config
	client  *pubsub.Client
	pub     *pubsub.Publisher
	keys    *keyStore
	origins map[string]bool
	anyOrig bool
	m       *metrics
	log     *slog.Logger
	mux     *http.ServeMux

	draining atomic.Bool
	ready    readiness
	stopOnce sync.Once
}

// New returns the edge cfg describes, publishing with client (which the
// caller owns and closes after Stop or Serve has returned). It checks cfg
// but calls nothing: /readyz tells whether the topic can be reached.
func New(cfg Config, client *pubsub.Client, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("collector: no Pub/Sub client")
	}
	if log == nil {
		log = slog.Default()
	}
	pub := client.Publisher(cfg.Topic)
	pub.PublishSettings.Timeout = cfg.PublishTimeout
	pub.PublishSettings.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: cfg.MaxOutstandingMessages,
		MaxOutstandingBytes:    cfg.MaxOutstandingBytes,
		LimitExceededBehavior:  pubsub.FlowControlSignalError,
	}
	c := &Collector{
		cfg: cfg, client: client, pub: pub,
		keys:    newKeyStore(cfg.Keys),
		origins: map[string]bool{},
		m:       newMetrics(),
		log:     log,
		mux:     http.NewServeMux(),
	}
	for _, o := range cfg.AllowedOrigins {
		c.origins[o] = true
		c.anyOrig = c.anyOrig || o == "*"
	}
	c.ready.check = c.topicExists
	c.mux.HandleFunc(PathEvents, c.serveEvents)
	c.mux.HandleFunc(PathHealthz, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	c.mux.HandleFunc(PathReadyz, c.serveReady)
	c.mux.Handle(PathMetrics, promhttp.HandlerFor(c.m.reg, promhttp.HandlerOpts{}))
	return c, nil
}

// Handler returns the edge's HTTP handler.
func (c *Collector) Handler() http.Handler { return c.mux }

// Stop flushes the publisher: it returns once every record published has
// been acknowledged by Pub/Sub or has failed. Requests after it fail 503.
func (c *Collector) Stop() {
	c.stopOnce.Do(func() {
		c.draining.Store(true)
		c.pub.Stop()
	})
}

// Serve serves the edge on ln until ctx is done, then shuts down
// gracefully within Config.ShutdownTimeout: it stops accepting
// connections, lets every request in flight finish (each waits for its
// records' acknowledgements), then flushes the publisher. It returns nil
// after a clean shutdown.
func (c *Collector) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           c.mux,
		ReadHeaderTimeout: c.cfg.ReadHeaderTimeout,
		ReadTimeout:       c.cfg.ReadTimeout,
		// A request reads its body, then waits for Pub/Sub.
		WriteTimeout:   c.cfg.ReadTimeout + c.cfg.PublishTimeout + 5*time.Second,
		IdleTimeout:    c.cfg.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c.log.Info("collection edge serving", "addr", ln.Addr().String(), "topic", c.cfg.Topic, "auth", c.cfg.Auth)
	select {
	case err := <-served:
		c.Stop()
		return fmt.Errorf("collection edge: serve: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	c.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("collection edge: requests still in flight after --shutdown_timeout=%v: %w", c.cfg.ShutdownTimeout, err)
	}
	flushed := make(chan struct{})
	go func() { c.Stop(); close(flushed) }()
	select {
	case <-flushed:
	case <-sctx.Done():
		err = errors.Join(err, fmt.Errorf("collection edge: the publisher did not flush within --shutdown_timeout=%v", c.cfg.ShutdownTimeout))
	}
	<-served
	c.log.Info("collection edge stopped", "took", time.Since(start).Round(time.Millisecond), "clean", err == nil)
	return err
}

// readiness caches whether Pub/Sub answers for the topic: a probe every
// few seconds must not become a request to Pub/Sub each.
type readiness struct {
	check func(context.Context) error

	mu      sync.Mutex
	checked time.Time
	err     error
}

const (
	readyTimeout   = 2 * time.Second
	readyCacheFor  = 5 * time.Second
	notReadyCached = time.Second
)

func (r *readiness) get(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := readyCacheFor
	if r.err != nil {
		keep = notReadyCached
	}
	if !r.checked.IsZero() && time.Since(r.checked) < keep {
		return r.err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	r.err = r.check(ctx)
	r.checked = time.Now()
	return r.err
}

func (c *Collector) topicExists(ctx context.Context) error {
	if _, err := c.client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: c.cfg.Topic}); err != nil {
		return fmt.Errorf("Pub/Sub topic %s: %w", c.cfg.Topic, err)
	}
	return nil
}

func (c *Collector) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if c.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	if err := c.ready.get(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ready")
}
