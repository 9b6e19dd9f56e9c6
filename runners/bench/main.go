// Command bench measures the batch transforms on Prism against a plain
// single-process Go loop that applies the same decode, validate, dedup and
// aggregation to the same data on the same machine.
//
//	go run ./runners/bench --events=1000000
//	go run ./runners/bench --events=100000 --e2e
//
// It writes N synthetic archive lines (about 3% duplicates, 1% bad) as
// gzip lake files (--plain: uncompressed, so that files over 64 MiB are
// read in blocks), runs each side in a child process of its own (so each
// peak RSS is its own), checks that both produced the same counts, and
// prints a table with events/s, the ratio, the CPU time and records per
// CPU second (the rate per core), the peak memory and the machine it ran
// on. --cpuprofile writes the Beam side's CPU profile,
// --memprofile its heap profile at the largest live heap. --e2e adds the
// batch job end to end, from the same files into a fresh BigQuery
// emulator, beside a plain Storage Write loop into another: the
// emulator's ingestion ceiling.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/railyard/railyard/internal/sample"
	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
	"github.com/railyard/railyard/transforms/decode"
	"github.com/railyard/railyard/transforms/dedup"
	"github.com/railyard/railyard/transforms/lake"
	"github.com/railyard/railyard/transforms/metrics"
	"github.com/railyard/railyard/transforms/sessions"
)

var (
	events     = flag.Int("events", 1_000_000, "How many synthetic lake lines to process.")
	files      = flag.Int("files", 16, "How many lake files to spread them over.")
	plain      = flag.Bool("plain", false, "Write the lake files uncompressed (.jsonl): files over 64 MiB are then read in blocks.")
	seed       = flag.Int64("seed", 1, "Seed of the synthetic data.")
	dir        = flag.String("dir", "", "Folder for the lake files (default: a new temporary folder, removed at the end).")
	cpuprofile = flag.String("cpuprofile", "", "Write the Beam side's CPU profile here.")
	memprofile = flag.String("memprofile", "", "Write the Beam side's heap profile here, as of the largest live heap seen.")
	e2e        = flag.Bool("e2e", false, "Also run the batch job end to end into a fresh BigQuery emulator, and a Storage Write loop that measures the emulator's ceiling.")
	mode       = flag.String("mode", "", "Internal: run one side (plain, beam, e2e or ceiling) over --dir and print its result as JSON.")
)

