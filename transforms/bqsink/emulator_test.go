package bqsink

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"

	"github.com/railyard/railyard/internal/testenv"
	"github.com/railyard/railyard/schemas"
)

// TestEmulatorDiffers records, against goccy/bigquery-emulator v0.8.1,
// each behaviour this package works around or cannot check there. When an
// emulator upgrade changes one, its subtest fails: revisit the workaround.
func TestEmulatorDiffers(t *testing.T) {
	client := startBigQuery(t)
	ctx := t.Context()
	cfg := Config{Project: testenv.Project, Dataset: "quirks"}
	if err := Ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	events := tableRef(cfg.Project, cfg.Dataset, schemas.TableEventsBatch)
	run := func(sql string, params ...bigquery.QueryParameter) error {
		q := client.Query(sql)
		q.Parameters = params
		job, err := q.Run(ctx)
		if err != nil {
			return err
		}
		st, err := job.Wait(ctx)
		if err != nil {
			return err
		}
		return st.Err()
	}
	count := func() int64 {
		rows := testenv.Rows(t, client, "SELECT COUNT(*) AS n FROM "+events)
		return rows[0]["n"].(int64)
	}
	seed := func() {
		t.Helper()
		if err := run("DELETE FROM " + events + " WHERE TRUE"); err != nil {
			t.Fatal(err)
		}
		if err := run("INSERT INTO " + events + " (event_id, event_type, event_time, source, ingest_time, layer) VALUES " +
			"('a', 't', TIMESTAMP '2024-01-01 10:00:00+00', 's', TIMESTAMP '2024-01-01 10:00:00+00', 'batch')"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("MERGE binds no query parameter: the day's DELETE matches nothing", func(t *testing.T) {
		seed()
		err := run("MERGE "+events+" T USING "+events+" S ON FALSE "+
			"WHEN NOT MATCHED BY SOURCE AND T.event_time >= @day_start AND T.event_time < @day_end THEN DELETE",
			bigquery.QueryParameter{Name: "day_start", Value: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
			bigquery.QueryParameter{Name: "day_end", Value: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)})
		if err != nil || count() != 1 {
			t.Errorf("MERGE with parameters: err %v, %d rows left; the emulator used to delete nothing, silently", err, count())
		}
		day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := run("MERGE " + events + " T USING " + events + " S ON FALSE WHEN NOT MATCHED BY SOURCE AND T.event_time >= " +
			timestampLiteral(day) + " AND T.event_time < " + timestampLiteral(day.AddDate(0, 0, 1)) + " THEN DELETE"); err != nil || count() != 0 {
			t.Errorf("MERGE with literals: err %v, %d rows left, want 0", err, count())
		}
	})

	t.Run("a failed job keeps what its earlier statements did: no atomicity to check", func(t *testing.T) {
		seed()
		err := run("DELETE FROM " + events + " WHERE TRUE; SELECT ERROR('fail after the delete');")
		if err == nil || count() != 0 {
			t.Errorf("script: err %v, %d rows left; the emulator used to fail the job and keep the DELETE", err, count())
		}
	})

	t.Run("a JSON value that does not parse fails the whole commit, with no row errors", func(t *testing.T) {
		mw, err := NewWriteClient(ctx, testenv.Project)
		if err != nil {
			t.Fatal(err)
		}
		defer mw.Close()
		enc, _ := EncoderFor(reflect.TypeFor[schemas.Event]())
		bad := event("bad", "2024-01-01T00:00:00Z")
		bad.Properties = ptr("{not json")
		m, err := enc.message(bad)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := protoMarshal(m)
		parent := managedwriter.TableParentFromParts(cfg.Project, cfg.Dataset, schemas.TableEventsBatch)
		ms, err := mw.NewManagedStream(ctx, managedwriter.WithDestinationTable(parent),
			managedwriter.WithType(managedwriter.PendingStream), managedwriter.WithSchemaDescriptor(enc.Descriptor()))
		if err != nil {
			t.Fatal(err)
		}
		defer ms.Close()
		res, err := ms.AppendRows(ctx, [][]byte{data})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := res.FullResponse(ctx)
		if err != nil || len(resp.GetRowErrors()) != 0 {
			t.Fatalf("append: %v, row errors %v; the emulator used to accept the append", err, resp.GetRowErrors())
		}
		if _, err := ms.Finalize(ctx); err != nil {
			t.Fatal(err)
		}
		commit, err := mw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{Parent: parent, WriteStreams: []string{ms.StreamName()}})
		if err != nil {
			t.Fatal(err)
		}
		if errs := commit.GetStreamErrors(); len(errs) != 1 || !strings.Contains(errs[0].GetErrorMessage(), "json: invalid character") {
			t.Errorf("commit stream errors = %v; the emulator used to fail the stream with %q", errs, "json: invalid character")
		}
	})

	t.Run("creating a dataset that exists answers 500, not 409", func(t *testing.T) {
		err := client.Dataset(cfg.Dataset).Create(ctx, nil)
		if httpCode(err) != 500 || !strings.Contains(err.Error(), "already created") {
			t.Errorf("second create: %v; the emulator used to answer 500 %q", err, "dataset quirks is already created")
		}
	})

	t.Run("insertAll stores a BYTES value as its base64 text", func(t *testing.T) {
		dl, _ := schemas.LookupTable(schemas.TableDeadLetter)
		err := client.Dataset(cfg.Dataset).Table(dl.Name).Inserter().Put(ctx, &bigquery.ValuesSaver{Schema: dl.Schema(), Row: []bigquery.Value{
			time.Now(), "batch", "s", "r", "e", []byte("raw"), nil, nil, nil, nil,
		}})
		if err != nil {
			t.Fatal(err)
		}
		rows := testenv.Rows(t, client, "SELECT payload FROM "+tableRef(cfg.Project, cfg.Dataset, dl.Name))
		if got := string(rows[0]["payload"].([]byte)); got != "cmF3" {
			t.Errorf("payload reads back %q; the emulator used to store %q (base64 of %q)", got, "cmF3", "raw")
		}
	})

	t.Run("copy jobs and load jobs from a reader are not supported", func(t *testing.T) {
		ds := client.Dataset(cfg.Dataset)
		cp := ds.Table(schemas.TableEventsBatch + "$20240101").CopierFrom(ds.Table(schemas.TableEventsSpeed))
		cp.WriteDisposition = bigquery.WriteTruncate
		if _, err := cp.Run(ctx); err == nil || !strings.Contains(err.Error(), "unspecified job configuration query") {
			t.Errorf("copy job: %v", err)
		}
		src := bigquery.NewReaderSource(strings.NewReader("{}\n"))
		src.SourceFormat = bigquery.JSON
		ld := ds.Table(schemas.TableEventsBatch + "$20240101").LoaderFrom(src)
		ld.WriteDisposition = bigquery.WriteTruncate
		job, err := ld.Run(ctx)
		if err == nil {
			_, err = job.Wait(ctx)
		}
		if err == nil {
			t.Error("load job from a reader succeeded; the emulator used to fail it (500 nil pointer dereference)")
		}
	})
}
