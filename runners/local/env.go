package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/publish"
	"github.com/railyard/railyard/transforms/bqsink"
)

// env is the run's emulators and the clients this command uses, with the
// process's environment pointed at them for the jobs.
type env struct {
	gcs *emulators.Storage
	ps  *emulators.PubSub
	bq  *emulators.BigQuery

	bqClient *bigquery.Client
	psClient *pubsub.Client

	closers []func() error // in the order they were opened
}

// startEmulators starts the three emulators, sets the standard variables,
// and creates the lake bucket, the topic and the subscription.
func startEmulators(ctx context.Context, o options) (e *env, err error) {
	e = &env{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()
	if e.gcs, err = emulators.StartStorage(); err != nil {
		return e, err
	}
	e.closers = append(e.closers, e.gcs.Close)
	e.ps = emulators.StartPubSub()
	e.closers = append(e.closers, e.ps.Close)
	if e.bq, err = emulators.StartBigQuery(ctx, o.project); err != nil {
		return e, err
	}
	e.closers = append(e.closers, e.bq.Close)
	for k, v := range e.vars() {
		if err := os.Setenv(k, v); err != nil {
			return e, err
		}
	}

	e.gcs.CreateBucket(o.bucket)
	if e.psClient, err = pubsub.NewClient(ctx, o.project); err != nil {
		return e, fmt.Errorf("pubsub client: %w", err)
	}
	e.closers = append(e.closers, e.psClient.Close)
	if err := publish.Setup(ctx, e.psClient, o.topic(), o.subscription()); err != nil {
		return e, err
	}
	if e.bqClient, err = bqsink.NewClient(ctx, o.project); err != nil {
		return e, err
	}
	e.closers = append(e.closers, e.bqClient.Close)
	return e, nil
}

// vars are the environment variables that point clients at the emulators.
func (e *env) vars() map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{e.ps.Env(), e.gcs.Env(), e.bq.Env()} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Close closes the clients, then stops the emulators, the BigQuery
// emulator's whole process group included.
func (e *env) Close() error {
	var err error
	for i := len(e.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, e.closers[i]())
	}
	e.closers = nil
	return err
}
