package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

// pollEvery is how often the run reports progress while a job runs; each
// report of the streaming job costs one short BigQuery query.
const pollEvery = 2 * time.Second

// speedResult is what the speed layer did.
type speedResult struct {
	counters map[string]int64
	// minutes is the speed layer's answer for the streamed minutes, read
	// before the batch layer runs: events per minute over the latest
	// pane of each window.
	minutes map[time.Time]int64
	// landed is what the speed tables hold once the job has ended.
	landed landed
}

// landed is what a layer's tables hold: distinct events, event rows (the
// speed layer writes at least once) and dead letters.
type landed struct{ events, rows, dead int64 }

// speedLanded counts what the streaming job wrote, read back from BigQuery
// once it has ended (no job contends with the queries then).
func speedLanded(ctx context.Context, e *env, o options) (landed, error) {
	dest := o.destination()
	rows, err := queryRows(ctx, e.bqClient, fmt.Sprintf(
		"SELECT (SELECT COUNT(DISTINCT event_id) FROM %[1]s) AS events, (SELECT COUNT(*) FROM %[1]s) AS event_rows, (SELECT COUNT(*) FROM %[2]s WHERE layer = 'speed') AS dead",
		tableRef(dest, schemas.TableEventsSpeed), tableRef(dest, schemas.TableDeadLetter)))
	if err != nil {
		return landed{}, err
	}
	if len(rows) != 1 {
		return landed{}, fmt.Errorf("%d rows, want 1", len(rows))
	}
	return landed{asInt(rows[0]["events"]), asInt(rows[0]["event_rows"]), asInt(rows[0]["dead"])}, nil
}

// runSpeedLayer sends a live stream in real time, over HTTP through the
// collection edge that publishes it to the topic, in the background while
// the streaming job reads it on Prism, until the job ends once the
// subscription is idle. It reports progress every pollEvery.
func runSpeedLayer(ctx context.Context, p *progress, e *env, o options) (*speedResult, error) {
	var msgs []sample.Message
	for m := range sample.Live(sample.LiveConfig{Seed: 1, Start: time.Now(), Rate: o.streamRate}, o.streamMessages) {
		msgs = append(msgs, m)
	}
	total := int64(len(msgs))
	streamFor := time.Duration(msgs[len(msgs)-1].PublishTime-msgs[0].PublishTime) * time.Microsecond
	ed, err := startEdge(e, o)
	if err != nil {
		return nil, err
	}
	defer ed.Close()
	p.say("Speed layer: sending %s records (duplicates, bad records and late events among them) at %d/s in real time, for about %s,",
		thousands(total), o.streamRate, streamFor.Round(time.Second))
	p.say("as NDJSON batches every %s to the collection edge at %s, which publishes them to %s;", sendBatchEvery, ed.url, o.topic())
	p.say("the streaming job reads %s on Prism and ends once it has been idle for %s.", o.subscription(), o.stopAfterIdle)
	p.say("Progress: messages published; rows the job wrote to events_speed, dead_letter (speed) and metrics_minute_speed (panes); messages acknowledged (once their minute of the archive is written).")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type published struct {
		sent edgeSent
		err  error
	}
	pubDone := make(chan published, 1)
	go func() {
		sent, err := sendThroughEdge(ctx, ed.url, msgs)
		pubDone <- published{sent, err}
	}()
	type finished struct {
		res beam.PipelineResult
		err error
	}
	jobDone := make(chan finished, 1)
	started := time.Now()
	cfg := o.streamConfig("local-stream-" + started.UTC().Format("20060102t150405"))
	go func() {
		res, err := streamjob.Run(ctx, cfg)
		jobDone <- finished{res, err}
	}()

	res := &speedResult{}
	publishing := true
	donePublishing := func(pub published) error {
		if pub.err != nil {
			return fmt.Errorf("send the stream through the collection edge: %w", pub.err)
		}
		publishing = false
		s := pub.sent
		p.say("Sent %s records in %s requests (kept to the stream's clock within %s): the edge accepted %s and rejected %s (published all the same, for dead_letter)%s.",
			thousands(int64(s.records)), thousands(int64(s.requests)), s.behind.Round(time.Millisecond), thousands(int64(s.accepted)), thousands(int64(s.rejected)), edgeExtras(s))
		return nil
	}
	watch := &streamWatch{e: e, o: o}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case pub := <-pubDone:
			if err := donePublishing(pub); err != nil {
				return nil, err
			}
		case job := <-jobDone:
			if job.err != nil {
				return nil, job.err
			}
			if publishing {
				select {
				case pub := <-pubDone:
					if err := donePublishing(pub); err != nil {
						return nil, err
					}
				default:
					return nil, errors.New("the streaming job ended before the whole stream was published: raise --stop_after_idle")
				}
			}
			res.counters = railyardCounters(job.res)
			n, acked := e.pubsubCounts()
			p.say("Streaming job done in %s: %s messages read, %s archived to %s/raw/, %s of %s acknowledged.",
				time.Since(started).Round(100*time.Millisecond), thousands(res.counters[metricnames.PubsubMessagesRead]),
				thousands(res.counters[metricnames.LakeRecordsArchived]), o.lake(), thousands(int64(acked)), thousands(int64(n)))
			minutes, err := speedMinutes(ctx, e, o)
			if err != nil {
				return nil, fmt.Errorf("read the speed layer's minutes: %w", err)
			}
			res.minutes = minutes
			if res.landed, err = speedLanded(ctx, e, o); err != nil {
				return nil, fmt.Errorf("count the speed layer's rows: %w", err)
			}
			return res, nil
		case <-tick.C:
			n, _ := e.pubsubCounts()
			p.update("%s", watch.line(ctx, publishing, int64(n), total))
		}
	}
}

