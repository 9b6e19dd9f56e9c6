package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/pipelines/collect/collector"
)

// edge is the collection edge of the run, in-process on 127.0.0.1,
// publishing to the run's topic.
type edge struct {
	url    string // the events endpoint
	stop   context.CancelFunc
	served chan error
}

// startEdge starts the collection edge with its defaults in front of the
// run's topic.
func startEdge(e *env, o options) (*edge, error) {
	cfg := collector.DefaultConfig()
	cfg.Topic = o.topic()
	c, err := collector.New(cfg, e.psClient, slog.Default())
	if err != nil {
		return nil, fmt.Errorf("collection edge: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("collection edge: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ed := &edge{url: "http://" + ln.Addr().String() + collector.PathEvents, stop: cancel, served: make(chan error, 1)}
	go func() { ed.served <- c.Serve(ctx, ln) }()
	return ed, nil
}

// Close shuts the edge down gracefully.
func (ed *edge) Close() error {
	ed.stop()
	return <-ed.served
}

// edgeSent is what sending the stream through the edge did.
type edgeSent struct {
	requests, records, accepted, rejected, retried int
	// refused are records in requests the edge refused whole (a blank
	// record sent alone).
	refused int
	// behind is how far the sender fell behind the stream's clock at
	// worst.
	behind time.Duration
}

// sendBatchEvery is how often the sender posts the messages due: an app
// or a server batching its events.
const sendBatchEvery = 100 * time.Millisecond

// sendThroughEdge posts msgs to the edge in real time, as clients would:
// every sendBatchEvery, the messages due by then in one NDJSON request,
// each message's data a line (a record holding a line break goes alone,
// as application/json). Records the edge answers failed (429, 503) are
// sent again after its Retry-After. It returns once every record has
// been answered accepted or rejected, or at the first error.
func sendThroughEdge(ctx context.Context, url string, msgs []sample.Message) (edgeSent, error) {
	var sent edgeSent
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	for i := 0; i < len(msgs); {
		due := start.Add(time.Duration(msgs[i].PublishTime-msgs[0].PublishTime) * time.Microsecond)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return sent, ctx.Err()
			}
		} else {
			sent.behind = max(sent.behind, -wait)
		}
		// The batch: every message due within the next interval.
		until := due.Add(sendBatchEvery)
		var batch [][]byte
		for ; i < len(msgs); i++ {
			at := start.Add(time.Duration(msgs[i].PublishTime-msgs[0].PublishTime) * time.Microsecond)
			if at.After(until) && len(batch) > 0 {
				break
			}
			if bytes.IndexByte(msgs[i].Data, '\n') >= 0 {
				if len(batch) == 0 {
					batch = append(batch, msgs[i].Data)
					i++
				}
				break
			}
			batch = append(batch, msgs[i].Data)
		}
		if err := sendRecords(ctx, client, url, batch, &sent); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// sendRecords posts records until each is accepted or rejected.
func sendRecords(ctx context.Context, client *http.Client, url string, records [][]byte, sent *edgeSent) error {
	sent.records += len(records)
	for attempt := 1; len(records) > 0; attempt++ {
		contentType, body := "application/x-ndjson", bytes.Join(records, []byte{'\n'})
		if len(records) == 1 && bytes.IndexByte(records[0], '\n') >= 0 {
			contentType = "application/json"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", contentType)
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("post to the collection edge: %w", err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("read the collection edge's answer: %w", err)
		}
		sent.requests++
		switch res.StatusCode {
		case http.StatusOK, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		case http.StatusBadRequest:
			sent.refused += len(records)
			return nil
		default:
			return fmt.Errorf("the collection edge answered %d: %s", res.StatusCode, b)
		}
		var resp collector.Response
		if err := json.Unmarshal(b, &resp); err != nil {
			return fmt.Errorf("the collection edge's answer %q: %w", b, err)
		}
		sent.accepted += resp.Accepted
		sent.rejected += resp.Rejected
		var again [][]byte
		for _, r := range resp.Records {
			if r.Status == "failed" {
				again = append(again, records[r.Index])
			}
		}
		if len(again) == 0 {
			return nil
		}
		if attempt == 10 {
			return errors.New("the collection edge failed records 10 times: Pub/Sub unavailable")
		}
		sent.retried += len(again)
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		select {
		case <-time.After(time.Duration(max(wait, 1)) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		records = again
	}
	return nil
}
