package emulators

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	storagev1 "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const testProject = "railyard-test"

// closedPort reports whether nothing accepts connections on addr.
func closedPort(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestStorage(t *testing.T) {
	ctx := t.Context()
	s, err := StartStorage()
	if err != nil {
		t.Fatal(err)
	}
	// Storage.Close may be called only once: a second call blocks forever.
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	s.CreateBucket("lake")

	t.Run("answers the Go storage client through STORAGE_EMULATOR_HOST", func(t *testing.T) {
		client, err := storage.NewClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		obj := client.Bucket("lake").Object("raw/dt=2024-01-01/a.jsonl")
		w := obj.NewWriter(ctx)
		if _, err := io.WriteString(w, `{"event_id":"1"}`+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := obj.NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != `{"event_id":"1"}`+"\n" {
			t.Fatalf("read %q, %v", got, err)
		}
	})

	t.Run("stops listening on Close", func(t *testing.T) {
		closed = true
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !closedPort(s.Host) {
			t.Errorf("%s still accepts connections after Close", s.Host)
		}
	})
}

func TestPubSub(t *testing.T) {
	ctx := t.Context()
	ps := StartPubSub()
	// PubSub.Close may be called only once: a second call panics in pstest.
	closed := false
	t.Cleanup(func() {
		if !closed {
			ps.Close()
		}
	})
	for k, v := range ps.Env() {
		t.Setenv(k, v)
	}

	t.Run("answers the Go Pub/Sub client through PUBSUB_EMULATOR_HOST", func(t *testing.T) {
		client, err := pubsub.NewClient(ctx, testProject)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		topic := "projects/" + testProject + "/topics/events"
		sub := "projects/" + testProject + "/subscriptions/events"
		if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic}); err != nil {
			t.Fatal(err)
		}
		pub := client.Publisher(topic)
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("hello")}).Get(ctx); err != nil {
			t.Fatal(err)
		}
		pub.Stop()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var got string
		err = client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			got = string(m.Data)
			m.Ack()
			cancel()
		})
		if err != nil || got != "hello" {
			t.Fatalf("received %q, %v", got, err)
		}
	})

	t.Run("stops listening on Close", func(t *testing.T) {
		closed = true
		if err := ps.Close(); err != nil {
			t.Fatal(err)
		}
		if !closedPort(ps.Host) {
			t.Errorf("%s still accepts connections after Close", ps.Host)
		}
	})
}