// result is what one side reports to the parent.
type result struct {
	Mode       string  `json:"mode"`
	Records    int64   `json:"records"`
	Unique     int64   `json:"unique"`
	Dead       int64   `json:"dead"`
	Metrics    int64   `json:"metric_rows"`
	Sessions   int64   `json:"session_rows"`
	Seconds    float64 `json:"seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is the side's user and system CPU time, its own and its
	// children's, from the rusage of its process.
	CPUSeconds float64 `json:"cpu_seconds"`
}

func main() {
	flag.Parse()
	beam.Init()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	var err error
	switch *mode {
	case "":
		err = compare()
	case "plain", "beam":
		err = runSide(*mode)
	case "e2e", "ceiling":
		err = runE2ESide(*mode)
	default:
		err = fmt.Errorf("--mode=%q: want plain or beam", *mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func compare() error {
	if *events <= 0 || *files <= 0 {
		return fmt.Errorf("--events and --files must be positive")
	}
	lakeDir := *dir
	if lakeDir == "" {
		tmp, err := os.MkdirTemp("", "railyard-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		lakeDir = tmp
	}
	start := time.Now()
	if err := writeLake(lakeDir, *events, *files, *seed, *plain); err != nil {
		return err
	}
	kind := "gzip"
	if *plain {
		kind = "plain"
	}
	fmt.Printf("Wrote %d synthetic lines in %d %s files in %s.\n\n", *events, *files, kind, time.Since(start).Round(time.Millisecond))

	var results []result
	for _, side := range []string{"plain", "beam"} {
		r, err := runChild(side, lakeDir)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	plain, beamSide := results[0], results[1]
	if plain.Records != beamSide.Records || plain.Unique != beamSide.Unique || plain.Dead != beamSide.Dead ||
		plain.Metrics != beamSide.Metrics || plain.Sessions != beamSide.Sessions {
		return fmt.Errorf("the two sides disagree: plain %+v, beam %+v", plain, beamSide)
	}
	printTable(os.Stdout, results)
	if *e2e {
		return endToEnd(os.Stdout, lakeDir, beamSide)
	}
	return nil
}

// writeLake spreads n synthetic archive lines over the given number of
// gzip files, or plain ones.
func writeLake(root string, n, nfiles int, seed int64, plain bool) error {
	folder := filepath.Join(root, "raw", "dt=bench", "hr=00")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return err
	}
	writers := make([]io.WriteCloser, nfiles)
	buffers := make([]*bufio.Writer, nfiles)
	handles := make([]*os.File, nfiles)
	for i := range writers {
		name := fmt.Sprintf("part-%03d.jsonl.gz", i)
		if plain {
			name = strings.TrimSuffix(name, ".gz")
		}
		f, err := os.Create(filepath.Join(folder, name))
		if err != nil {
			return err
		}
		handles[i] = f
		writers[i] = nopCloser{f}
		if !plain {
			writers[i] = gzip.NewWriter(f)
		}
		buffers[i] = bufio.NewWriterSize(writers[i], 1<<20)
	}
	i := 0
	for line := range sample.SyntheticLakeLines(n, seed) {
		w := buffers[i%nfiles]
		w.Write(line)
		w.WriteByte('\n')
		i++
	}
	var err error
	for i := range writers {
		err = errors.Join(err, buffers[i].Flush(), writers[i].Close(), handles[i].Close())
	}
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// lakeGlob matches the bench's lake files, gzip or plain.
func lakeGlob(dir string) string { return filepath.Join(dir, "raw", "dt=bench", "hr=00", "*.jsonl*") }

// openLakeFile opens a lake file for reading, gunzipping a .gz one.
func openLakeFile(f *os.File) (io.Reader, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	if filepath.Ext(f.Name()) != ".gz" {
		return r, nil
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return zr, nil
}

func runChild(side, lakeDir string) (result, error) {
	args := []string{"--mode=" + side, "--dir=" + lakeDir}
	if side == "beam" && *cpuprofile != "" {
		args = append(args, "--cpuprofile="+*cpuprofile)
	}
	if side == "beam" && *memprofile != "" {
		args = append(args, "--memprofile="+*memprofile)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s side: %w", side, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("%s side printed %q: %w", side, out, err)
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // Linux reports KiB
			r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return r, nil
}

func runSide(side string) error {
	glob := lakeGlob(*dir)
	start := time.Now()
	var (
		r   result
		err error
	)
	if side == "plain" {
		r, err = plainLoop(glob)
	} else {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		if *memprofile != "" {
			heap := startPeakHeapProfile(*memprofile, 250*time.Millisecond)
			defer func() {
				if err := heap.Stop(); err != nil {
					slog.Error("bench: heap profile", "error", err)
				}
			}()
		}
		r, err = beamJob(glob)
	}
	if err != nil {
		return err
	}
	r.Mode = side
	r.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(r)
}

func printTable(w io.Writer, results []result) {
	fmt.Fprintf(w, "Machine: %s, %d cores (GOMAXPROCS %d), %s %s/%s\n\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	// records/s per core divides the wall rate by the cores the side kept
	// busy (CPU seconds over wall seconds): records per CPU second.
	fmt.Fprintln(tw, "side\trecords\tunique\tdead letters\tmetric rows\tsession rows\tseconds\trecords/s\tvs plain\tCPU s\tcores used\trecords/s per core\tpeak RSS MiB\t")
	base := float64(results[0].Records) / results[0].Seconds
	for _, r := range results {
		rate := float64(r.Records) / r.Seconds
		perCore := "-"
		if r.CPUSeconds > 0 {
			perCore = fmt.Sprintf("%.0f", float64(r.Records)/r.CPUSeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2fx\t%.2f\t%.2f\t%s\t%.0f\t\n",
			r.Mode, r.Records, r.Unique, r.Dead, r.Metrics, r.Sessions, r.Seconds, rate, rate/base,
			r.CPUSeconds, r.CPUSeconds/r.Seconds, perCore, r.PeakRSSMiB)
	}
	tw.Flush()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

// beamJob runs the batch job's transforms, without the BigQuery writes,
// on Prism.
func beamJob(glob string) (result, error) {
	p, s := beam.NewPipelineWithRoot()
	records, readDead, _ := lake.Read(s.Scope("ReadLake"), lake.ReadConfig{Globs: []string{glob}})
	evs, decodeDead := decode.Events(s.Scope("DecodeEvents"), records, decode.Config{Layer: schemas.LayerBatch})
	unique := dedup.ByEventID(s.Scope("DedupEvents"), evs, dedup.Config{Mode: dedup.Exact})
	perMinute := metrics.WithoutPane(s, metrics.PerMinute(s.Scope("ComputeMetrics"), unique, metrics.Config{}))
	perSession := sessions.WithoutPane(s, sessions.PerUser(s.Scope("ComputeSessions"), unique, sessions.Config{}))
	count(s, "unique", unique)
	count(s, "dead", beam.Flatten(s, readDead, decodeDead))
	count(s, "metric_rows", perMinute)
	count(s, "session_rows", perSession)

	res, err := beam.Run(context.Background(), "prism", p)
	if err != nil {
		return result{}, err
	}
	var r result
	for _, c := range res.Metrics().AllMetrics().Counters() {
		switch c.Key.Name {
		case metricnames.RecordsIn:
			r.Records += c.Result()
		case metricnames.Bench("unique"):
			r.Unique = c.Result()
		case metricnames.Bench("dead"):
			r.Dead = c.Result()
		case metricnames.Bench("metric_rows"):
			r.Metrics = c.Result()
		case metricnames.Bench("session_rows"):
			r.Sessions = c.Result()
		}
	}
	// Lines the reader dead-lettered never reach decode's records_in.
	r.Records += r.Dead - deadFromDecode(res)
	return r, nil
}

func deadFromDecode(res beam.PipelineResult) int64 {
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Name == metricnames.DeadLetters {
			return c.Result()
		}
	}
	return 0
}

// count adds the number of elements of col to the benchmark's counter
// metricnames.Bench(what), once, from the one bundle that sees the total. A counter incremented per
// element is reported by every bundle of its stage, and Prism v2.77.0 keeps
// only one of two reports that arrive together for a counter it does not
// know yet (jobservices/metrics.go, unprocessedPayloads): when it had split
// the dead letters' stage in two, the bench read half their count.
func count(s beam.Scope, what string, col beam.PCollection) {
	s = s.Scope("count_bench_" + what)
	beam.ParDo0(s, &addToCounterFn{What: what}, stats.CountElms(s, col))
}

// addToCounterFn adds each number it gets to the counter
// metricnames.Bench(What).
type addToCounterFn struct {
	What string
	c    beam.Counter
}

func (fn *addToCounterFn) Setup() {
	fn.c = beam.NewCounter(metricnames.Namespace, metricnames.Bench(fn.What))
}

func (fn *addToCounterFn) ProcessElement(ctx context.Context, n int) { fn.c.Inc(ctx, int64(n)) }

func init() {
	register.DoFn2x0[context.Context, int](&addToCounterFn{})
}
