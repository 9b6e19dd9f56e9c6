package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// keepRunning prints how to reach the emulators, then waits for Ctrl-C
// (ctx done). The emulators live in this process (the BigQuery emulator
// as its child), so they stop when it returns.
func keepRunning(ctx context.Context, out io.Writer, e *env, o options, batch *batchResult) error {
	fmt.Fprint(out, keepInstructions(e.vars(), o, batch.ranges[len(batch.ranges)-1]))
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nStopping the emulators…")
		return nil
	case <-e.bq.Exited():
		return fmt.Errorf("the BigQuery emulator exited; its log ended with:\n%s", e.bq.LogTail(2<<10))
	}
}

// keepInstructions are the lines --keep prints: the environment to paste,
// and commands that work against the emulators as they are now.
func keepInstructions(vars map[string]string, o options, day dayRange) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("")
	w("The emulators keep running in this process until Ctrl-C. In another shell, paste:")
	w("")
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		w("  export %s=%s", k, vars[k])
	}
	w("")
	w("Query the serving views (BigQuery REST API, jobs.query):")
	w("")
	w(`  curl -s -X POST http://%s/bigquery/v2/projects/%s/queries -H 'Content-Type: application/json' \`, vars["BIGQUERY_EMULATOR_HOST"], o.project)
	w(`    -d '{"useLegacySql": false, "query": "SELECT layer, COUNT(*) AS events FROM %s GROUP BY layer"}'`, tableRef(o.destination(), "events"))
	w("")
	w("List the lake (Cloud Storage JSON API):")
	w("")
	w(`  curl -s 'http://%s/storage/v1/b/%s/o?prefix=raw/dt=%s/' | grep -o '"name":"[^"]*"'`, vars["STORAGE_EMULATOR_HOST"], o.bucket, day.from)
	w("")
	w("Recompute event days %s again with the batch job (from the repository root, after the exports):", day)
	w("")
	w("  go run ./pipelines/batch --lake=%s --from=%s --to=%s --project=%s --dataset=%s", o.lake(), day.from, day.to, o.project, o.dataset)
	w("")
	return b.String()
}
