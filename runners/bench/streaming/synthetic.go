package main

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/periodic"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
	"github.com/railyard/railyard/schemas"
)

// The synthetic source (--source=synthetic) replaces pstest and the
// publisher: a periodic impulse ticks every tickInterval, and on each
// tick releaseFn emits, as the records the Pub/Sub read would, the
// messages of the stream due by then. The messages live in this process:
// the bench runs the job's SDK harness in its own process (Prism's
// loopback), so the DoFn reads them from the schedule below.

func init() {
	register.DoFn3x0[context.Context, []byte, func(beam.EventTime, schemas.Record)](&releaseFn{})
	register.Emitter2[beam.EventTime, schemas.Record]()
}

// tickInterval is how often the synthetic source releases what is due.
const tickInterval = 10 * time.Millisecond

// schedule is the stream the synthetic source releases: msgs, each due
// its publish time after start.
var schedule struct {
	mu    sync.Mutex
	msgs  []sample.Message
	start time.Time
	next  int
}

// syntheticSource is the job's records: msgs, released on time from
// start, in a run that lasts until idle after the last is due. As the
// Pub/Sub read stays idle for --stop_after_idle before it ends, the
// source ticks on for idle: when it ends, the watermark jumps to the end
// of time, and on Prism v2.77.0 an early firing still pending then fails
// the job (runners/KNOWN_ISSUES.md).
func syntheticSource(msgs []sample.Message, start time.Time, idle time.Duration) streamjob.Source {
	schedule.mu.Lock()
	schedule.msgs, schedule.start, schedule.next = msgs, start, 0
	schedule.mu.Unlock()
	last := start.Add(time.Duration(msgs[len(msgs)-1].PublishTime-msgs[0].PublishTime) * time.Microsecond)
	return func(s beam.Scope) beam.PCollection {
		ticks := periodic.Impulse(s, start, last.Add(idle), tickInterval, false)
		return beam.ParDo(s, &releaseFn{}, ticks)
	}
}

// releaseFn emits the messages of the schedule due by now, stamped and
// timed as the Pub/Sub read stamps them: with their publish time, which
// is also their ingest time.
type releaseFn struct{}

func (fn *releaseFn) ProcessElement(_ context.Context, _ []byte, emit func(beam.EventTime, schemas.Record)) {
	schedule.mu.Lock()
	defer schedule.mu.Unlock()
	msgs := schedule.msgs
	elapsed := time.Since(schedule.start).Microseconds()
	for ; schedule.next < len(msgs); schedule.next++ {
		m := msgs[schedule.next]
		if m.PublishTime-msgs[0].PublishTime > elapsed {
			return
		}
		published := schedule.start.Add(time.Duration(m.PublishTime-msgs[0].PublishTime) * time.Microsecond)
		id := m.MessageID
		if id == "" {
			id = "synthetic-" + strconv.Itoa(schedule.next)
		}
		emit(mtime.FromTime(published), schemas.Record{
			Data: m.Data, Attributes: m.Attributes, MessageID: id,
			PublishTime: published.UnixMicro(), IngestTime: published.UnixMicro(),
		})
	}
}
