package sample_test

import (
	"fmt"
	"time"

	"github.com/railyard/railyard/internal/sample"
)

func ExampleGenerate() {
	s, err := sample.Generate(sample.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	m := s.Manifest()
	fmt.Printf("stream: %d records = %d events + %d duplicates + %d dead letters\n",
		m.Stream.RecordsIn, m.Stream.ValidUnique, m.Stream.Duplicates, m.Stream.DeadLetters)
	fmt.Printf("lake:   %d records = %d events + %d duplicates + %d dead letters\n",
		m.Lake.RecordsIn, m.Lake.ValidUnique, m.Lake.Duplicates, m.Lake.DeadLetters)
	fmt.Println("sessions:", len(sample.Sessions(m.StreamEvents(), 30*time.Minute)))
	// Output:
	// stream: 3286 records = 3000 events + 150 duplicates + 136 dead letters
	// lake:   3377 records = 3079 events + 150 duplicates + 148 dead letters
	// sessions: 525
}

func ExampleSynthetic() {
	kinds := map[sample.Kind]int{}
	for m := range sample.Synthetic(10_000, 1) {
		kinds[m.Kind]++
	}
	fmt.Println(kinds[sample.KindEvent]+kinds[sample.KindDuplicate]+kinds[sample.KindBad] == 10_000)
	// Output: true
}
