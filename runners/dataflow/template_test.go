package dataflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	df "google.golang.org/api/dataflow/v1b3"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
	"github.com/railyard/railyard/pipelines/streaming/streamjob"
)

// The Flex Templates' metadata.json files are generated from the jobs'
// own flags: each flag is a template parameter whose help text is the
// flag's usage, unless paramSpecs says why it is not one. The files and
// the parameter list in README.md are rewritten with
//
//	go test ./runners/dataflow -run TestTemplateMetadata -update
//
// -update is Beam's own flag (the Dataflow runner's --update, "submit as
// an update to an existing job"): this package links Beam's Dataflow
// runner in, and a second flag of that name would panic at start, so the
// test reads Beam's. The translation tests set it back to false.

// flexTemplate is one job's Flex Template.
type flexTemplate struct {
	job         string // pipelines/<job>, templates/<job>, /template/<job> in the image
	name        string
	description string
	streaming   bool
	register    func(*flag.FlagSet) // defines the job's flags, as its main does
	required    []string            // flags the command-line contract requires
}

var flexTemplates = []flexTemplate{
	{
		job:  "streaming",
		name: "Railyard streaming job (speed layer)",
		description: "Reads a Pub/Sub subscription with Dataflow's own source, archives every raw message to the lake, " +
			"and appends events, per-minute metrics, sessions and dead letters to BigQuery's *_speed tables and dead_letter. " +
			"Creates the dataset, tables and views it needs at start. Guide: runners/dataflow/README.md in the Railyard repository.",
		streaming: true,
		register:  func(fs *flag.FlagSet) { streamjob.RegisterFlags(fs) },
		required:  []string{"subscription", "lake"},
	},
	{
		job:  "batch",
		name: "Railyard batch job (batch layer)",
		description: "Reads the raw lake for a range of event days and replaces those days' partitions of BigQuery's *_batch tables. " +
			"A Flex Template launch is refused: the job records its days as covered only once its pipeline has finished, " +
			"so it runs as a Cloud Run job from the same image (runners/dataflow/README.md in the Railyard repository).",
		register: func(fs *flag.FlagSet) { batchjob.RegisterFlags(fs) },
	},
}

// paramSpec is what a flag's usage does not say about it as a template
// parameter: its label and the regexes Dataflow checks its value against
// at launch (POSIX egrep), with examples the test checks them on; or, in
// notParameter, why the flag is no parameter of a template (which then
// refuses it: Dataflow rejects a parameter the metadata does not list).
type paramSpec struct {
	label        string
	regexes      []string
	valid        []string
	invalid      []string
	notParameter string
}

const (
	durationRE = `^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	dayRE      = `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`
	// lakeRE is gs://BUCKET[/prefix], as config.ValidateLake checks it.
	lakeRE = `^gs://[a-z0-9][-a-z0-9._]{1,221}[a-z0-9](/.*)?$`
	// subscriptionRE is as the Pub/Sub reader checks it (pubsubio).
	subscriptionRE = `^projects/[a-z0-9][-a-z0-9.:]{0,98}[a-z0-9]/subscriptions/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$`
)

var durations = struct{ valid, invalid []string }{
	valid:   []string{"0", "30m", "1h30m", "1.5s", "250ms"},
	invalid: []string{"30", "-1m", "1 h", "soon"},
}

