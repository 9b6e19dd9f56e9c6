package metrics

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

type pkey struct {
	A string
	P *string
}

type pin struct {
	K  pkey
	TS int64
	U  string
}

type acc struct {
	N     int64
	Users map[string]bool
	Parts []float64
}

type accFn struct{}

func (accFn) CreateAccumulator() acc { return acc{} }
func (accFn) AddInput(a acc, u string) acc {
	a.N++
	if a.Users == nil {
		a.Users = map[string]bool{}
	}
	a.Users[u] = true
	a.Parts = append(a.Parts, 1.5)
	return a
}
func (accFn) MergeAccumulators(a, b acc) acc {
	a.N += b.N
	if a.Users == nil {
		a.Users = map[string]bool{}
	}
	for u := range b.Users {
		a.Users[u] = true
	}
	a.Parts = append(a.Parts, b.Parts...)
	return a
}
func (accFn) ExtractOutput(a acc) string {
	var us []string
	for u := range a.Users {
		us = append(us, u)
	}
	sort.Strings(us)
	return fmt.Sprint(a.N, us, len(a.Parts))
}

func keyIt(ts beam.EventTime, in pin) (pkey, string) { return in.K, in.U }
func stamp(in pin) (beam.EventTime, pin)             { return mtime.FromMilliseconds(in.TS), in }
func show(pn beam.PaneInfo, w beam.Window, k pkey, v string) string {
	p := "nil"
	if k.P != nil {
		p = *k.P
	}
	iw := w.(window.IntervalWindow)
	return fmt.Sprintf("%s/%s %d-%d %v %v", k.A, p, iw.Start, iw.End, v, pn)
}

func init() {
	register.Function2x2(keyIt)
	register.Function1x2(stamp)
	register.Function4x1(show)
	register.Combiner3[acc, string, string](&accFn{})
}

func TestMain(m *testing.M) { ptest.Main(m) }

func TestSpike(t *testing.T) {
	x, e := "x", ""
	ins := []pin{
		{pkey{"a", nil}, 1000, "u1"}, {pkey{"a", nil}, 2000, "u2"}, {pkey{"a", &x}, 3000, "u1"},
		{pkey{"a", &e}, 3000, "u1"}, {pkey{"a", nil}, 61000, "u1"}, {pkey{"a", nil}, 2000, "u1"},
	}
	p, s, col := ptest.CreateList(ins)
	col = beam.ParDo(s, stamp, col)
	col = beam.WindowInto(s, window.NewFixedWindows(time.Minute), col)
	kv := beam.ParDo(s, keyIt, col)
	out := beam.CombinePerKey(s, &accFn{}, kv)
	res := beam.ParDo(s, show, out)
	passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), res), "x")
	fmt.Println(ptest.Run(p))
}

func TestSessSpike(t *testing.T) {
	ins := []pin{
		{pkey{"a", nil}, 0, "u1"}, {pkey{"a", nil}, 10000, "u2"}, {pkey{"a", nil}, 20001, "u3"},
	}
	p, s, col := ptest.CreateList(ins)
	col = beam.ParDo(s, stamp, col)
	col = beam.WindowInto(s, window.NewSessions(10*time.Second), col)
	kv := beam.ParDo(s, keyIt, col)
	out := beam.CombinePerKey(s, &accFn{}, kv)
	res := beam.ParDo(s, show, out)
	passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), res), "x")
	fmt.Println(ptest.Run(p))
}
