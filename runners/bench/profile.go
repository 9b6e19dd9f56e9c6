package main

import (
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// peakHeapProfiler writes a heap profile each time the live heap (as the
// last garbage collection measured it) passes its highest yet by 5%, so
// that the file left at the end shows what the heap held at about its
// peak, not what is left once the job has released it.
type peakHeapProfiler struct {
	path string
	stop chan struct{}
	done chan error
}

// startPeakHeapProfile starts sampling the live heap every interval.
func startPeakHeapProfile(path string, interval time.Duration) *peakHeapProfiler {
	p := &peakHeapProfiler{path: path, stop: make(chan struct{}), done: make(chan error, 1)}
	go p.run(interval)
	return p
}

func (p *peakHeapProfiler) run(interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			p.done <- nil
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if live := sample[0].Value.Uint64(); live > peak+peak/20 {
			peak = live
			if err := p.write(); err != nil {
				p.done <- err
				return
			}
		}
	}
}

func (p *peakHeapProfiler) write() error {
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	// The profile is as of the last GC; no extra collection here.
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile %s: %w", p.path, err)
	}
	return f.Close()
}

// Stop ends the sampling and reports whether every profile was written.
func (p *peakHeapProfiler) Stop() error {
	close(p.stop)
	return <-p.done
}
