package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/proc"
	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/config"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/bqsink"
)

// The end-to-end sides write to a fresh BigQuery emulator of this project.
const (
	benchProject = "railyard-bench"
	benchDataset = "bench"
	// ceilingAppendBytes is the size of one append of the ceiling loop:
	// under the emulator's 4 MiB request limit, as the job's appends are.
	ceilingAppendBytes = 3 << 20
)

// e2eResult is what an end-to-end side reports: rows written, time, and
// the peak RSS of its process and of the emulator.
type e2eResult struct {
	Mode        string  `json:"mode"`
	Records     int64   `json:"records"`
	EventRows   int64   `json:"event_rows"`
	OtherRows   int64   `json:"other_rows"`
	DeadLetters int64   `json:"dead_letters"`
	Seconds     float64 `json:"seconds"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	EmulatorMiB float64 `json:"emulator_peak_rss_mib"`
	EmulatorCPU float64 `json:"emulator_cpu_seconds"`
}

// endToEnd runs the batch job over the lake into a fresh emulator, then
// the ceiling loop into another, each in a child process, and prints
// their table beside the transforms-only Beam side.
func endToEnd(w io.Writer, lakeDir string, beamSide result) error {
	var rows []e2eResult
	for _, side := range []string{"e2e", "ceiling"} {
		r, err := runE2EChild(side, lakeDir)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if job := rows[0]; job.EventRows != beamSide.Unique {
		return fmt.Errorf("the batch job wrote %d events, the transforms found %d unique ones", job.EventRows, beamSide.Unique)
	}
	fmt.Fprintf(w, "\nEnd to end into a fresh BigQuery emulator %s (its ingestion is the ceiling here):\n\n", emulators.BigQueryEmulatorVersion)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\trecords\tevent rows\tother rows\tseconds\trecords/s\tevent rows/s\tvs transforms only\tpeak RSS MiB\temulator peak RSS MiB\temulator CPU s\t")
	transforms := float64(beamSide.Records) / beamSide.Seconds
	fmt.Fprintf(tw, "beam (transforms only)\t%d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.2fx\t%.0f\t-\t-\t\n",
		beamSide.Records, beamSide.Unique, beamSide.Metrics+beamSide.Sessions, beamSide.Seconds, transforms, float64(beamSide.Unique)/beamSide.Seconds, 1.0, beamSide.PeakRSSMiB)
	for _, r := range rows {
		name := map[string]string{"e2e": "batch job into the emulator", "ceiling": "Storage Write loop (ceiling)"}[r.Mode]
		rate := float64(r.Records) / r.Seconds
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.2fx\t%.0f\t%.0f\t%.1f\t\n",
			name, r.Records, r.EventRows, r.OtherRows, r.Seconds, rate, float64(r.EventRows)/r.Seconds, rate/transforms, r.PeakRSSMiB, r.EmulatorMiB, r.EmulatorCPU)
	}
	tw.Flush()
	job, ceiling := rows[0], rows[1]
	fmt.Fprintf(w, "\nThe job writes event rows at %.2f of the emulator's Storage Write ceiling (%.0f of %.0f rows/s).\n",
		(float64(job.EventRows)/job.Seconds)/(float64(ceiling.EventRows)/ceiling.Seconds), float64(job.EventRows)/job.Seconds, float64(ceiling.EventRows)/ceiling.Seconds)
	return nil
}

// runE2EChild starts an emulator, runs one end-to-end side against it in
// a child process, and adds the emulator's peak RSS and CPU time.
func runE2EChild(side, lakeDir string) (e2eResult, error) {
	ctx := context.Background()
	em, err := emulators.StartBigQuery(ctx, benchProject)
	if err != nil {
		return e2eResult{}, err
	}
	defer em.Close()
	cmd := exec.Command(os.Args[0], "--mode="+side, "--dir="+lakeDir)
	cmd.Stderr = os.Stderr
	cmd.Env = os.Environ()
	for k, v := range em.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		return e2eResult{}, fmt.Errorf("%s side: %w (emulator log: %s)", side, err, em.LogTail(2<<10))
	}
	var r e2eResult
	if err := json.Unmarshal(out, &r); err != nil {
		return e2eResult{}, fmt.Errorf("%s side printed %q: %w", side, out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024
	}
	r.EmulatorMiB, r.EmulatorCPU = proc.PeakRSSMiB(em.Pid()), proc.CPU(em.Pid()).Seconds()
	return r, nil
}

// runE2ESide runs one end-to-end side in this (child) process and prints
// its result as JSON.
func runE2ESide(side string) error {
	glob := lakeGlob(*dir)
	var (
		r   e2eResult
		err error
	)
	if side == "e2e" {
		r, err = batchJobIntoEmulator(glob)
	} else {
		r, err = storageWriteCeiling(glob)
	}
	if err != nil {
		return err
	}
	r.Mode = side
	return json.NewEncoder(os.Stdout).Encode(r)
}

// batchJobIntoEmulator runs the batch job, as its command does, over the
// lake files into the emulator the environment names.
func batchJobIntoEmulator(glob string) (e2eResult, error) {
	start := time.Now()
	res, err := batchjob.Run(context.Background(), batchjob.Config{
		Destination: config.Destination{Project: benchProject, Dataset: benchDataset},
		Inputs:      []string{glob}, SessionGap: batchjob.DefaultSessionGap, RunID: "bench",
	})
	if err != nil {
		return e2eResult{}, err
	}
	r := e2eResult{Seconds: time.Since(start).Seconds()}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		switch c.Key.Name {
		case metricnames.LakeLinesRead:
			r.Records += c.Result()
		case metricnames.RowsWritten(schemas.TableEventsBatch):
			r.EventRows += c.Result()
		case metricnames.RowsWritten(schemas.TableMetricsMinuteBatch), metricnames.RowsWritten(schemas.TableSessionsBatch):
			r.OtherRows += c.Result()
		case metricnames.RowsWritten(schemas.TableDeadLetter):
			r.DeadLetters += c.Result()
		}
	}
	return r, nil
}

// storageWriteCeiling is the fastest correct way to the same event rows
// without Beam: decode and deduplicate the lines in memory (not timed),
// then append the encoded rows to events_batch through pending streams of
// one 3 MiB append each (what the emulator takes), committed at the end,
// from one writer, as the job writes to the emulator.
func storageWriteCeiling(glob string) (e2eResult, error) {
	paths, err := filepath.Glob(glob)
	if err != nil {
		return e2eResult{}, err
	}
	enc, err := bqsink.EncoderFor(reflect.TypeFor[schemas.Event]())
	if err != nil {
		return e2eResult{}, err
	}
	var r e2eResult
	seen := map[string]bool{}
	var rows [][]byte
	for _, path := range paths {
		if err := eachEvent(path, &r, func(ev schemas.Event) error {
			if seen[ev.EventID] {
				return nil
			}
			seen[ev.EventID] = true
			data, err := enc.Encode(ev)
			if err != nil {
				return err
			}
			rows = append(rows, data)
			return nil
		}); err != nil {
			return e2eResult{}, err
		}
	}

	ctx := context.Background()
	cfg := bqsink.Config{Project: benchProject, Dataset: benchDataset}
	if err := bqsink.Ensure(ctx, cfg); err != nil {
		return e2eResult{}, err
	}
	mw, err := bqsink.NewWriteClient(ctx, benchProject)
	if err != nil {
		return e2eResult{}, err
	}
	defer mw.Close()
	parent := managedwriter.TableParentFromParts(benchProject, benchDataset, schemas.TableEventsBatch)
	start := time.Now()
	var streams []string
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && size+len(rows[n]) <= ceilingAppendBytes {
			size += len(rows[n])
			n++
		}
		name, err := appendPending(ctx, mw, parent, enc, rows[:n])
		if err != nil {
			return e2eResult{}, err
		}
		streams = append(streams, name)
		r.EventRows += int64(n)
		rows = rows[n:]
	}
	resp, err := mw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{Parent: parent, WriteStreams: streams})
	if err != nil {
		return e2eResult{}, err
	}
	if errs := resp.GetStreamErrors(); len(errs) > 0 {
		return e2eResult{}, fmt.Errorf("commit: %v", errs[0])
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// appendPending writes rows to a new pending stream in one append and
// finalizes it.
func appendPending(ctx context.Context, mw *managedwriter.Client, parent string, enc *bqsink.Encoder, rows [][]byte) (string, error) {
	ms, err := mw.NewManagedStream(ctx, managedwriter.WithDestinationTable(parent),
		managedwriter.WithType(managedwriter.PendingStream), managedwriter.WithSchemaDescriptor(enc.Descriptor()))
	if err != nil {
		return "", err
	}
	defer ms.Close()
	res, err := ms.AppendRows(ctx, rows, managedwriter.WithOffset(0))
	if err != nil {
		return "", err
	}
	if _, err := res.FullResponse(ctx); err != nil {
		return "", err
	}
	if _, err := ms.Finalize(ctx); err != nil {
		return "", err
	}
	return ms.StreamName(), nil
}

// eachEvent calls fn with each valid event of a lake file, as the batch
// layer reads it.
func eachEvent(path string, r *e2eResult, fn func(schemas.Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := openLakeFile(f)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), schemas.MaxDeadLetterPayload)
	for n := 1; sc.Scan(); n++ {
		r.Records++
		uri := fmt.Sprintf("%s#L%d", path, n)
		rec, err := schemas.ParseLakeLine(sc.Bytes(), uri, st.ModTime().UnixMicro())
		if err != nil {
			continue
		}
		ev, err := schemas.ParseEvent(rec.Data)
		if err != nil {
			continue
		}
		ev.IngestTime, ev.Layer, ev.SourceURI = rec.IngestTime, schemas.LayerBatch, &uri
		if rec.MessageID != "" {
			ev.MessageID = &rec.MessageID
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}