// paramSpecs has an entry for every flag of every job. A new flag fails
// the test until it has one.
var paramSpecs = map[string]paramSpec{
	"subscription": {
		label:   "Pub/Sub subscription",
		regexes: []string{subscriptionRE},
		valid:   []string{"projects/my-project/subscriptions/railyard-events"},
		invalid: []string{"railyard-events", "projects/p/subscriptions/s", "projects/my-project/topics/railyard-events"},
	},
	"lake": {
		label:   "Lake root",
		regexes: []string{lakeRE},
		valid:   []string{"gs://my-lake", "gs://my-lake/railyard"},
		invalid: []string{"/data/lake", "gs://B", "s3://my-lake"},
	},
	"dataset": {
		label:   "BigQuery dataset",
		regexes: []string{`^[A-Za-z0-9_]+$`},
		valid:   []string{"railyard", "railyard_test"},
		invalid: []string{"rail-yard", "my-project.railyard"},
	},
	"input": {
		label:   "Lake files",
		regexes: []string{`^gs://[^,]+(,gs://[^,]+)*$`},
		valid:   []string{"gs://my-lake/raw/dt=2026-11-01/**", "gs://a/x/*.jsonl.gz,gs://b/y/**"},
		invalid: []string{"/tmp/lake/*.jsonl.gz", "gs://a/x,/tmp/y"},
	},
	"from": {
		label: "First event day", regexes: []string{dayRE},
		valid: []string{"2026-11-01"}, invalid: []string{"2026-11-1", "yesterday"},
	},
	"to": {
		label: "Last event day", regexes: []string{dayRE},
		valid: []string{"2026-11-02"}, invalid: []string{"20261102"},
	},
	"run_id": {
		label:   "Run name",
		regexes: []string{`^[A-Za-z0-9_-]{1,64}$`},
		valid:   []string{"batch-20261102t030000", "stream_1"},
		invalid: []string{"run 1", "run.1"},
	},
	"session_gap":      {label: "Session gap", regexes: []string{durationRE}},
	"early_firing":     {label: "Early firing interval", regexes: []string{durationRE}},
	"allowed_lateness": {label: "Allowed lateness", regexes: []string{durationRE}},
	"dedup_horizon":    {label: "Deduplication horizon", regexes: []string{durationRE}},
	"max_future":       {label: "Greatest lead of event time over ingest time", regexes: []string{durationRE}},
	"archive_window":   {label: "Archive window", regexes: []string{durationRE}},
	"archive_shards": {
		label: "Archive files per window", regexes: []string{`^[0-9]{1,3}$`},
		valid: []string{"4", "999"}, invalid: []string{"-1", "four", "1000"},
	},
	"timestamp_attribute": {
		label:   "Event-time attribute",
		regexes: []string{`^[^,]{1,256}$`},
		valid:   []string{"event_time"},
	},
	"recover": {
		label: "Recover open windows", regexes: []string{`^(true|false)$`},
		valid: []string{"true", "false"}, invalid: []string{"yes", "1"},
	},
	"stop_after_idle": {notParameter: "for local runs and tests: Dataflow's own Pub/Sub source never ends; stop the job with a drain"},
	"read_shards":     {notParameter: "sizes Railyard's own Pub/Sub reader; on Dataflow, Dataflow's own source reads and scales itself"},
	"ack_deadline":    {notParameter: "leases messages for Railyard's own Pub/Sub reader; Dataflow's own source leases and acknowledges them itself"},
	"ack_extension":   {notParameter: "leases messages for Railyard's own Pub/Sub reader; Dataflow's own source leases and acknowledges them itself"},

	"max_outstanding_messages": {notParameter: "flow control of Railyard's own Pub/Sub reader; Dataflow's own source has its own"},
	"max_outstanding_bytes":    {notParameter: "flow control of Railyard's own Pub/Sub reader; Dataflow's own source has its own"},
}

// beamParameters are the flags of Beam's, not the job's, that a template
// takes as parameters; every other Beam flag is either set by the Flex
// Template launcher from gcloud's own options or not for a launch
// (README.md lists them).
var beamParameters = []parameter{{
	Name:  "worker_binary",
	Label: "Worker binary",
	HelpText: "The binary, in the template's image, that Dataflow's workers run. Default: the launching binary, a linux/amd64 build. " +
		"Tau T2A workers (--worker-machine-type=t2a-…) are linux/arm64: give /template/<job>-arm64.",
	IsOptional: true,
	Regexes:    []string{`^/template/(batch|streaming)(-arm64)?$`},
}}

// metadata is a Flex Template's metadata.json: the Dataflow API's
// TemplateMetadata with its fields in the order a reader wants them.
type metadata struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Streaming   bool        `json:"streaming,omitempty"`
	Parameters  []parameter `json:"parameters"`
}

// parameter is the Dataflow API's ParameterMetadata, as metadata.
type parameter struct {
	Name       string   `json:"name"`
	Label      string   `json:"label"`
	HelpText   string   `json:"helpText"`
	IsOptional bool     `json:"isOptional"`
	Regexes    []string `json:"regexes,omitempty"`
}