// pubsubCounts returns how many messages pstest holds and how many of
// them were acknowledged.
func (e *env) pubsubCounts() (published, acked int) {
	for _, m := range e.ps.Server.Messages() {
		published++
		if m.Acks > 0 {
			acked++
		}
	}
	return published, acked
}

// streamWatch reports what the streaming job has written so far. It reads
// the tables' row counts from their metadata (tables.get) rather than
// with a query: the emulator records every query job in its SQLite
// database, a write that contends with the job's appends ("database is
// locked", and the job retries), while tables.get only reads. During the
// speed layer, every dead letter is the stream's: the batch job runs
// after. When the emulator does not answer in time, the report repeats
// the last counts, marked stale.
type streamWatch struct {
	e    *env
	o    options
	last streamCounts
	seen bool // whether the tables have answered yet
}

type streamCounts struct{ events, dead, panes int64 }

// status returns the counts and whether they are fresh.
func (w *streamWatch) status(ctx context.Context) (streamCounts, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*pollEvery)
	defer cancel()
	var n [3]int64
	for i, table := range []string{schemas.TableEventsSpeed, schemas.TableDeadLetter, schemas.TableMetricsMinuteSpeed} {
		md, err := w.e.bqClient.Dataset(w.o.dataset).Table(table).Metadata(ctx)
		if err != nil {
			return w.last, false
		}
		n[i] = int64(md.NumRows)
	}
	w.last = streamCounts{events: n[0], dead: n[1], panes: n[2]}
	w.seen = true
	return w.last, true
}

// line is one progress line of the speed layer, short enough for an
// 80-column terminal at the default sizes.
func (w *streamWatch) line(ctx context.Context, publishing bool, published, total int64) string {
	c, fresh := w.status(ctx)
	stale := ""
	if !fresh && w.seen {
		stale = " (stale: BigQuery busy)"
	}
	job := fmt.Sprintf("%s events, %s dead letters", thousands(c.events), thousands(c.dead))
	if !w.seen {
		job = "starting on Prism…"
	}
	if publishing {
		return fmt.Sprintf("Publishing %s/%s · streaming job: %s%s", thousands(published), thousands(total), job, stale)
	}
	_, acked := w.e.pubsubCounts()
	return fmt.Sprintf("Streaming job: %s, %s panes, %s acked%s", job, thousands(c.panes), thousands(int64(acked)), stale)
}

// speedMinutesSQL sums, per one-minute window, the events of the latest
// pane of each window of metrics_minute_speed: the speed layer's final
// answer, as the metrics_minute view picks it.
const speedMinutesSQL = `SELECT window_start, SUM(events) AS events FROM (
  SELECT window_start, events, ROW_NUMBER() OVER (
    PARTITION BY window_start, event_type, source, platform, country
    ORDER BY processed_at DESC, pane_index DESC) AS latest
  FROM %s)
WHERE latest = 1 GROUP BY window_start ORDER BY window_start`

func speedMinutes(ctx context.Context, e *env, o options) (map[time.Time]int64, error) {
	rows, err := queryRows(ctx, e.bqClient, fmt.Sprintf(speedMinutesSQL, tableRef(o.destination(), schemas.TableMetricsMinuteSpeed)))
	if err != nil {
		return nil, err
	}
	return perMinute(rows), nil
}

// edgeExtras mentions retried and refused records, when there were any.
func edgeExtras(s edgeSent) string {
	out := ""
	if s.retried > 0 {
		out += fmt.Sprintf("; %s sent again after a 429 or 503", thousands(int64(s.retried)))
	}
	if s.refused > 0 {
		out += fmt.Sprintf("; %s refused (blank)", thousands(int64(s.refused)))
	}
	return out
}
