// Command prepare builds the BigQuery emulator into the cache (or finds it
// there) and prints its path, so that CI pays the cold build once, before
// the tests, with its own time in the log.
//
//	go run ./internal/emulators/cmd/prepare
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/railyard/railyard/internal/emulators"
)

func main() {
	start := time.Now()
	bin, err := emulators.BigQueryEmulatorBinary(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "prepare: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("BigQuery emulator %s ready in %s: %s\n", emulators.BigQueryEmulatorVersion, time.Since(start).Round(time.Second), bin)
}
