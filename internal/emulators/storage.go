package emulators

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Storage is an in-process fake-gcs-server listening on 127.0.0.1.
type Storage struct {
	// Host is host:port, the value of STORAGE_EMULATOR_HOST.
	Host string

	server *fakestorage.Server
	http   *http.Server
	done   chan error
}

// StartStorage starts fake-gcs-server on a free port of 127.0.0.1.
//
// The server's public host is set to its own address: with only
// STORAGE_EMULATOR_HOST set, the Go client downloads objects from the
// public host, and fake-gcs-server answers "object doesn't exist" to
// requests for any other host.
func StartStorage() (*Storage, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("storage emulator: listen: %w", err)
	}
	host := lis.Addr().String()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener: true,
		Scheme:     "http",
		PublicHost: host,
	})
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("storage emulator: %w", err)
	}
	s := &Storage{Host: host, server: srv, http: &http.Server{Handler: srv.HTTPHandler()}, done: make(chan error, 1)}
	go func() { s.done <- s.http.Serve(lis) }()
	return s, nil
}

// Env returns the environment that points the Go storage client here.
func (s *Storage) Env() map[string]string {
	return map[string]string{"STORAGE_EMULATOR_HOST": s.Host}
}

// CreateBucket creates a bucket.
func (s *Storage) CreateBucket(name string) {
	s.server.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
}

// Client returns a storage client for this server, independent of the
// environment.
func (s *Storage) Client(ctx context.Context) (*storage.Client, error) {
	return s.server.Client(), nil
}

// UploadDir copies every file under dir into bucket, keeping its paths
// (a lake folder becomes the bucket's lake), and returns how many.
func (s *Storage) UploadDir(ctx context.Context, dir, bucket string) (int, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w := client.Bucket(bucket).Object(filepath.ToSlash(rel)).NewWriter(ctx)
		if _, err := w.Write(data); err != nil {
			w.Close()
			return fmt.Errorf("upload %s: %w", rel, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("upload %s: %w", rel, err)
		}
		n++
		return nil
	})
	return n, err
}

// Close stops the server.
func (s *Storage) Close() error {
	err := s.http.Close()
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	s.server.Stop()
	return err
}
