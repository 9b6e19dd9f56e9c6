package bqsink_test

import (
	"context"
	"log"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/transforms/bqsink"
)

// The batch job's write step: create what is missing, then replace the
// days the run covers, and the dead letters of the files it read.
func Example() {
	cfg := bqsink.Config{Project: "my-project", Dataset: "railyard", Location: "US", RunID: "batch-20240102T0300"}
	if err := bqsink.Ensure(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}

	p, s := beam.NewPipelineWithRoot()
	var events, decodeFailures, files beam.PCollection // schemas.Event, schemas.DeadLetter, string: from the read and decode steps
	table, _ := schemas.LookupTable(schemas.TableEventsBatch)
	writeFailures := bqsink.ReplacePartitions(s.Scope("WriteEvents"), cfg, table, events, []string{"2024-01-01", "2024-01-02"})
	bqsink.ReplaceDeadLetters(s.Scope("WriteDeadLetters"), cfg, beam.Flatten(s, decodeFailures, writeFailures), files)
	_ = p
}

// The streaming job's write step: events to events_speed, the rows
// BigQuery did not take with the decode failures to dead_letter, and the
// message ids of both written outputs on to the acknowledgement.
func ExampleStream() {
	cfg := bqsink.Config{Project: "my-project", Dataset: "railyard"}
	p, s := beam.NewPipelineWithRoot()
	var events, decodeFailures beam.PCollection // schemas.Event, schemas.DeadLetter: from the read and decode steps
	eventsSpeed, _ := schemas.LookupTable(schemas.TableEventsSpeed)
	deadLetter, _ := schemas.LookupTable(schemas.TableDeadLetter)
	eventIDs, writeFailures := bqsink.Stream(s.Scope("WriteEvents"), cfg, eventsSpeed, events)
	deadIDs, _ := bqsink.Stream(s.Scope("WriteDeadLetters"), cfg, deadLetter, beam.Flatten(s, decodeFailures, writeFailures))
	written := beam.Flatten(s, eventIDs, deadIDs) // PCollection<string>: the message ids to acknowledge
	_, _ = p, written
}
