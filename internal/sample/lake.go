package sample

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/railyard/railyard/schemas"
)

// LakeFile is one file of the lake.
type LakeFile struct {
	// Path is the file's path under the lake root, with slashes:
	// raw/dt=YYYY-MM-DD/hr=HH/<name>.jsonl.gz.
	Path string
	// Lines are the file's lines, without newlines.
	Lines [][]byte
}

// Gzip returns the file's bytes: its lines, each ending in a newline,
// gzip-compressed without a name or time in the header.
func (f LakeFile) Gzip() ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for _, line := range f.Lines {
		if _, err := zw.Write(line); err != nil {
			return nil, fmt.Errorf("sample: gzip %s: %w", f.Path, err)
		}
		if _, err := zw.Write([]byte{'\n'}); err != nil {
			return nil, fmt.Errorf("sample: gzip %s: %w", f.Path, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("sample: gzip %s: %w", f.Path, err)
	}
	return b.Bytes(), nil
}

// LakeFiles returns the lake the streaming job would have archived from
// the messages, plus the import files, sorted by path. A message is
// archived as an envelope line under the hour of its
// schemas.ArchiveTime, in a file named by its publish hour
// (stream-YYYYMMDDTHH.jsonl.gz), so a late event lands in its old hour,
// in a new file. Lines are in publish order.
func (s *Sample) LakeFiles() ([]LakeFile, error) {
	byPath := map[string]*LakeFile{}
	file := func(path string) *LakeFile {
		f, ok := byPath[path]
		if !ok {
			f = &LakeFile{Path: path}
			byPath[path] = f
		}
		return f
	}
	for _, m := range s.Messages {
		line, err := schemas.MarshalEnvelope(m.Record())
		if err != nil {
			return nil, fmt.Errorf("sample: archive message %s: %w", m.MessageID, err)
		}
		name := "stream-" + time.UnixMicro(m.PublishTime).UTC().Format("20060102T15") + ".jsonl.gz"
		f := file(schemas.LakeHourPath(schemas.ArchiveTime(m.Data, m.PublishTime)) + name)
		f.Lines = append(f.Lines, line)
	}
	for _, imp := range s.Imports {
		f := file(imp.Path)
		for _, line := range imp.Lines {
			f.Lines = append(f.Lines, line.Data)
		}
	}
	out := make([]LakeFile, 0, len(byPath))
	for _, path := range sortedKeys(byPath) {
		out = append(out, *byPath[path])
	}
	return out, nil
}

// WriteLake writes the lake under dir: dir/raw/dt=YYYY-MM-DD/hr=HH/<file>.jsonl.gz.
// It overwrites files of the same names and leaves other files alone.
func (s *Sample) WriteLake(dir string) error {
	files, err := s.LakeFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := f.Gzip()
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(f.Path)), b); err != nil {
			return err
		}
	}
	return nil
}

// WriteMessages writes every message as an archive envelope line, in
// publish order: what a test publishes to Pub/Sub (data, attributes),
// and what it compares message ids and publish times with.
func (s *Sample) WriteMessages(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, m := range s.Messages {
		line, err := schemas.MarshalEnvelope(m.Record())
		if err != nil {
			return fmt.Errorf("sample: archive message %s: %w", m.MessageID, err)
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sample: write messages: %w", err)
	}
	return nil
}

// largeBadFile is the size from which a bad example is written gzipped.
const largeBadFile = 64 << 10

// BadExamples returns one record of every bad class in s, by class name:
// the first of its class in publish order (then in import-file order).
func (s *Sample) BadExamples() map[string][]byte {
	out := map[string][]byte{}
	add := func(m Message) {
		if _, ok := out[m.Class]; !ok && m.Kind == KindBad {
			out[m.Class] = m.Data
		}
	}
	for _, m := range s.Messages {
		add(m)
	}
	for _, f := range s.Imports {
		for _, line := range f.Lines {
			add(line)
		}
	}
	return out
}

// WriteBad writes one file per bad class into dir holding one record of
// the class, exactly its bytes: <class>.json, or <class>.json.gz for a
// record over 64 KiB. It also writes classes.json, the catalog with each
// class's reason, where it occurs, and its file.
func (s *Sample) WriteBad(dir string) error {
	examples := s.BadExamples()
	type entry struct {
		Class
		File string `json:"file"`
	}
	var index []entry
	for _, c := range s.Manifest().Classes {
		data, ok := examples[c.Name]
		if !ok {
			continue
		}
		name := c.Name + ".json"
		if len(data) > largeBadFile {
			name += ".gz"
			var err error
			if data, err = gzipBytes(data); err != nil {
				return err
			}
		}
		if err := writeFile(filepath.Join(dir, name), data); err != nil {
			return err
		}
		index = append(index, entry{c, name})
	}
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("sample: encode bad class index: %w", err)
	}
	return writeFile(filepath.Join(dir, "classes.json"), append(b, '\n'))
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("sample: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("sample: gzip: %w", err)
	}
	return b.Bytes(), nil
}

// Testdata layout under the repository's testdata folder.
const (
	TestdataLake     = "sample/lake"
	TestdataMessages = "sample/messages.jsonl"
	TestdataManifest = "sample/manifest.json"
	TestdataBad      = "bad"
)

// WriteTestdata writes the sample under root (the repository's testdata
// folder): the lake, the messages, the manifest and the bad examples.
func (s *Sample) WriteTestdata(root string) error {
	if err := s.WriteLake(filepath.Join(root, filepath.FromSlash(TestdataLake))); err != nil {
		return err
	}
	var msgs bytes.Buffer
	if err := s.WriteMessages(&msgs); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(root, filepath.FromSlash(TestdataMessages)), msgs.Bytes()); err != nil {
		return err
	}
	var man bytes.Buffer
	if err := WriteManifest(&man, s.Manifest()); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(root, filepath.FromSlash(TestdataManifest)), man.Bytes()); err != nil {
		return err
	}
	return s.WriteBad(filepath.Join(root, TestdataBad))
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}
