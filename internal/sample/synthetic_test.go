package sample

import (
	"bytes"
	"testing"

	"github.com/railyard/railyard/schemas"
)

func TestSynthetic(t *testing.T) {
	const n = 20_000
	kinds := map[Kind]int{}
	classes := map[string]bool{}
	seen := map[string]bool{}
	i := 0
	for m := range Synthetic(n, 42) {
		kinds[m.Kind]++
		ev, err := schemas.ParseEvent(m.Data)
		switch m.Kind {
		case KindBad:
			classes[m.Class] = true
			if got := schemas.ReasonOf(err); got != m.Reason {
				t.Fatalf("message %d of class %s: reason %q, want %q", i, m.Class, got, m.Reason)
			}
		case KindEvent, KindDuplicate:
			if err != nil {
				t.Fatalf("message %d (%s) is rejected: %v\n%s", i, m.Kind, err, m.Data)
			}
			if ev.EventID != m.EventID || seen[ev.EventID] != (m.Kind == KindDuplicate) {
				t.Fatalf("message %d: event %s (%s) seen before: %v", i, ev.EventID, m.Kind, seen[ev.EventID])
			}
			seen[ev.EventID] = true
		}
		i++
	}
	if i != n {
		t.Fatalf("Synthetic gave %d messages, want %d", i, n)
	}
	t.Run("holds about three percent duplicates", func(t *testing.T) {
		if r := float64(kinds[KindDuplicate]) / n; r < 0.025 || r > 0.035 {
			t.Errorf("duplicate rate %.4f", r)
		}
	})
	t.Run("holds about one percent bad records of varied classes", func(t *testing.T) {
		if r := float64(kinds[KindBad]) / n; r < 0.008 || r > 0.012 {
			t.Errorf("bad rate %.4f", r)
		}
		if len(classes) < 30 {
			t.Errorf("%d bad classes, want at least 30", len(classes))
		}
	})
	t.Run("stops when the consumer stops", func(t *testing.T) {
		got := 0
		for range Synthetic(n, 42) {
			got++
			if got == 10 {
				break
			}
		}
		if got != 10 {
			t.Errorf("read %d messages", got)
		}
	})
}

func TestSyntheticLakeLinesAreEnvelopes(t *testing.T) {
	const n = 5_000
	var msgs []Message
	for m := range Synthetic(n, 3) {
		msgs = append(msgs, m)
	}
	i := 0
	for line := range SyntheticLakeLines(n, 3) {
		want, err := schemas.MarshalEnvelope(msgs[i].Record())
		if err != nil {
			t.Fatalf("MarshalEnvelope: %v", err)
		}
		if !bytes.Equal(line, want) {
			t.Fatalf("line %d:\n got %s\nwant %s", i, line, want)
		}
		rec, err := schemas.ParseLakeLine(line, "u", 0)
		if err != nil || !bytes.Equal(rec.Data, msgs[i].Data) || rec.MessageID != msgs[i].MessageID {
			t.Fatalf("line %d does not read back as its message: %v", i, err)
		}
		i++
	}
	if i != n {
		t.Errorf("got %d lines, want %d", i, n)
	}
}

func BenchmarkSyntheticLakeLines(b *testing.B) {
	b.ReportAllocs()
	bytes := 0
	for line := range SyntheticLakeLines(b.N, 1) {
		bytes += len(line)
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
}
