package metrics

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
)

func show2(pn beam.PaneInfo, w beam.Window, k pkey, vs func(*string) bool) string {
	var us []string
	var u string
	for vs(&u) {
		us = append(us, u)
	}
	sort.Strings(us)
	iw := w.(window.IntervalWindow)
	return fmt.Sprintf("%s %d-%d %v %+v", k.A, iw.Start, iw.End, us, pn)
}

func init() {
	register.Function4x1(show2)
}

func TestSpikeGBK(t *testing.T) {
	ins := []pin{
		{pkey{"a", nil}, 1000, "u1"}, {pkey{"a", nil}, 2000, "u2"}, {pkey{"a", nil}, 61000, "u1"},
	}
	p, s, col := ptest.CreateList(ins)
	col = beam.ParDo(s, stamp, col)
	col = beam.WindowInto(s, window.NewFixedWindows(time.Minute), col)
	kv := beam.ParDo(s, keyIt, col)
	out := beam.GroupByKey(s, kv)
	res := beam.ParDo(s, show2, out)
	passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), res), "x")
	fmt.Println(ptest.Run(p))
}

func TestSpikeStream(t *testing.T) {
	c := teststream.NewConfig()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.AddElements(1000, pin{pkey{"a", nil}, 1000, "u1"}, pin{pkey{"a", nil}, 2000, "u2"}))
	must(c.AdvanceWatermark(30000))
	must(c.AddElements(3000, pin{pkey{"a", nil}, 3000, "u3"}))
	must(c.AdvanceWatermark(70000))
	must(c.AddElements(4000, pin{pkey{"a", nil}, 4000, "u4"}))
	must(c.AdvanceWatermark(80000))
	must(c.AddElements(5000, pin{pkey{"a", nil}, 5000, "u5"}))
	must(c.AdvanceWatermark(200000))
	must(c.AddElements(6000, pin{pkey{"a", nil}, 6000, "u6"}))
	must(c.AdvanceWatermarkToInfinity())
	p, s := beam.NewPipelineWithRoot()
	col := teststream.Create(s, c)
	col = beam.WindowInto(s, window.NewFixedWindows(time.Minute), col,
		beam.Trigger(trigger.AfterEndOfWindow().LateFiring(trigger.AfterCount(1))),
		beam.AllowedLateness(2*time.Minute), beam.PanesAccumulate())
	kv := beam.ParDo(s, keyIt, col)
	out := beam.GroupByKey(s, kv)
	res := beam.ParDo(s, show2, out)
	passert.Equals(s, beam.WindowInto(s, window.NewGlobalWindows(), res), "x")
	fmt.Println(ptest.Run(p))
}
