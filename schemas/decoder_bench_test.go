package schemas

import (
	"encoding/base64"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchSource is one producer of the bench's synthetic stream.
type benchSource struct {
	name, platform string
	types          []string
}

// benchSources are the producers of the bench's synthetic stream
// (runners/bench, through the sample package's SyntheticLakeLines).
var benchSources = []benchSource{
	{"web-shop", "web", []string{"page.view", "page.view", "product.view", "search", "cart.add", "purchase"}},
	{"ios-app", "iOS", []string{"screen.view", "screen.view", "app.open", "product.view", "purchase"}},
	{"android-app", "android", []string{"screen.view", "app.open", "product.view", "purchase"}},
	{"billing-service", "server", []string{"payment.succeeded", "invoice.created"}},
	{"iot-gateway", "iot", []string{"sensor.reading", "sensor.reading", "device.heartbeat"}},
	{"partner-kiosk", "kiosk-os", []string{"kiosk.scan"}},
}

var benchCountries = []string{"US", "DE", "GB", "FR", "IN", "BR", "JP", "NL", "ES", "CA", "AU"}

// benchRecords returns n records of the bench's mix, built the way the
// synthetic stream builds them: valid events of the six sources (epoch
// milliseconds or RFC 3339 with milliseconds, four in five with a user and
// a country, a value on money and sensor events, one property), and about
// 1% bad records taken from testdata/bad. The schemas package sits below
// the sample package, so this is a copy of its shape, not a use of it.
func benchRecords(tb testing.TB, n int) [][]byte {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("..", "testdata", "bad", "*.json"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("glob testdata/bad: %v (%d files)", err, len(names))
	}
	var bad [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatalf("read %s: %v", name, err)
		}
		if len(b) <= maxSeedBytes {
			bad = append(bad, b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	out := make([][]byte, 0, n)
	for range n {
		t += 200 + r.Int64N(1600)
		if r.IntN(100) == 0 {
			out = append(out, bad[r.IntN(len(bad))])
			continue
		}
		src := benchSources[r.IntN(len(benchSources))]
		typ := src.types[r.IntN(len(src.types))]
		eventTime := t - 50_000 - r.Int64N(2_950_000)
		b := make([]byte, 0, 256)
		b = append(b, `{"event_id":"s-`...)
		b = strconv.AppendUint(b, r.Uint64(), 16)
		b = append(b, `","event_type":"`...)
		b = append(b, typ...)
		b = append(b, `","event_time":`...)
		if r.IntN(2) == 0 {
			b = strconv.AppendInt(b, eventTime/1000, 10)
		} else {
			b = append(b, '"')
			b = time.UnixMicro(eventTime).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
			b = append(b, '"')
		}
		b = append(b, `,"source":"`...)
		b = append(b, src.name...)
		b = append(b, `","platform":"`...)
		b = append(b, src.platform...)
		b = append(b, '"')
		if r.IntN(5) != 0 {
			b = append(b, `,"user_id":"u-`...)
			b = strconv.AppendInt(b, int64(r.IntN(20_000)), 10)
			b = append(b, `","country":"`...)
			b = append(b, benchCountries[r.IntN(len(benchCountries))]...)
			b = append(b, '"')
		}
		switch typ {
		case "purchase", "payment.succeeded", "invoice.created", "sensor.reading":
			b = append(b, `,"value":`...)
			b = strconv.AppendFloat(b, float64(r.IntN(40000))/100, 'f', 2, 64)
		}
		b = append(b, `,"properties":{"sku":"SKU-`...)
		b = strconv.AppendInt(b, int64(1000+r.IntN(9000)), 10)
		b = append(b, `"}}`...)
		out = append(out, b)
	}
	return out
}

// benchLines returns the archive lines of records, as the streaming job
// writes them to the lake and the bench reads them back.
func benchLines(records [][]byte) [][]byte {
	lines := make([][]byte, len(records))
	pt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i, data := range records {
		pt += 997
		b := []byte(`{"envelope":"` + EnvelopeVersion + `","message_id":"`)
		b = strconv.AppendInt(b, 18_000_000_000_000_000+int64(i)*3, 10)
		b = append(b, `","publish_time":"`...)
		b = time.UnixMicro(pt).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","attributes":{"source_system":"`...)
		b = append(b, benchSources[i%len(benchSources)].name...)
		b = append(b, `"},"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, data)
		lines[i] = append(b, `"}`...)
	}
	return lines
}

// benchDecoders are the decoder under test and the one it replaced.
var benchDecoders = []struct {
	name  string
	parse func([]byte) (Event, error)
}{
	{"reference", referenceParseEvent},
	{"current", ParseEvent},
}

// BenchmarkParseEvent decodes the bench's record mix (about 1% bad) with
// the reference decoder and the current one; one op is one record.
//
//	go test -run='^$' -bench=BenchmarkParseEvent -benchmem ./schemas
func BenchmarkParseEvent(b *testing.B) {
	records := benchRecords(b, 4096)
	var size int64
	for _, r := range records {
		size += int64(len(r))
	}
	for _, d := range benchDecoders {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(size / int64(len(records)))
			b.ReportAllocs()
			i, bad := 0, 0
			for b.Loop() {
				if _, err := d.parse(records[i%len(records)]); err != nil {
					bad++
				}
				i++
			}
			if bad == 0 || bad*20 > i {
				b.Fatalf("%d of %d records were rejected, want about 1%%", bad, i)
			}
		})
	}
}

// BenchmarkParseEventValid decodes one valid record of the bench's shape
// with every optional field, to count the allocations of a valid record.
func BenchmarkParseEventValid(b *testing.B) {
	data := record("platform", `"iOS"`, "user_id", `" u-1 "`, "country", `"de"`, "value", "19.99",
		"properties", `{"sku":"A-1","qty":2}`, "app_version", `"5.2.1"`)
	for _, d := range benchDecoders {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseLakeLine restores the bench's archive lines with the
// reference ParseLakeLine and the current one; one op is one line.
func BenchmarkParseLakeLine(b *testing.B) {
	lines := benchLines(benchRecords(b, 4096))
	for _, d := range []struct {
		name  string
		parse func([]byte, string, int64) (Record, error)
	}{{"reference", referenceParseLakeLine}, {"current", ParseLakeLine}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := d.parse(lines[i%len(lines)], "gs://b/o#L1", 0); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
