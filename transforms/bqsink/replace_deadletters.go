package bqsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
	"github.com/railyard/railyard/schemas/metricnames"
)

func init() {
	register.DoFn4x1[context.Context, int, func(*schemas.DeadLetter) bool, func(*string) bool, error](&replaceDeadLettersFn{})
	register.Iter1[schemas.DeadLetter]()
	register.Iter1[string]()
}

// replaceFileColumn is the staging column that marks a lake file whose
// dead letters are replaced.
const replaceFileColumn = "replace_file"

// deadLetterStage is a row of a dead-letter staging table: a dead letter
// to insert (ReplaceFile nil), or a marker naming a lake file whose
// batch-layer dead letters the run replaces.
type deadLetterStage struct {
	schemas.DeadLetter
	ReplaceFile *string `bq:"replace_file" desc:"A lake file whose batch-layer dead letters this run replaces; NULL on a dead letter to insert."`
}

// ReplaceDeadLetters writes the batch layer's dead letters idempotently.
// dead_letter is shared by both layers and partitioned by failed_at, a
// processing time, so days cannot scope a batch run's dead letters; the
// lake files it read do. The dead letters of the batch layer whose source
// file (source_uri without its final "#L<line>") is one of files, or the
// file of one of deadLetters, are replaced by deadLetters, in one
// statement, atomic in BigQuery. A rerun over the same files leaves the
// same dead letters; the speed layer's are never touched.
//
// deadLetters is a PCollection<schemas.DeadLetter> of the batch layer (an
// empty layer is taken as batch; another layer fails the write). files is
// a PCollection<string> of the lake files the run read (gs://bucket/path):
// a file that yields no dead letter this time has its old ones removed.
// A dead letter without source_uri (a row of a table that has none, which
// BigQuery rejected) is inserted, and no rerun replaces it.
//
// It panics when cfg is invalid or the PCollections have other types.
func ReplaceDeadLetters(s beam.Scope, cfg Config, deadLetters, files beam.PCollection) {
	s = s.Scope("bqsink.ReplaceDeadLetters")
	cfg = cfg.withServer()
	var errs []error
	if err := cfg.validateWrite(); err != nil {
		errs = append(errs, err)
	}
	if got := deadLetters.Type().Type(); got != reflect.TypeFor[schemas.DeadLetter]() {
		errs = append(errs, fmt.Errorf("dead letters are %v, want schemas.DeadLetter", got))
	}
	if got := files.Type().Type(); got != reflect.TypeFor[string]() {
		errs = append(errs, fmt.Errorf("files are %v, want string", got))
	}
	if err := errors.Join(errs...); err != nil {
		panic(fmt.Sprintf("bqsink.ReplaceDeadLetters: %v", err))
	}
	// One group holds the whole run: a single MERGE replaces it atomically.
	grouped := beam.CoGroupByKey(s, beam.AddFixedKey(s, deadLetters), beam.AddFixedKey(s, files))
	beam.ParDo0(s, &replaceDeadLettersFn{Config: cfg}, grouped)
}

// replaceDeadLettersFn stages the run's dead letters and a marker per file,
// then replaces the files' batch dead letters with one MERGE.
type replaceDeadLettersFn struct {
	Config Config

	enc     *Encoder
	columns []string
	w       *stager
	written beam.Counter
}

func (f *replaceDeadLettersFn) Setup() error {
	var err error
	if f.enc, err = EncoderFor(reflect.TypeFor[deadLetterStage]()); err != nil {
		return err
	}
	dl, err := EncoderFor(reflect.TypeFor[schemas.DeadLetter]())
	if err != nil {
		return err
	}
	f.columns = dl.Columns()
	if f.w, err = newStager(f.Config); err != nil {
		return err
	}
	f.written = beam.NewCounter(metricnames.Namespace, metricnames.RowsWritten(schemas.TableDeadLetter))
	return nil
}

func (f *replaceDeadLettersFn) Teardown() error {
	if f.w == nil {
		return nil
	}
	return f.w.close()
}

