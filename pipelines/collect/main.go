// Command collect is Railyard's collection edge: an HTTP service that
// validates events against the event contract and publishes them to the
// Pub/Sub topic the streaming job reads, answering "accepted" only for
// what Pub/Sub has acknowledged. See pipelines/collect/README.md.
//
//	go run ./pipelines/collect --topic=projects/P/topics/events [--port=8080] [--auth=api_key]
//
// It listens on --port (default $PORT, as Cloud Run sets it, else 8080),
// logs JSON with log/slog, and on SIGTERM or Ctrl-C shuts down gracefully
// within --shutdown_timeout. PUBSUB_EMULATOR_HOST points it at an
// emulator.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2"

	"github.com/railyard/railyard/pipelines/collect/collector"
)

func main() {
	build := collector.RegisterFlags(flag.CommandLine)
	port := flag.String("port", envOr("PORT", "8080"), "TCP port to listen on (default: $PORT, as Cloud Run sets it, else 8080).")
	debug := flag.Bool("debug", false, "Log each request (never a payload) at debug level.")
	flag.Parse()
	cfg, err := build()
	if err != nil {
		fmt.Fprintf(os.Stderr, "collect: %v\nRun with -help for the flags.\n", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if err := run(cfg, *port, log); err != nil {
		log.Error("collection edge failed", "error", err)
		os.Exit(1)
	}
}

func run(cfg collector.Config, port string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The client outlives the signal: the publisher flushes through it.
	client, err := pubsub.NewClient(context.Background(), collector.Project(cfg.Topic))
	if err != nil {
		return fmt.Errorf("Pub/Sub client: %w", err)
	}
	defer client.Close()
	c, err := collector.New(cfg, client, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return fmt.Errorf("--port=%s: %w", port, err)
	}
	return c.Serve(ctx, ln)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