func TestBigQuery(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	bq, err := StartBigQuery(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bq.Close() })
	t.Logf("emulator ready in %v: REST %s, gRPC %s", time.Since(start).Round(time.Millisecond), bq.Host, bq.GRPCHost)
	env := bq.Env()
	if env["BIGQUERY_EMULATOR_HOST"] != bq.Host || env["BIGQUERY_STORAGE_EMULATOR_HOST"] != bq.GRPCHost {
		t.Fatalf("Env() = %v", env)
	}

	t.Run("answers the Go BigQuery client over REST", func(t *testing.T) {
		client, err := bigquery.NewClient(ctx, testProject,
			option.WithEndpoint("http://"+bq.Host+"/"), option.WithoutAuthentication())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if err := client.Dataset("probe").Create(ctx, nil); err != nil {
			t.Fatal(err)
		}
		it, err := client.Query("SELECT 40 + 2 AS answer").Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var row []bigquery.Value
		if err := it.Next(&row); err != nil {
			t.Fatal(err)
		}
		if row[0] != int64(42) {
			t.Errorf("SELECT 40 + 2 = %v", row[0])
		}
		var names []string
		dit := client.Datasets(ctx)
		for {
			ds, err := dit.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, ds.DatasetID)
		}
		if strings.Join(names, ",") != "probe" {
			t.Errorf("datasets = %v, want [probe]", names)
		}
	})

	t.Run("answers the Storage Write API client over gRPC", func(t *testing.T) {
		conn, err := grpc.NewClient(bq.GRPCHost, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		client, err := storagev1.NewBigQueryWriteClient(ctx, option.WithGRPCConn(conn))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		bqc, err := bigquery.NewClient(ctx, testProject,
			option.WithEndpoint("http://"+bq.Host+"/"), option.WithoutAuthentication())
		if err != nil {
			t.Fatal(err)
		}
		defer bqc.Close()
		if err := bqc.Dataset("probe").Table("t").Create(ctx, &bigquery.TableMetadata{
			Schema: bigquery.Schema{{Name: "x", Type: bigquery.StringFieldType}},
		}); err != nil {
			t.Fatal(err)
		}
		ws, err := client.CreateWriteStream(ctx, &storagepb.CreateWriteStreamRequest{
			Parent:      fmt.Sprintf("projects/%s/datasets/probe/tables/t", testProject),
			WriteStream: &storagepb.WriteStream{Type: storagepb.WriteStream_PENDING},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ws.GetName(), "projects/"+testProject+"/datasets/probe/tables/t/streams/") {
			t.Errorf("stream name %q", ws.GetName())
		}
	})

	t.Run("leaves no process, port or file behind on Close", func(t *testing.T) {
		pid, dir := bq.Pid(), bq.dir
		if err := bq.Close(); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("emulator process %d still exists after Close (kill 0: %v)", pid, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("emulator process group %d still exists after Close (kill 0: %v)", pid, err)
		}
		for _, addr := range []string{bq.Host, bq.GRPCHost} {
			if !closedPort(addr) {
				t.Errorf("%s still accepts connections after Close", addr)
			}
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary directory %s remains after Close (%v)", dir, err)
		}
		if err := bq.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestStartBigQueryForTest(t *testing.T) {
	var bq *BigQuery
	t.Run("starts an emulator for the subtest", func(t *testing.T) {
		bq = StartBigQueryForTest(t, testProject)
		if closedPort(bq.Host) {
			t.Fatalf("%s does not accept connections", bq.Host)
		}
	})
	select {
	case <-bq.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("emulator %d still running after its test's cleanup", bq.Pid())
	}
}

// TestBigQueryDiesWithItsParent runs a test process that starts the
// emulator and then panics in a goroutine (no deferred call, no cleanup
// runs), and checks that the kernel kills the emulator with it.
func TestBigQueryDiesWithItsParent(t *testing.T) {
	if os.Getenv("RAILYARD_EMULATORS_PANIC_HELPER") == "1" {
		bq, err := StartBigQuery(context.Background(), testProject)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d dir %s\n", bq.Pid(), bq.dir)
		go panic("the test process dies without closing the emulator")
		select {}
	}
	if testing.Short() {
		t.Skip("starts a child test process")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBigQueryDiesWithItsParent$", "-test.v")
	cmd.Env = append(os.Environ(), "RAILYARD_EMULATORS_PANIC_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid, dir := 0, ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			p, d, _ := strings.Cut(rest, " dir ")
			pid, dir = atoi(p), d
			break
		}
		if strings.HasPrefix(sc.Text(), "error:") {
			t.Fatal(sc.Text())
		}
	}
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err == nil {
		t.Fatal("the helper process exited cleanly; it should have panicked")
	}
	if pid == 0 {
		t.Fatal("the helper process reported no emulator pid")
	}
	// Only Close removes the temporary directory; a crashed process leaves
	// it (the database and the log, for a post-mortem).
	t.Cleanup(func() { os.RemoveAll(dir) })
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("emulator %d outlived its parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestToolsModulePinsTheEmulatorVersion(t *testing.T) {
	dir, err := toolsModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/goccy/bigquery-emulator " + BigQueryEmulatorVersion; !strings.Contains(string(mod), want) {
		t.Errorf("tools/go.mod does not require %s; the cached binary name would lie", want)
	}
}

func TestLockFileExcludesASecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v, want %v", err, context.DeadlineExceeded)
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestBigQueryBinaryFromEnvironment(t *testing.T) {
	t.Setenv(EnvBigQueryEmulatorBinary, filepath.Join(t.TempDir(), "missing"))
	if _, err := StartBigQuery(t.Context(), testProject); err == nil || !strings.Contains(err.Error(), EnvBigQueryEmulatorBinary) {
		t.Fatalf("StartBigQuery with a missing $%s: %v", EnvBigQueryEmulatorBinary, err)
	}
}
