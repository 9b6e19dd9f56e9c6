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

// onEmulator reports whether the Storage Write API client goes to the
// emulator, which needs one append per write stream (see stage.go).
func onEmulator() bool { return os.Getenv(EnvStorageEmulatorHost) != "" }