// excluded is a flag of a job that is no template parameter.
type excluded struct{ name, reason string }

// generate builds a job's template metadata from its flags in fs: the
// required flags first, in the order tmpl.required gives, then the other
// flags by name, then Beam's parameters. It also returns the job's flags
// that are no parameters.
func generate(tmpl flexTemplate, fs *flag.FlagSet, specs map[string]paramSpec) (metadata, []excluded, error) {
	md := metadata{Name: tmpl.name, Description: tmpl.description, Streaming: tmpl.streaming}
	required := map[string]parameter{}
	var optional []parameter
	var out []excluded
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		spec, ok := specs[f.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--%s of the %s job has no entry in paramSpecs: give it a label and regexes, or the reason it is no template parameter", f.Name, tmpl.job))
			return
		case spec.notParameter != "":
			out = append(out, excluded{f.Name, spec.notParameter})
			return
		}
		isRequired := slices.Contains(tmpl.required, f.Name)
		if isRequired && !isZeroDefault(f.DefValue) {
			errs = append(errs, fmt.Errorf("--%s of the %s job is required but has a default (%s)", f.Name, tmpl.job, f.DefValue))
		}
		p := parameter{Name: f.Name, Label: spec.label, HelpText: helpText(f), IsOptional: !isRequired, Regexes: spec.regexes}
		if isRequired {
			required[f.Name] = p
		} else {
			optional = append(optional, p)
		}
	})
	for _, name := range tmpl.required {
		p, ok := required[name]
		if !ok {
			errs = append(errs, fmt.Errorf("the %s job has no flag --%s, which its template requires", tmpl.job, name))
			continue
		}
		md.Parameters = append(md.Parameters, p)
	}
	md.Parameters = append(append(md.Parameters, optional...), beamParameters...)
	return md, out, errors.Join(errs...)
}

// helpText is a flag's usage and, where it has one, its default.
func helpText(f *flag.Flag) string {
	if isZeroDefault(f.DefValue) {
		return f.Usage
	}
	return fmt.Sprintf("%s Default: %s.", f.Usage, f.DefValue)
}

func isZeroDefault(v string) bool {
	return v == "" || v == "0" || v == "0s" || v == "false"
}

// encode is a metadata.json file's content.
func (m metadata) encode() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// drift lists how a committed metadata.json differs from the one the
// job's flags generate, in words that say what to do.
func drift(committed, generated metadata) []string {
	var diffs []string
	if committed.Name != generated.Name || committed.Description != generated.Description || committed.Streaming != generated.Streaming {
		diffs = append(diffs, "the template's name, description or streaming differ")
	}
	have := map[string]parameter{}
	for _, p := range committed.Parameters {
		have[p.Name] = p
	}
	want := map[string]bool{}
	for _, g := range generated.Parameters {
		want[g.Name] = true
		c, ok := have[g.Name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("parameter %s is missing from metadata.json (a new flag --%s?)", g.Name, g.Name))
			continue
		case c.HelpText != g.HelpText:
			diffs = append(diffs, fmt.Sprintf("parameter %s: helpText %q in metadata.json, but the flag's usage and default say %q", g.Name, c.HelpText, g.HelpText))
		}
		if c.Label != g.Label || c.IsOptional != g.IsOptional || !slices.Equal(c.Regexes, g.Regexes) {
			diffs = append(diffs, fmt.Sprintf("parameter %s: label, isOptional or regexes differ from paramSpecs and the required flags", g.Name))
		}
	}
	for _, c := range committed.Parameters {
		if !want[c.Name] {
			diffs = append(diffs, fmt.Sprintf("parameter %s in metadata.json is no flag of the job (a removed flag?)", c.Name))
		}
	}
	if len(diffs) == 0 && !bytes.Equal(committed.encode(), generated.encode()) {
		diffs = append(diffs, "the parameters are in another order or the file is formatted otherwise")
	}
	return diffs
}

func metadataPath(job string) string { return filepath.Join("templates", job, "metadata.json") }