func (f *replaceDeadLettersFn) ProcessElement(ctx context.Context, _ int, deadLetters func(*schemas.DeadLetter) bool, files func(*string) bool) error {
	defer exclusive(f.Config.Server)()
	fileSet := map[string]bool{}
	for file := range iterate(files) {
		fileSet[file] = true
	}
	var (
		letters int
		encErr  error
	)
	rows := func(yield func([]byte) bool) {
		for dl := range iterate(deadLetters) {
			dl, err := sanitizeDeadLetter(dl)
			if err == nil && dl.SourceURI != nil {
				fileSet[fileOf(*dl.SourceURI)] = true
			}
			var data []byte
			if err == nil {
				data, err = f.enc.Encode(deadLetterStage{DeadLetter: dl})
			}
			if err != nil {
				encErr = fmt.Errorf("dead letter %s/%s of %s: %w", dl.Stage, dl.Reason, ptrString(dl.SourceURI), err)
				return
			}
			letters++
			if !yield(data) {
				return
			}
		}
		for file := range fileSet {
			data, err := f.enc.Encode(deadLetterStage{ReplaceFile: &file})
			if err != nil {
				encErr = fmt.Errorf("marker of %s: %w", file, err)
				return
			}
			if !yield(data) {
				return
			}
		}
	}

	staging, err := f.w.createStaging(ctx, stagingName(schemas.TableDeadLetter, "batch", f.Config.RunID), f.enc.Schema(), f.Config.stagingExpiration())
	if err != nil {
		return fmt.Errorf("replace dead letters: %w", err)
	}
	defer f.w.dropStaging(ctx, staging)
	_, rejected, err := f.w.write(ctx, staging, f.enc.Descriptor(), rows)
	if err = errors.Join(encErr, err); err != nil {
		return fmt.Errorf("replace dead letters: stage rows: %w", err)
	}
	if len(rejected) > 0 {
		// A dead letter has nowhere else to go: fail loudly rather than lose it.
		return fmt.Errorf("replace dead letters: BigQuery rejected %d dead letters, the first: %s", len(rejected), rejected[0].msg)
	}
	target := tableRef(f.Config.Project, f.Config.Dataset, schemas.TableDeadLetter)
	stagingRef := tableRef(staging.ProjectID, staging.DatasetID, staging.TableID)
	if err := f.w.runDML(ctx, replaceDeadLettersSQL(target, stagingRef, f.columns)); err != nil {
		return fmt.Errorf("replace dead letters: %w", err)
	}
	f.written.Inc(ctx, int64(letters))
	slog.InfoContext(ctx, "replaced batch dead letters", "files", len(fileSet), "dead_letters", letters)
	return nil
}

// sanitizeDeadLetter makes a batch dead letter writable whatever the
// record was (see writableDeadLetter). Only a dead letter of another
// layer is refused.
func sanitizeDeadLetter(dl schemas.DeadLetter) (schemas.DeadLetter, error) {
	switch dl.Layer {
	case "":
		dl.Layer = schemas.LayerBatch
	case schemas.LayerBatch:
	default:
		return dl, fmt.Errorf("layer is %q: ReplaceDeadLetters writes the batch layer's dead letters only", dl.Layer)
	}
	return writableDeadLetter(dl), nil
}

// writableDeadLetter makes a dead letter writable whatever the record
// was: text columns become valid UTF-8 (the raw bytes stay in payload),
// attributes that are not a JSON document become a JSON string.
func writableDeadLetter(dl schemas.DeadLetter) schemas.DeadLetter {
	dl.Layer = validUTF8(dl.Layer)
	dl.Stage = validUTF8(dl.Stage)
	dl.Reason = validUTF8(dl.Reason)
	dl.Error = validUTF8(dl.Error)
	dl.SourceURI = validUTF8Ptr(dl.SourceURI)
	dl.MessageID = validUTF8Ptr(dl.MessageID)
	if a := dl.Attributes; a != nil && (!utf8.ValidString(*a) || !json.Valid([]byte(*a))) {
		quoted, _ := json.Marshal(validUTF8(*a))
		s := string(quoted)
		dl.Attributes = &s
	}
	return dl
}

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func validUTF8Ptr(p *string) *string {
	if p == nil {
		return nil
	}
	s := validUTF8(*p)
	return &s
}

func ptrString(p *string) string {
	if p == nil {
		return "(no source)"
	}
	return *p
}
