package dataflow

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/pipelines/batch/batchjob"
)

// fakeCLI stands in for gcloud and bq: it records each call's arguments
// and succeeds, except that describe and show (does it exist?) fail, so
// that the script creates everything, and dataflow jobs list prints
// $FAKE_RUNNING_JOB.
const fakeCLI = `#!/usr/bin/env bash
{ printf '%s\x1f' "$(basename "$0")" "$@"; printf '\x1e'; } >>"$FAKE_LOG"
case " $* " in
*" describe "* | *" show "*) exit 1 ;;
*" dataflow jobs list "*) [[ -n ${FAKE_RUNNING_JOB:-} ]] && echo "$FAKE_RUNNING_JOB" ;;
esac
exit 0
`

// launch runs launch.sh with args against the fake gcloud and bq, and
// returns the calls they got.
func launch(t *testing.T, env []string, args ...string) [][]string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	for _, name := range []string{"gcloud", "bq"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(fakeCLI), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(t.TempDir(), "calls")
	cmd := exec.CommandContext(t.Context(), bash, append([]string{"launch.sh"}, args...)...)
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_LOG="+log, "PROJECT_ID="+project, "REGION="+region, "TAG=t1")
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("launch.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, rec := range strings.Split(strings.TrimSuffix(string(data), "\x1e"), "\x1e") {
		calls = append(calls, strings.Split(strings.TrimSuffix(rec, "\x1f"), "\x1f"))
	}
	return calls
}

// find returns the calls whose arguments start with prefix.
func find(calls [][]string, prefix ...string) [][]string {
	var out [][]string
	for _, c := range calls {
		if len(c) >= len(prefix) && slices.Equal(c[:len(prefix)], prefix) {
			out = append(out, c)
		}
	}
	return out
}

