package serving

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/railyard/railyard/schemas"
)

// TestCatalogue checks, against the emulator after EnsureViews, that every
// table, view and column carries its description from schemas, and that
// each view returns exactly the columns its catalogue entry declares.
func TestCatalogue(t *testing.T) {
	e := newEnv(t, "railyard")
	if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
		t.Fatal(err)
	}
	for _, table := range schemas.Tables {
		md, err := e.client.Dataset(e.dataset).Table(table.Name).Metadata(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if md.Description == "" || md.Description != table.Description {
			t.Errorf("table %s: description %q, want %q", table.Name, md.Description, table.Description)
		}
		checkDescribed(t, "table "+table.Name, md.Schema, table.Schema())
	}
	for _, v := range schemas.Views {
		md, err := e.client.Dataset(e.dataset).Table(v.Name).Metadata(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if md.Type != bigquery.ViewTable {
			t.Errorf("%s is a %s, want a view", v.Name, md.Type)
		}
		if md.Description == "" || md.Description != v.Description {
			t.Errorf("view %s: description %q, want %q", v.Name, md.Description, v.Description)
		}
		if err := CompareColumns(md.Schema, v.Schema()); err != nil {
			t.Errorf("view %s: %v", v.Name, err)
		}
		checkDescribed(t, "view "+v.Name, md.Schema, v.Schema())
	}
}

func checkDescribed(t *testing.T, what string, got, want bigquery.Schema) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d columns, the catalogue %d", what, len(got), len(want))
		return
	}
	for i, f := range got {
		if f.Description == "" {
			t.Errorf("%s: column %s has no description", what, f.Name)
		} else if f.Description != want[i].Description {
			t.Errorf("%s: column %s is described %q, the catalogue says %q", what, f.Name, f.Description, want[i].Description)
		}
	}
}

func TestEnsureViews(t *testing.T) {
	e := newEnv(t, "railyard")
	views := e.client.Dataset(e.dataset)
	t.Run("creates every view", func(t *testing.T) {
		if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
			t.Fatal(err)
		}
		for _, v := range schemas.Views {
			if _, err := views.Table(v.Name).Metadata(e.ctx); err != nil {
				t.Errorf("view %s: %v", v.Name, err)
			}
		}
	})
	t.Run("a second run changes nothing", func(t *testing.T) {
		// The emulator keeps no modification time on views; the log says
		// what EnsureViews changed.
		var log bytes.Buffer
		defer slog.SetDefault(slog.Default())
		slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
		if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
			t.Fatal(err)
		}
		if log.Len() > 0 {
			t.Errorf("the second EnsureViews changed something:\n%s", log.String())
		}
	})
	t.Run("brings an outdated view up to date", func(t *testing.T) {
		stale := views.Table("events")
		if _, err := stale.Update(e.ctx, bigquery.TableMetadataToUpdate{
			ViewQuery:   "SELECT 1 AS event_id",
			Description: "an old version",
		}, ""); err != nil {
			t.Fatal(err)
		}
		if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
			t.Fatal(err)
		}
		md, err := stale.Metadata(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := schemas.LookupView("events")
		want, _ := v.Query(testProject, e.dataset)
		if md.ViewQuery != want || md.Description != v.Description {
			t.Errorf("events not restored: description %q, query:\n%s", md.Description, md.ViewQuery)
		}
		checkDescribed(t, "view events", md.Schema, v.Schema())
	})
	t.Run("never replaces a table that has a view's name", func(t *testing.T) {
		other := newEnv(t, "other")
		if err := other.client.Dataset("other").Table("sessions").Create(other.ctx, &bigquery.TableMetadata{
			Schema: bigquery.Schema{{Name: "x", Type: bigquery.StringFieldType}},
		}); err != nil {
			t.Fatal(err)
		}
		err := EnsureViews(other.ctx, other.client, "other")
		if err == nil || !strings.Contains(err.Error(), "view other.sessions: a TABLE of that name exists; Railyard does not replace it") {
			t.Errorf("EnsureViews over a table: %v", err)
		}
	})
	t.Run("two jobs at once both succeed", func(t *testing.T) {
		both := newEnv(t, "both")
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- EnsureViews(both.ctx, both.client, both.dataset) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for _, v := range schemas.Views {
			md, err := both.client.Dataset(both.dataset).Table(v.Name).Metadata(both.ctx)
			if err != nil {
				t.Fatal(err)
			}
			checkDescribed(t, "view "+v.Name, md.Schema, v.Schema())
		}
	})
	t.Run("rejects a dataset name that is not one", func(t *testing.T) {
		err := EnsureViews(e.ctx, e.client, "x`; DROP TABLE y; --")
		if err == nil || !strings.Contains(err.Error(), "is not a BigQuery dataset name") {
			t.Errorf("EnsureViews with a bad dataset: %v", err)
		}
	})
}

// TestDeadLettersView checks the readable form of dead letters: preview
// text for UTF-8, binary and control bytes, truncation and attributes.
func TestDeadLettersView(t *testing.T) {
	e := newEnv(t, "railyard")
	at := day(t, "2026-11-01").Add(hms(12, 0, 0))
	e.seedDeadLetters(at)
	if err := EnsureViews(e.ctx, e.client, e.dataset); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]bigquery.Value{}
	for _, r := range e.rows(`SELECT * FROM {dead_letters}`) {
		got[r["reason"].(string)] = r
	}
	if len(got) != 4 {
		t.Fatalf("dead_letters has %d reasons, want 4: %v", len(got), got)
	}
	for _, tc := range []struct {
		reason, preview, layer, attributes string
		bytes                              int64
		truncated                          bool
		received                           time.Time
	}{
		{"invalid_json", `{"event_id": `, "speed", `{"origin":"shop"}`, 13, false, at.Add(-time.Second)},
		{"invalid_utf8", "\uFFFD\uFFFDa\tb", "speed", "", 5, false, at.Add(-time.Second)},
		{"missing_event_id", `{"x":1}` + "\uFFFD", "batch", "", 8, false, at.Add(time.Hour)},
		{"too_large", strings.Repeat("x", 1024), "batch", "", 1500, true, at.Add(time.Hour)},
	} {
		r := got[tc.reason]
		if r["payload_preview"] != tc.preview {
			t.Errorf("%s: payload_preview %q, want %q", tc.reason, r["payload_preview"], tc.preview)
		}
		if r["layer"] != tc.layer || toInt(r["payload_bytes"]) != tc.bytes || r["payload_truncated"] != tc.truncated {
			t.Errorf("%s: layer %v, payload_bytes %v, payload_truncated %v; want %s, %d, %v",
				tc.reason, r["layer"], r["payload_bytes"], r["payload_truncated"], tc.layer, tc.bytes, tc.truncated)
		}
		wantAttrs := bigquery.Value(nil)
		if tc.attributes != "" {
			wantAttrs = tc.attributes
		}
		if r["attributes"] != wantAttrs {
			t.Errorf("%s: attributes %v, want %v", tc.reason, r["attributes"], wantAttrs)
		}
		if !r["received_at"].(time.Time).Equal(tc.received) {
			t.Errorf("%s: received_at %v, want %v", tc.reason, r["received_at"], tc.received)
		}
	}
}
