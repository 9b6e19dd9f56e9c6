// Command collect measures the collection edge under HTTP load on
// loopback: the edge runs in a child process (its CPU measured apart, and
// profiled with --cpuprofile), publishing to pstest in this process, while
// keep-alive clients here post NDJSON batches of 100 events, then single
// events, first as fast as they go (saturation), then paced at the
// targets' rates, or 70% of the saturation reached when that is less
// (latency below saturation). It prints requests/s,
// events/s, p50/p99 latency, the CPU each side used, the machine, and the
// edge's top functions by CPU (the bottleneck).
//
//	go run ./runners/bench/collect [--duration=10s] [--cpuprofile=edge.pprof]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/railyard/railyard/internal/emulators"
	"github.com/railyard/railyard/internal/proc"
	"github.com/railyard/railyard/pipelines/collect/collector"
)

var (
	duration      = flag.Duration("duration", 10*time.Second, "How long each scenario runs.")
	batchClients  = flag.Int("batch_clients", 16, "Keep-alive clients posting NDJSON batches of 100 events.")
	singleClients = flag.Int("single_clients", 256, "Keep-alive clients posting single events.")
	batchRate     = flag.Int("batch_rate", 500, "Requests a second of the paced batch scenario (500: 50,000 events/s), at most 70% of the saturation measured.")
	singleRate    = flag.Int("single_rate", 5000, "Requests a second of the paced single-event scenario, at most 70% of the saturation measured.")
	cpuProfile    = flag.String("cpuprofile", "", "Write the edge process's CPU profile over all scenarios to this file.")

	// The edge child's flags.
	role   = flag.String("role", "", "internal: edge runs the edge child")
	topic  = flag.String("topic", "", "internal: the edge child's topic")
	psHost = flag.String("pubsub", "", "internal: the edge child's Pub/Sub host")
)

const project = "railyard-bench"

func main() {
	flag.Parse()
	var err error
	if *role == "edge" {
		err = runEdge()
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/collect: %v\n", err)
		os.Exit(1)
	}
}

// runEdge is the child: the edge with its defaults on 127.0.0.1, its
// address on stdout, until SIGTERM; then its CPU seconds on stdout.
func runEdge() error {
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Setenv("PUBSUB_EMULATOR_HOST", *psHost)
	client, err := pubsub.NewClient(context.Background(), project)
	if err != nil {
		return err
	}
	defer client.Close()
	cfg := collector.DefaultConfig()
	cfg.Topic = *topic
	c, err := collector.New(cfg, client, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return c.Serve(ctx, ln)
}

// scenario is one load: batches or single events, closed-loop (as fast
// as the clients go) or paced at a rate.
type scenario struct {
	name    string
	records int // per request
	clients int
	rate    int // requests/s; 0: as fast as they go
}

type result struct {
	scenario
	requests, events, errors int64
	took                     time.Duration
	p50, p99, max            time.Duration
	edgeCPU, benchCPU        time.Duration
}

func run() error {
	ps := emulators.StartPubSub()
	defer ps.Close()
	os.Setenv("PUBSUB_EMULATOR_HOST", ps.Host)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()
	topicName := "projects/" + project + "/topics/events"
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName}); err != nil {
		return err
	}
	// pstest keeps every message; the bench clears them as it goes.
	clearCtx, stopClearing := context.WithCancel(ctx)
	defer stopClearing()
	go func() {
		for t := time.NewTicker(time.Second); ; {
			select {
			case <-clearCtx.Done():
				t.Stop()
				return
			case <-t.C:
				ps.Server.ClearMessages()
			}
		}
	}()

	args := []string{"--role=edge", "--topic=" + topicName, "--pubsub=" + ps.Host}
	if *cpuProfile != "" {
		args = append(args, "--cpuprofile="+*cpuProfile)
	}
	child := exec.Command(os.Args[0], args...)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer child.Process.Kill()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the edge did not start: %w", err)
	}
	url := "http://" + strings.TrimSpace(addr) + collector.PathEvents

	printMachine()
	scenarios := []scenario{
		{name: "batches of 100, saturation", records: 100, clients: *batchClients},
		{name: "single events, saturation", records: 1, clients: *singleClients},
		{records: 100, clients: *batchClients * 2, rate: *batchRate},
		{records: 1, clients: *singleClients * 2, rate: *singleRate},
	}
	var results []result
	for i, sc := range scenarios {
		if sc.rate > 0 {
			// Below saturation: the target rate, or 70% of what the
			// closed loop reached when that is less.
			sat := results[i-2]
			sc.rate = min(sc.rate, int(0.7*float64(sat.requests)/sat.took.Seconds()))
			what := "batches of 100"
			if sc.records == 1 {
				what = "single events"
			}
			sc.name = fmt.Sprintf("%s, paced %d req/s", what, sc.rate)
		}
		before, beforeSelf := proc.CPU(child.Process.Pid), proc.SelfCPU()
		r := load(url, sc, *duration)
		r.edgeCPU, r.benchCPU = proc.CPU(child.Process.Pid)-before, proc.SelfCPU()-beforeSelf
		results = append(results, r)
		printResult(r)
	}
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		return fmt.Errorf("the edge: %w", err)
	}
	printTargets(results)
	if *cpuProfile != "" {
		return printTop(*cpuProfile, 12)
	}
	return nil
}