// flagOf returns the value of --name=value in a call, and whether it is there.
func flagOf(call []string, name string) (string, bool) {
	for _, a := range call {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

func TestLaunchScriptSetup(t *testing.T) {
	calls := launch(t, nil, "setup")
	t.Run("enables the APIs the jobs and the launch use", func(t *testing.T) {
		enable := find(calls, "gcloud", "services", "enable")
		if len(enable) != 1 {
			t.Fatalf("%d gcloud services enable calls, want 1", len(enable))
		}
		for _, api := range []string{"dataflow", "pubsub", "bigquery", "storage", "artifactregistry", "cloudbuild", "monitoring", "run"} {
			if !slices.Contains(enable[0], api+".googleapis.com") {
				t.Errorf("%s.googleapis.com is not enabled", api)
			}
		}
	})
	t.Run("keeps overwritten or deleted lake objects as noncurrent versions for 30 days", func(t *testing.T) {
		var lake []string
		for _, c := range find(calls, "gcloud", "storage", "buckets", "update") {
			if c[4] == "gs://"+project+"-railyard-lake" {
				lake = c
			}
		}
		if _, on := flagOf(lake, "versioning"); !on {
			t.Fatalf("the lake bucket's update %v does not turn on versioning", lake)
		}
		file, _ := flagOf(lake, "lifecycle-file")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lc struct {
			Rule []struct {
				Action    struct{ Type string }
				Condition struct {
					IsLive                  *bool `json:"isLive"`
					DaysSinceNoncurrentTime int   `json:"daysSinceNoncurrentTime"`
				}
			}
		}
		if err := json.Unmarshal(data, &lc); err != nil {
			t.Fatal(err)
		}
		if len(lc.Rule) != 1 || lc.Rule[0].Action.Type != "Delete" || lc.Rule[0].Condition.IsLive == nil || *lc.Rule[0].Condition.IsLive ||
			lc.Rule[0].Condition.DaysSinceNoncurrentTime != 30 {
			t.Errorf("lifecycle %+v, want one rule deleting noncurrent versions (only) 30 days after they became noncurrent", lc)
		}
	})
	t.Run("creates the subscription with a 600 s ack deadline", func(t *testing.T) {
		sub := find(calls, "gcloud", "pubsub", "subscriptions", "create")
		if len(sub) != 1 {
			t.Fatalf("%d subscriptions created, want 1", len(sub))
		}
		if v, _ := flagOf(sub[0], "ack-deadline"); v != "600" {
			t.Errorf("ack deadline %q, want 600", v)
		}
	})
	t.Run("grants each service account the roles README.md lists, where it lists them", func(t *testing.T) {
		worker := "serviceAccount:railyard-worker@" + project + ".iam.gserviceaccount.com"
		batch := "serviceAccount:railyard-batch@" + project + ".iam.gserviceaccount.com"
		batchWorker := "serviceAccount:railyard-batch-worker@" + project + ".iam.gserviceaccount.com"
		want := []string{
			"project " + worker + " roles/dataflow.worker",
			"project " + worker + " roles/bigquery.jobUser",
			"dataset " + worker + " roles/bigquery.dataEditor",
			"subscription " + worker + " roles/pubsub.subscriber",
			"subscription " + worker + " roles/pubsub.viewer",
			"bucket gs://" + project + "-railyard-lake " + worker + " roles/storage.objectCreator",
			"bucket gs://" + project + "-railyard-lake " + worker + " roles/storage.objectViewer",
			"bucket gs://" + project + "-railyard-dataflow " + worker + " roles/storage.objectAdmin",
			"repository " + worker + " roles/artifactregistry.reader",
			"project " + batchWorker + " roles/dataflow.worker",
			"project " + batchWorker + " roles/bigquery.jobUser",
			"dataset " + batchWorker + " roles/bigquery.dataEditor",
			"bucket gs://" + project + "-railyard-lake " + batchWorker + " roles/storage.objectViewer",
			"bucket gs://" + project + "-railyard-dataflow " + batchWorker + " roles/storage.objectAdmin",
			"project " + batch + " roles/dataflow.developer",
			"project " + batch + " roles/bigquery.jobUser",
			"dataset " + batch + " roles/bigquery.dataEditor",
			"service-account " + batch + " roles/iam.serviceAccountUser",
			"bucket gs://" + project + "-railyard-dataflow " + batch + " roles/storage.objectAdmin",
		}
		var got []string
		for _, c := range calls {
			if len(c) < 5 {
				continue
			}
			member, _ := flagOf(c, "member")
			role, _ := flagOf(c, "role")
			switch {
			case slices.Equal(c[:3], []string{"gcloud", "projects", "add-iam-policy-binding"}):
				got = append(got, "project "+member+" "+role)
			case slices.Equal(c[:3], []string{"gcloud", "pubsub", "subscriptions"}) && c[3] == "add-iam-policy-binding":
				got = append(got, "subscription "+member+" "+role)
			case slices.Equal(c[:3], []string{"gcloud", "storage", "buckets"}) && c[3] == "add-iam-policy-binding":
				got = append(got, "bucket "+c[4]+" "+member+" "+role)
			case slices.Equal(c[:3], []string{"gcloud", "artifacts", "repositories"}) && c[3] == "add-iam-policy-binding":
				got = append(got, "repository "+member+" "+role)
			case slices.Equal(c[:3], []string{"gcloud", "iam", "service-accounts"}) && c[3] == "add-iam-policy-binding":
				got = append(got, "service-account "+member+" "+role)
			case c[0] == "bq" && slices.Contains(c, "query"):
				q := c[len(c)-1] // GRANT `role` ON SCHEMA `p.d` TO "member"
				role, rest, _ := strings.Cut(strings.TrimPrefix(q, "GRANT `"), "`")
				_, member, _ := strings.Cut(rest, " TO ")
				got = append(got, "dataset "+strings.Trim(member, `"`)+" "+role)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("grants:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})
}

func TestLaunchScriptBuild(t *testing.T) {
	calls := launch(t, nil, "build")
	builds := find(calls, "gcloud", "builds", "submit")
	if len(builds) != 2 {
		t.Fatalf("%d Cloud Builds, want 2 (one image per job)", len(builds))
	}
	for i, job := range []string{"streaming", "batch"} {
		subs, _ := flagOf(builds[i], "substitutions")
		if !strings.Contains(subs, "_JOB="+job+",") {
			t.Errorf("build %d: substitutions %q, want _JOB=%s", i, subs, job)
		}
	}
	tmpl := find(calls, "gcloud", "dataflow", "flex-template", "build")
	if len(tmpl) != 1 {
		t.Fatalf("%d Flex Templates built, want 1 (streaming; the batch job runs as a Cloud Run job)", len(tmpl))
	}
	if md, _ := flagOf(tmpl[0], "metadata-file"); !strings.HasSuffix(md, "/runners/dataflow/templates/streaming/metadata.json") {
		t.Errorf("streaming template built with metadata %q", md)
	}
	if lang, _ := flagOf(tmpl[0], "sdk-language"); lang != "GO" {
		t.Errorf("sdk language %q, want GO", lang)
	}
	run := find(calls, "gcloud", "run", "jobs", "deploy")
	if len(run) != 1 {
		t.Fatalf("%d Cloud Run jobs deployed, want 1", len(run))
	}
	if cmd, _ := flagOf(run[0], "command"); cmd != "/template/batch" {
		t.Errorf("the Cloud Run job runs %q, want /template/batch, the binary the Dockerfile puts there", cmd)
	}
}

// templateParameters parses --parameters=k=v,… and checks each against
// the committed metadata.json of job: a parameter it lists, with a value
// its regexes accept, and every required parameter given.
func templateParameters(t *testing.T, job string, call []string) map[string]string {
	t.Helper()
	raw, ok := flagOf(call, "parameters")
	if !ok {
		t.Fatalf("no --parameters in %q", call)
	}
	params := map[string]string{}
	for _, kv := range strings.Split(raw, ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = v
	}
	md, _ := readMetadata(t, job)
	for k, v := range params {
		i := slices.IndexFunc(md.Parameters, func(p parameter) bool { return p.Name == k })
		if i < 0 {
			t.Errorf("parameter %s is not in the %s template's metadata.json: Dataflow refuses the launch", k, job)
			continue
		}
		if !matchesAll(md.Parameters[i].Regexes, v) {
			t.Errorf("parameter %s=%q is refused by its regexes %q", k, v, md.Parameters[i].Regexes)
		}
	}
	for _, p := range md.Parameters {
		if _, ok := params[p.Name]; !ok && !p.IsOptional {
			t.Errorf("required parameter %s is not given", p.Name)
		}
	}
	return params
}

func TestLaunchScriptStreaming(t *testing.T) {
	t.Run("starts the job under the name the alert policies select", func(t *testing.T) {
		run := find(launch(t, nil, "start-streaming"), "gcloud", "dataflow", "flex-template", "run")
		if len(run) != 1 || run[0][4] != streamingJob {
			t.Fatalf("flex-template runs %q, want one of job %s", run, streamingJob)
		}
		templateParameters(t, "streaming", run[0])
		if _, ok := flagOf(run[0], "update"); ok {
			t.Error("a first start is an --update")
		}
	})
	t.Run("updates the running job in place without recovering", func(t *testing.T) {
		run := find(launch(t, []string{"FAKE_RUNNING_JOB=2026-11-01_00_00_00-1", "TRANSFORM_NAME_MAPPINGS=OldStep=NewStep"}, "update-streaming"),
			"gcloud", "dataflow", "flex-template", "run")
		if len(run) != 1 || run[0][4] != streamingJob {
			t.Fatalf("flex-template runs %q, want one of job %s", run, streamingJob)
		}
		if _, ok := flagOf(run[0], "update"); !ok {
			t.Error("no --update")
		}
		if m, _ := flagOf(run[0], "transform-name-mappings"); m != "OldStep=NewStep" {
			t.Errorf("--transform-name-mappings=%q, want OldStep=NewStep", m)
		}
		if p := templateParameters(t, "streaming", run[0]); p["recover"] != "false" {
			t.Errorf("recover=%q, want false: the update keeps the job's state", p["recover"])
		}
	})
	t.Run("runs Tau T2A workers on the arm64 binary", func(t *testing.T) {
		run := find(launch(t, []string{"WORKER_MACHINE_TYPE=t2a-standard-4"}, "start-streaming"), "gcloud", "dataflow", "flex-template", "run")
		if len(run) != 1 {
			t.Fatalf("%d flex-template runs", len(run))
		}
		if p := templateParameters(t, "streaming", run[0]); p["worker_binary"] != "/template/streaming-arm64" {
			t.Errorf("worker_binary=%q, want /template/streaming-arm64", p["worker_binary"])
		}
		if m, _ := flagOf(run[0], "worker-machine-type"); m != "t2a-standard-4" {
			t.Errorf("--worker-machine-type=%q", m)
		}
	})
	t.Run("drains the running job", func(t *testing.T) {
		drain := find(launch(t, []string{"FAKE_RUNNING_JOB=2026-11-01_00_00_00-1"}, "drain-streaming"), "gcloud", "dataflow", "jobs", "drain")
		if len(drain) != 1 || drain[0][4] != "2026-11-01_00_00_00-1" {
			t.Errorf("drains %q, want the running job", drain)
		}
	})
}

// TestLaunchScriptBatch checks that the batch command accepts the command
// line the Cloud Run job runs it with: every flag is the batch command's
// or Beam's, and the configuration is valid.
func TestLaunchScriptBatch(t *testing.T) {
	runs := find(launch(t, nil, "run-batch", from, to), "gcloud", "run", "jobs", "execute")
	if len(runs) != 1 {
		t.Fatalf("%d Cloud Run job executions, want 1", len(runs))
	}
	raw, _ := flagOf(runs[0], "args")
	args := strings.Split(raw, ",")
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	buildConfig := batchjob.RegisterFlags(fs)
	var own []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case fs.Lookup(name) != nil:
			own = append(own, a)
		case flag.Lookup(name) == nil:
			t.Errorf("%s is neither a flag of the batch command nor Beam's", a)
		}
	}
	if err := fs.Parse(own); err != nil {
		t.Fatal(err)
	}
	cfg := buildConfig()
	cfg.Project = project
	if err := cfg.Validate(); err != nil {
		t.Errorf("the batch job refuses the Cloud Run job's arguments: %v", err)
	}
	if sa, _ := flagOf(args, "service_account_email"); sa != "railyard-batch-worker@"+project+".iam.gserviceaccount.com" {
		t.Errorf("--service_account_email=%q, want the batch worker, which only reads the lake", sa)
	}
	if name, _ := flagOf(args, "job_name"); !strings.HasPrefix(name, "railyard-batch-"+from+"-"+to+"-") {
		t.Errorf("--job_name=%q, want railyard-batch-%s-%s-…, starting with the alert policies' prefix", name, from, to)
	}
	if r, _ := flagOf(args, "runner"); r != "dataflow" {
		t.Errorf("--runner=%q", r)
	}
	if _, ok := flagOf(runs[0], "wait"); !ok {
		t.Error("the execution does not --wait for the batch run")
	}
}