func readMetadata(t *testing.T, job string) (metadata, []byte) {
	t.Helper()
	data, err := os.ReadFile(metadataPath(job))
	if err != nil {
		t.Fatalf("%v (run go test ./runners/dataflow -run TestTemplateMetadata -update to create it)", err)
	}
	var md metadata
	if err := decodeStrict(data, &md); err != nil {
		t.Fatalf("%s: %v", metadataPath(job), err)
	}
	return md, data
}

// updating reports whether -update (Beam's --update) was given.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// jobFlags returns a fresh FlagSet with the job's own flags only.
func jobFlags(tmpl flexTemplate) *flag.FlagSet {
	fs := flag.NewFlagSet(tmpl.job, flag.ContinueOnError)
	tmpl.register(fs)
	return fs
}

// TestTemplateMetadataMatchesFlags fails when a committed metadata.json
// differs from what the job's flags generate: a flag added, removed, or
// its help text or default changed. -update rewrites the files and the
// parameter list in README.md.
func TestTemplateMetadataMatchesFlags(t *testing.T) {
	var readme []generatedTemplate
	for _, tmpl := range flexTemplates {
		t.Run(tmpl.job, func(t *testing.T) {
			generated, out, err := generate(tmpl, jobFlags(tmpl), paramSpecs)
			if err != nil {
				t.Fatal(err)
			}
			readme = append(readme, generatedTemplate{tmpl, generated, out})
			if updating() {
				if err := os.MkdirAll(filepath.Dir(metadataPath(tmpl.job)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(metadataPath(tmpl.job), generated.encode(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			committed, _ := readMetadata(t, tmpl.job)
			if diffs := drift(committed, generated); len(diffs) > 0 {
				t.Errorf("%s is not what the %s job's flags generate:\n  %s\nIf the change is meant, run go test ./runners/dataflow -run TestTemplateMetadata -update and review the diff.",
					metadataPath(tmpl.job), tmpl.job, strings.Join(diffs, "\n  "))
			}
		})
	}
	if len(readme) == len(flexTemplates) {
		checkReadmeParameters(t, readme)
	}
}

// TestTemplateMetadataDriftIsCaught proves that the metadata test fails
// when the flags change: each case changes the streaming job's flags as a
// change to streamjob.RegisterFlags would, and compares what they generate
// with the committed metadata.json.
func TestTemplateMetadataDriftIsCaught(t *testing.T) {
	tmpl := flexTemplates[0]
	committed, _ := readMetadata(t, tmpl.job)
	withSpec := func(name string, spec paramSpec) map[string]paramSpec {
		specs := map[string]paramSpec{name: spec}
		for k, v := range paramSpecs {
			specs[k] = v
		}
		return specs
	}
	for _, tc := range []struct {
		name    string
		edit    func(*flag.FlagSet) *flag.FlagSet
		specs   map[string]paramSpec
		drift   string // in one of the differences
		genFail string // in the generator's error instead
	}{
		{
			name: "finds nothing when the flags are as committed",
			edit: func(fs *flag.FlagSet) *flag.FlagSet { return fs },
		},
		{
			name: "catches a flag added",
			edit: func(fs *flag.FlagSet) *flag.FlagSet {
				fs.Duration("max_delay", 0, "How late a message may come.")
				return fs
			},
			specs: withSpec("max_delay", paramSpec{label: "Max delay", regexes: []string{durationRE}}),
			drift: "parameter max_delay is missing from metadata.json",
		},
		{
			name:    "refuses a flag added without a label and regexes",
			edit:    func(fs *flag.FlagSet) *flag.FlagSet { fs.Int("max_rate", 0, "Messages per second."); return fs },
			genFail: "--max_rate of the streaming job has no entry in paramSpecs",
		},
		{
			name:  "catches a flag removed",
			edit:  func(fs *flag.FlagSet) *flag.FlagSet { return copyFlags(fs, "archive_shards", nil) },
			drift: "parameter archive_shards in metadata.json is no flag of the job",
		},
		{
			name: "catches a help text changed",
			edit: func(fs *flag.FlagSet) *flag.FlagSet {
				return copyFlags(fs, "", map[string]string{"dedup_horizon": "How long an event_id is remembered."})
			},
			drift: "parameter dedup_horizon: helpText",
		},
		{
			name: "catches a default changed",
			edit: func(fs *flag.FlagSet) *flag.FlagSet {
				fs.Lookup("allowed_lateness").DefValue = "5m0s"
				return fs
			},
			drift: "parameter allowed_lateness: helpText",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := tc.specs
			if specs == nil {
				specs = paramSpecs
			}
			generated, _, err := generate(tmpl, tc.edit(jobFlags(tmpl)), specs)
			if tc.genFail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.genFail) {
					t.Fatalf("generate: %v, want an error containing %q", err, tc.genFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			diffs := drift(committed, generated)
			switch {
			case tc.drift == "" && len(diffs) > 0:
				t.Errorf("drift = %q, want none", diffs)
			case tc.drift != "" && !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, tc.drift) }):
				t.Errorf("drift = %q, want one containing %q", diffs, tc.drift)
			}
		})
	}
}

// copyFlags returns a copy of fs without the flag skip and with the
// usages in usage.
func copyFlags(fs *flag.FlagSet, skip string, usage map[string]string) *flag.FlagSet {
	out := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == skip {
			return
		}
		u := f.Usage
		if v, ok := usage[f.Name]; ok {
			u = v
		}
		out.Var(f.Value, f.Name, u)
	})
	return out
}

