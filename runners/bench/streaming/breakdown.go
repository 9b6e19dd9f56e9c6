package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/railyard/railyard/internal/proc"
)

// cpuShares are the parts of the job's process a CPU profile sample is
// charged to: the first part, in this order, with a function on the
// sample's stack.
var cpuShares = []struct {
	name     string
	prefixes []string
}{
	{"the pipeline's DoFns (and the clients they call)", []string{"github.com/railyard/railyard/"}},
	{"Prism (the runner)", []string{"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/"}},
	{"Beam's SDK harness (bundles, coders, state and data channels)", []string{"github.com/apache/beam/sdks/v2/go/pkg/beam/core/"}},
	{"gRPC and protobuf between Prism and the harness", []string{"google.golang.org/grpc", "google.golang.org/protobuf", "golang.org/x/net/http2"}},
	{"Go's garbage collector", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart"}},
	{"this bench (polling row counts)", []string{"main."}},
}

// printBreakdown prints what share of the CPU profile at path each part
// of the process took.
func printBreakdown(w io.Writer, path string) error {
	p, err := proc.ReadProfile(path)
	if err != nil {
		return err
	}
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return fmt.Errorf("%s is not a CPU profile", path)
	}
	shares := make([]int64, len(cpuShares)+1)
	var total int64
	for _, s := range p.Sample {
		v := s.Value[cpu]
		total += v
		shares[shareOf(s)] += v
	}
	if total == 0 {
		return nil
	}
	fmt.Fprintf(w, "where the job's process spent its CPU (%s):\n", path)
	for i, v := range shares {
		name := "other (Go runtime, scheduler, syscalls)"
		if i < len(cpuShares) {
			name = cpuShares[i].name
		}
		fmt.Fprintf(w, "  %5.1f%%  %s\n", 100*float64(v)/float64(total), name)
	}
	return nil
}

// shareOf returns the index in cpuShares of the part s is charged to, or
// len(cpuShares) for none.
func shareOf(s *profile.Sample) int {
	for i, share := range cpuShares {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, prefix := range share.prefixes {
					if strings.HasPrefix(line.Function.Name, prefix) {
						return i
					}
				}
			}
		}
	}
	return len(cpuShares)
}
