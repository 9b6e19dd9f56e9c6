package bqsink

import (
	"context"
	"fmt"
	"os"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Environment variables that point the clients at the BigQuery emulator.
const (
	EnvEmulatorHost        = "BIGQUERY_EMULATOR_HOST"
	EnvStorageEmulatorHost = "BIGQUERY_STORAGE_EMULATOR_HOST"
)

// NewClient returns a BigQuery client for project. With
// BIGQUERY_EMULATOR_HOST set it talks to the emulator at that host:port,
// without authentication; otherwise to BigQuery with Application Default
// Credentials. The Go BigQuery client reads no emulator variable itself.
func NewClient(ctx context.Context, project string, opts ...option.ClientOption) (*bigquery.Client, error) {
	if host := os.Getenv(EnvEmulatorHost); host != "" {
		opts = append([]option.ClientOption{option.WithEndpoint("http://" + host + "/"), option.WithoutAuthentication()}, opts...)
	}
	c, err := bigquery.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("bigquery client for %s: %w", project, err)
	}
	return c, nil
}

// NewWriteClient returns a Storage Write API client for project. With
// BIGQUERY_STORAGE_EMULATOR_HOST set it talks to the emulator's gRPC
// server at that host:port over an insecure connection; otherwise to
// BigQuery with Application Default Credentials. Closing the client
// closes the connection.
func NewWriteClient(ctx context.Context, project string, opts ...option.ClientOption) (*managedwriter.Client, error) {
	var conn *grpc.ClientConn
	if host := os.Getenv(EnvStorageEmulatorHost); host != "" {
		var err error
		conn, err = grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("storage write emulator %s: %w", host, err)
		}
		opts = append([]option.ClientOption{option.WithGRPCConn(conn)}, opts...)
	}
	c, err := managedwriter.NewClient(ctx, project, opts...)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("storage write client for %s: %w", project, err)
	}
	return c, nil
}

// Server is what the sink must respect of the Storage Write API server it
// writes to: BigQuery's limits and answers, or the emulator's. Jobs decide
// it once, when they are built (ServerFromEnv), and give it to the sink in
// Config.Server; the sink's steps never look at the environment.
type Server struct {
	// AppendBytes bounds the rows of one AppendRows request. BigQuery
	// takes requests of up to 10 MB; the emulator's gRPC server refuses
	// messages over 4 MiB ("received message larger than max"). Both
	// leave room for the request's framing and the schema descriptor.
	AppendBytes int
	// AppendsPerStream is how many appends one pending stream takes.
	// Against BigQuery a stream takes many appends (at increasing
	// offsets); a few streams per day keep well inside the
	// CreateWriteStream quota. The emulator gets exactly one: the
	// managedwriter client names the stream in the first request of a
	// connection only, and the emulator sends an unnamed append to an
	// arbitrary stream of any table (measured: the second append of a
	// stream failed with "failed to append rows: stream is already
	// finalized", the state of another stream).
	AppendsPerStream int
	// OneWriter serializes this process's writes and waits for each
	// append's answer before the next (see exclusive).
	OneWriter bool
	// InternalIsRowFault: the server answers a row it cannot store by
	// failing the whole append with Internal and no row errors (the
	// emulator), where BigQuery answers row errors and keeps Internal for
	// its own trouble.
	InternalIsRowFault bool
	// MergePairsRows: the server runs a MERGE by pairing every source row
	// with every target row of the whole table (the emulator's SQLite
	// translation; measured: 20,000 staged rows into a table of 40,000
	// took 65 s, and the second day of a 1,000,000-event lake 85
	// minutes), so a day is replaced there by a DELETE and an
	// INSERT … SELECT instead (see replaceDayScript), which take 0.3 s
	// for the same rows.
	MergePairsRows bool
}

// The two servers.
var (
	BigQueryServer = Server{AppendBytes: 8 << 20, AppendsPerStream: 16}
	EmulatorServer = Server{AppendBytes: 3 << 20, AppendsPerStream: 1, OneWriter: true, InternalIsRowFault: true, MergePairsRows: true}
)

// ServerFromEnv is the server NewWriteClient connects to: the emulator's
// when BIGQUERY_STORAGE_EMULATOR_HOST is set, else BigQuery's.
func ServerFromEnv() Server {
	if os.Getenv(EnvStorageEmulatorHost) != "" {
		return EmulatorServer
	}
	return BigQueryServer
}