// TestTemplateMetadataIsValid checks the committed files as Dataflow and
// gcloud read them: the Dataflow API's TemplateMetadata with no unknown
// field at any depth, a name, and each parameter's name, label and help
// text (gcloud dataflow flex-template build refuses a file without them),
// with regexes that are POSIX egrep.
func TestTemplateMetadataIsValid(t *testing.T) {
	for _, tmpl := range flexTemplates {
		t.Run(tmpl.job, func(t *testing.T) {
			_, data := readMetadata(t, tmpl.job)
			var md df.TemplateMetadata
			if err := decodeStrict(data, &md); err != nil {
				t.Fatalf("%s as the Dataflow API's TemplateMetadata: %v", metadataPath(tmpl.job), err)
			}
			if md.Name == "" {
				t.Error("the template has no name")
			}
			for _, p := range md.Parameters {
				if p.Name == "" || p.Label == "" || p.HelpText == "" {
					t.Errorf("parameter %q lacks a name, label or helpText", p.Name)
				}
				for _, re := range p.Regexes {
					if _, err := regexp.CompilePOSIX(re); err != nil {
						t.Errorf("parameter %s: %q is not a POSIX egrep regex: %v", p.Name, re, err)
					}
				}
			}
		})
	}
}

// TestTemplateParameterRegexes checks each parameter's regexes on the
// examples in paramSpecs and on the flag's default, which must pass.
func TestTemplateParameterRegexes(t *testing.T) {
	defaults := map[string]string{}
	for _, tmpl := range flexTemplates {
		jobFlags(tmpl).VisitAll(func(f *flag.Flag) { defaults[f.Name] = f.DefValue })
	}
	for name, spec := range paramSpecs {
		if spec.notParameter != "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			valid, invalid := spec.valid, spec.invalid
			if slices.Contains(spec.regexes, durationRE) {
				valid, invalid = append(valid, durations.valid...), append(invalid, durations.invalid...)
			}
			if d := defaults[name]; d != "" {
				valid = append(valid, d)
			}
			if len(valid) == 0 || len(spec.regexes) == 0 {
				t.Fatalf("%s has no regexes or no valid example", name)
			}
			for _, v := range valid {
				if !matchesAll(spec.regexes, v) {
					t.Errorf("%q is refused by %q", v, spec.regexes)
				}
			}
			for _, v := range invalid {
				if matchesAll(spec.regexes, v) {
					t.Errorf("%q is accepted by %q", v, spec.regexes)
				}
			}
		})
	}
	for _, p := range beamParameters {
		for _, job := range flexTemplates {
			if v := "/template/" + job.job + "-arm64"; !matchesAll(p.Regexes, v) {
				t.Errorf("%s: %q, the Dockerfile's arm64 worker, is refused by %q", p.Name, v, p.Regexes)
			}
		}
	}
}

