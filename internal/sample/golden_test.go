package sample

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the committed sample under testdata/ from Generate(DefaultConfig())")

// testdataRoot is the repository's testdata folder.
var testdataRoot = filepath.Join("..", "..", "testdata")

// TestCommittedSampleIsUpToDate checks that testdata/sample and
// testdata/bad hold what Generate(DefaultConfig()) writes, so the
// committed data never drifts from the generator. Gzip files are compared
// after decompression: their compressed bytes may differ between Go
// releases.
func TestCommittedSampleIsUpToDate(t *testing.T) {
	s := generated(t)
	if *update {
		for _, dir := range []string{filepath.Dir(filepath.FromSlash(TestdataManifest)), TestdataBad} {
			if err := os.RemoveAll(filepath.Join(testdataRoot, dir)); err != nil {
				t.Fatalf("clear %s: %v", dir, err)
			}
		}
		if err := s.WriteTestdata(testdataRoot); err != nil {
			t.Fatalf("WriteTestdata: %v", err)
		}
		t.Logf("wrote the sample under %s", testdataRoot)
	}
	fresh := t.TempDir()
	if err := s.WriteTestdata(fresh); err != nil {
		t.Fatalf("WriteTestdata: %v", err)
	}
	want := readTree(t, fresh, true)
	committed := map[string][]byte{}
	for _, dir := range []string{"sample", TestdataBad} {
		if _, err := os.Stat(filepath.Join(testdataRoot, dir)); err != nil {
			t.Fatalf("testdata/%s is missing (%v); run: go test ./internal/sample -update", dir, err)
		}
		for path, b := range readTree(t, filepath.Join(testdataRoot, dir), true) {
			committed[dir+"/"+path] = b
		}
	}
	for path, b := range want {
		got, ok := committed[path]
		switch {
		case !ok:
			t.Errorf("testdata/%s is missing", path)
		case !bytes.Equal(got, b):
			t.Errorf("testdata/%s differs from what Generate writes (%d bytes, want %d)", path, len(got), len(b))
		}
	}
	for path := range committed {
		if _, ok := want[path]; !ok {
			t.Errorf("testdata/%s is not written by Generate", path)
		}
	}
	if t.Failed() {
		t.Log("the committed sample is stale; if the change is intended, run: go test ./internal/sample -update")
	}
}

func TestCommittedManifestReads(t *testing.T) {
	f, err := os.Open(filepath.Join(testdataRoot, filepath.FromSlash(TestdataManifest)))
	if err != nil {
		t.Fatalf("open manifest: %v", err)
	}
	defer f.Close()
	m, err := ReadManifest(f)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if len(m.Events) == 0 || m.Lake.RecordsIn == 0 || !slices.Equal(m.Days, []string{"2026-11-01", "2026-11-02"}) {
		t.Errorf("committed manifest is empty or not of the default sample: %d events, %d records", len(m.Events), m.Lake.RecordsIn)
	}
}
