// Package flink is how Railyard's jobs run on Apache Flink through Beam's
// portable runner: a Flink cluster with Beam's Flink job server and a Go
// SDK worker pool (compose.yaml beside this file), the commands that
// submit the jobs to it, and what the Go SDK cannot do on Flink (README.md).
//
// Its test submits the real batch job over the same Job API a Flink job
// server speaks (--runner=universal --endpoint=…) to Beam's standalone
// Prism job server, built from the tool dependency in go.mod:
//
//	go tool prism --job_port=8099
//	go run ./pipelines/batch --runner=universal --endpoint=localhost:8099 --environment_type=LOOPBACK …
package flink