func matchesAll(regexes []string, v string) bool {
	for _, re := range regexes {
		if !regexp.MustCompilePOSIX(re).MatchString(v) {
			return false
		}
	}
	return true
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid: data after the JSON value")
	}
	return nil
}

// generatedTemplate is a template as the README lists it.
type generatedTemplate struct {
	flexTemplate
	md  metadata
	out []excluded
}

const (
	readmePath        = "README.md"
	readmeParamsStart = "<!-- template parameters: generated by go test -update, do not edit -->"
	readmeParamsEnd   = "<!-- end of template parameters -->"
)

// readmeParameters is the README's list of each template's parameters.
func readmeParameters(templates []generatedTemplate) string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, g := range templates {
		fmt.Fprintf(&b, "\n**%s** (`templates/%s/metadata.json`)\n\n", g.name, g.job)
		b.WriteString("| parameter | required | what (the flag's help) | checked against |\n| --- | --- | --- | --- |\n")
		for _, p := range g.md.Parameters {
			required := "yes"
			if p.IsOptional {
				required = ""
			}
			var res []string
			for _, re := range p.Regexes {
				res = append(res, "`"+cell(re)+"`")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, required, cell(p.HelpText), strings.Join(res, " "))
		}
		if len(g.out) > 0 {
			b.WriteString("\nFlags of the job that are no parameters of its template:\n\n")
			for _, o := range g.out {
				fmt.Fprintf(&b, "* `--%s`: %s.\n", o.name, o.reason)
			}
		}
	}
	return b.String()
}

// checkReadmeParameters fails when README.md's list of the templates'
// parameters is not what the flags generate; -update rewrites it.
func checkReadmeParameters(t *testing.T, templates []generatedTemplate) {
	t.Helper()
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start, end := strings.Index(text, readmeParamsStart), strings.Index(text, readmeParamsEnd)
	if start < 0 || end < start {
		t.Fatalf("%s has no %q … %q section", readmePath, readmeParamsStart, readmeParamsEnd)
	}
	start += len(readmeParamsStart)
	want := readmeParameters(templates) + "\n"
	if updating() && text[start:end] != want {
		text = text[:start] + want + text[end:]
		if err := os.WriteFile(readmePath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if text[start:end] != want {
		t.Errorf("the template parameters in %s are not what the flags generate; run go test ./runners/dataflow -run TestTemplateMetadata -update and review the diff", readmePath)
	}
}

// TestDockerfileBuildsWhatTheTemplatesName checks the image against what
// the templates, launch.sh and the commands expect of it: Google's Go
// launcher base image, FLEX_TEMPLATE_GO_BINARY at /template/$JOB, static
// builds (so that the commands name themselves the worker binary) and the
// arm64 worker at the path worker_binary takes.
func TestDockerfileBuildsWhatTheTemplatesName(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(data)
	for _, want := range []string{
		"ARG LAUNCHER_BASE=gcr.io/dataflow-templates-base/go-template-launcher-base:",
		"FROM ${LAUNCHER_BASE}",
		"ENV FLEX_TEMPLATE_GO_BINARY=/template/${JOB}",
		`CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -o "/out/$JOB" "./pipelines/$JOB"`,
		`CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -buildvcs=false -o "/out/$JOB-arm64" "./pipelines/$JOB"`,
		"COPY --from=build /out/ /template/",
		`ENTRYPOINT ["/opt/google/dataflow/go_template_launcher"]`,
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile has no %q", want)
		}
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(mustRead(t, filepath.Join("..", "..", "go.mod")))
	if goVersion == nil || !strings.Contains(dockerfile, "FROM golang:"+goVersion[1]+" AS build") {
		t.Errorf("the Dockerfile does not build with the Go of go.mod (%v)", goVersion)
	}
	build := mustRead(t, "cloudbuild.yaml")
	for _, want := range []string{"--file=runners/dataflow/Dockerfile", "--build-arg=JOB=${_JOB}", "--build-arg=WITH_ARM64=${_WITH_ARM64}"} {
		if !strings.Contains(build, want) {
			t.Errorf("cloudbuild.yaml has no %q", want)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