// bodies returns n distinct request bodies of records events each.
func bodies(records, n int) [][]byte {
	now := time.Now().UTC()
	out := make([][]byte, n)
	seq := 0
	for i := range out {
		var b bytes.Buffer
		for j := range records {
			if j > 0 {
				b.WriteByte('\n')
			}
			seq++
			fmt.Fprintf(&b, `{"event_id":"bench-%d-%d","event_type":"page.view","event_time":%q,"source":"web-shop","platform":"web","user_id":"u%d","session_id":"s%d","country":"de","value":1.5,"properties":{"path":"/p/%d","referrer":"https://example.com/"}}`,
				time.Now().UnixNano(), seq, now.Add(-time.Duration(seq)*time.Millisecond).Format(time.RFC3339Nano), seq%997, seq%331, seq%50)
		}
		out[i] = b.Bytes()
	}
	return out
}

// load runs one scenario for d.
func load(url string, sc scenario, d time.Duration) result {
	payloads := bodies(sc.records, 256)
	transport := &http.Transport{MaxIdleConnsPerHost: sc.clients, MaxConnsPerHost: sc.clients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var requests, events, errs atomic.Int64
	lat := make([][]time.Duration, sc.clients)
	start := time.Now()
	end := start.Add(d)
	// Paced: a schedule of due times; latency counts from the due time,
	// so a queue behind a saturated edge shows.
	var due chan time.Time
	if sc.rate > 0 {
		due = make(chan time.Time, sc.rate) // a second of backlog at most
		go func() {
			defer close(due)
			interval := time.Second / time.Duration(sc.rate)
			for next := start; next.Before(end); next = next.Add(interval) {
				if w := time.Until(next); w > 0 {
					time.Sleep(w)
				}
				select {
				case due <- next:
				default: // the clients are a second behind: dropped, counted below
					errs.Add(1)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for c := range sc.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ; i++ {
				var t0 time.Time
				if due != nil {
					var ok bool
					if t0, ok = <-due; !ok {
						return
					}
				} else if t0 = time.Now(); t0.After(end) {
					return
				}
				body := payloads[i%len(payloads)]
				if post(hc, url, body, sc.records) {
					requests.Add(1)
					events.Add(int64(sc.records))
				} else {
					errs.Add(1)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	r := result{scenario: sc, requests: requests.Load(), events: events.Load(), errors: errs.Load(), took: took, p50: q(0.50), p99: q(0.99)}
	if len(all) > 0 {
		r.max = all[len(all)-1]
	}
	return r
}

// post sends one body and reports whether every record was accepted.
func post(hc *http.Client, url string, body []byte, records int) bool {
	res, err := hc.Post(url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var resp collector.Response
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	return res.StatusCode == http.StatusOK && resp.Accepted == records
}

func printResult(r result) {
	secs := r.took.Seconds()
	fmt.Printf("%-34s %3d clients  %8.0f req/s  %9.0f events/s  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  errors %d  CPU: edge %.2f cores, clients+pstest %.2f cores\n",
		r.name, r.clients, float64(r.requests)/secs, float64(r.events)/secs,
		ms(r.p50), ms(r.p99), ms(r.max), r.errors, r.edgeCPU.Seconds()/secs, r.benchCPU.Seconds()/secs)
}

func printTargets(rs []result) {
	fmt.Println("\nTargets on 2 cores (load generator and pstest included):")
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	rate := func(r result, n int64) float64 { return float64(n) / r.took.Seconds() }
	fmt.Printf("  ≥ 50,000 events/s in batches of 100: %.0f — %s\n", rate(rs[0], rs[0].events), check(rate(rs[0], rs[0].events) >= 50_000))
	fmt.Printf("  ≥ 5,000 single-event requests/s:     %.0f — %s\n", rate(rs[1], rs[1].requests), check(rate(rs[1], rs[1].requests) >= 5_000))
	for _, r := range rs[2:] {
		fmt.Printf("  p99 ≤ 50 ms, %s: %.1f ms (%.0f req/s served, %d errors or dropped) — %s\n", r.name, ms(r.p99), rate(r, r.requests), r.errors,
			check(r.p99 <= 50*time.Millisecond && r.errors == 0))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printMachine() {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Printf("Machine: %d CPUs (%s), %s/%s, %s; load average at start %s\n", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
	fmt.Printf("The edge runs with its defaults in a child process; pstest and the HTTP clients in this one.\n\n")
}

// printTop prints the n functions of the profile with the most CPU
// (flat), and the share of the runtime's and the network's.
func printTop(path string, n int) error {
	p, err := proc.ReadProfile(path)
	if err != nil {
		return err
	}
	flat := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[len(s.Value)-1]
		total += v
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 {
			flat[s.Location[0].Line[0].Function.Name] += v
		}
	}
	type fn struct {
		name string
		v    int64
	}
	var fns []fn
	for k, v := range flat {
		fns = append(fns, fn{k, v})
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].v > fns[j].v })
	fmt.Printf("\nThe edge's CPU profile (%s, %.1f s sampled), top functions by own CPU:\n", path, time.Duration(total).Seconds())
	for _, x := range fns[:min(n, len(fns))] {
		fmt.Printf("  %5.1f%%  %s\n", 100*float64(x.v)/float64(total), x.name)
	}
	return nil
}
