#!/usr/bin/env bash
# Launch Railyard on Google Cloud Dataflow. README.md beside this file
# explains every step; run the steps in this order:
#
#   runners/dataflow/launch.sh setup             # APIs, buckets, Pub/Sub, registry, service accounts, dataset
#   runners/dataflow/launch.sh build             # images on Cloud Build, the streaming Flex Template, the batch Cloud Run job
#   runners/dataflow/launch.sh start-streaming   # the streaming job (speed layer), from its Flex Template
#   runners/dataflow/launch.sh run-batch 2026-11-01 2026-11-01   # the batch job (batch layer) for event days
#   runners/dataflow/launch.sh update-streaming  # replace the running streaming job with a new build, keeping its state
#   runners/dataflow/launch.sh drain-streaming   # stop it: stop reading, finish what it has read
#
# Every step can run again: what exists is left as it is. Settings come
# from the environment (defaults below); PROJECT_ID is required. Run it
# from anywhere inside the repository, with gcloud and bq logged in as a
# user who may create these resources (README.md, "Who runs this").
set -euo pipefail

: "${PROJECT_ID:?set PROJECT_ID to the Google Cloud project}"
REGION="${REGION:-us-central1}"
BQ_LOCATION="${BQ_LOCATION:-US}"
DATASET="${DATASET:-railyard}"
LAKE_BUCKET="${LAKE_BUCKET:-${PROJECT_ID}-railyard-lake}"
DATAFLOW_BUCKET="${DATAFLOW_BUCKET:-${PROJECT_ID}-railyard-dataflow}"
TOPIC_ID="${TOPIC_ID:-railyard-events}"
SUBSCRIPTION_ID="${SUBSCRIPTION_ID:-railyard-events}"
REPOSITORY="${REPOSITORY:-railyard}"
WORKER_SA_NAME="${WORKER_SA_NAME:-railyard-worker}"
BATCH_SA_NAME="${BATCH_SA_NAME:-railyard-batch}"
BATCH_WORKER_SA_NAME="${BATCH_WORKER_SA_NAME:-railyard-batch-worker}"
JOB_NAME_PREFIX="${JOB_NAME_PREFIX:-railyard-}"
STREAMING_JOB_NAME="${STREAMING_JOB_NAME:-${JOB_NAME_PREFIX}streaming}"
BATCH_RUN_JOB="${BATCH_RUN_JOB:-${JOB_NAME_PREFIX}batch}"
TAG="${TAG:-$(git rev-parse --short HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}"
WITH_ARM64="${WITH_ARM64:-false}"
WORKER_MACHINE_TYPE="${WORKER_MACHINE_TYPE:-}"
MAX_WORKERS="${MAX_WORKERS:-}"
TRANSFORM_NAME_MAPPINGS="${TRANSFORM_NAME_MAPPINGS:-}"

export CLOUDSDK_CORE_PROJECT="$PROJECT_ID" CLOUDSDK_CORE_DISABLE_PROMPTS=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO_ROOT/runners/dataflow"
WORKER_SA="${WORKER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
BATCH_SA="${BATCH_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
BATCH_WORKER_SA="${BATCH_WORKER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
REGISTRY="${REGION}-docker.pkg.dev/${PROJECT_ID}/${REPOSITORY}"
STREAMING_IMAGE="${REGISTRY}/railyard-streaming:${TAG}"
BATCH_IMAGE="${REGISTRY}/railyard-batch:${TAG}"
STREAMING_TEMPLATE="gs://${DATAFLOW_BUCKET}/templates/railyard-streaming.json"
SUBSCRIPTION="projects/${PROJECT_ID}/subscriptions/${SUBSCRIPTION_ID}"

say() { printf '\n== %s\n' "$*"; }

# --- setup -----------------------------------------------------------------

enable_apis() {
	say "1. Enable the APIs"
	gcloud services enable \
		dataflow.googleapis.com compute.googleapis.com logging.googleapis.com monitoring.googleapis.com \
		pubsub.googleapis.com bigquery.googleapis.com storage.googleapis.com \
		artifactregistry.googleapis.com cloudbuild.googleapis.com run.googleapis.com
}

create_buckets() {
	say "2. Buckets: the lake (gs://$LAKE_BUCKET) and Dataflow's staging and temp files (gs://$DATAFLOW_BUCKET)"
	local bucket
	for bucket in "$LAKE_BUCKET" "$DATAFLOW_BUCKET"; do
		if gcloud storage buckets describe "gs://$bucket" --format='value(name)' >/dev/null 2>&1; then
			echo "gs://$bucket exists"
		elif [[ $bucket == "$DATAFLOW_BUCKET" ]]; then
			# Staged binaries and temp files are rewritten on every launch:
			# soft delete would keep (and bill) every old copy for a week.
			gcloud storage buckets create "gs://$bucket" --location="$REGION" \
				--uniform-bucket-level-access --public-access-prevention --soft-delete-duration=0
		else
			# The lake is the truth: Object Versioning keeps a deleted or
			# overwritten object as a noncurrent version for 30 days
			# (lake-lifecycle.json), so a mistaken delete can be undone.
			gcloud storage buckets create "gs://$bucket" --location="$REGION" \
				--uniform-bucket-level-access --public-access-prevention
		fi
	done
	gcloud storage buckets update "gs://$LAKE_BUCKET" --versioning --lifecycle-file="$HERE/lake-lifecycle.json"
}

create_pubsub() {
	say "3. Pub/Sub: topic $TOPIC_ID and subscription $SUBSCRIPTION_ID (ack deadline 600 s, 7 days of messages kept)"
	gcloud pubsub topics describe "$TOPIC_ID" >/dev/null 2>&1 || gcloud pubsub topics create "$TOPIC_ID"
	gcloud pubsub subscriptions describe "$SUBSCRIPTION_ID" >/dev/null 2>&1 ||
		gcloud pubsub subscriptions create "$SUBSCRIPTION_ID" --topic="$TOPIC_ID" \
			--ack-deadline=600 --message-retention-duration=7d --retain-acked-messages
}

create_registry() {
	say "4. Artifact Registry: Docker repository $REPOSITORY in $REGION"
	gcloud artifacts repositories describe "$REPOSITORY" --location="$REGION" >/dev/null 2>&1 ||
		gcloud artifacts repositories create "$REPOSITORY" --repository-format=docker --location="$REGION" \
			--description="Railyard's Flex Template images"
}

create_dataset() {
	say "5. BigQuery dataset $PROJECT_ID:$DATASET in $BQ_LOCATION (the jobs create its tables and views)"
	bq --project_id="$PROJECT_ID" show --dataset "$PROJECT_ID:$DATASET" >/dev/null 2>&1 ||
		bq --project_id="$PROJECT_ID" --location="$BQ_LOCATION" mk --dataset \
			--description="Railyard: events, metrics, sessions and dead letters; see the views" "$PROJECT_ID:$DATASET"
}

grant_project() { # MEMBER ROLE
	gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="$1" --role="$2" --condition=None --format=none
}

grant_dataset() { # MEMBER ROLE: a role on the dataset only, with BigQuery's GRANT statement
	bq --project_id="$PROJECT_ID" --location="$BQ_LOCATION" query --nouse_legacy_sql --quiet \
		"GRANT \`$2\` ON SCHEMA \`$PROJECT_ID.$DATASET\` TO \"$1\"" >/dev/null
}

create_service_accounts() {
	say "6. Service accounts and their roles (README.md, \"Service accounts\")"
	local name
	for name in "$WORKER_SA_NAME" "$BATCH_WORKER_SA_NAME" "$BATCH_SA_NAME"; do
		gcloud iam service-accounts describe "${name}@${PROJECT_ID}.iam.gserviceaccount.com" >/dev/null 2>&1 ||
			gcloud iam service-accounts create "$name" --display-name="Railyard ${name#railyard-}"
	done
	local worker="serviceAccount:$WORKER_SA" batchWorker="serviceAccount:$BATCH_WORKER_SA" batch="serviceAccount:$BATCH_SA"

	# The streaming worker: Dataflow's workers of the streaming job and its
	# Flex Template launcher. On the lake it may create objects and read
	# them, never overwrite or delete one.
	grant_project "$worker" roles/dataflow.worker
	grant_project "$worker" roles/bigquery.jobUser
	grant_dataset "$worker" roles/bigquery.dataEditor
	gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION_ID" --member="$worker" --role=roles/pubsub.subscriber --format=none
	gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION_ID" --member="$worker" --role=roles/pubsub.viewer --format=none
	gcloud storage buckets add-iam-policy-binding "gs://$LAKE_BUCKET" --member="$worker" --role=roles/storage.objectCreator --format=none
	gcloud storage buckets add-iam-policy-binding "gs://$LAKE_BUCKET" --member="$worker" --role=roles/storage.objectViewer --format=none
	gcloud storage buckets add-iam-policy-binding "gs://$DATAFLOW_BUCKET" --member="$worker" --role=roles/storage.objectAdmin --format=none
	gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" --location="$REGION" \
		--member="$worker" --role=roles/artifactregistry.reader --format=none

	# The batch worker: Dataflow's workers of the batch job. It only reads
	# the lake.
	grant_project "$batchWorker" roles/dataflow.worker
	grant_project "$batchWorker" roles/bigquery.jobUser
	grant_dataset "$batchWorker" roles/bigquery.dataEditor
	gcloud storage buckets add-iam-policy-binding "gs://$LAKE_BUCKET" --member="$batchWorker" --role=roles/storage.objectViewer --format=none
	gcloud storage buckets add-iam-policy-binding "gs://$DATAFLOW_BUCKET" --member="$batchWorker" --role=roles/storage.objectAdmin --format=none

	# The batch launcher: the Cloud Run job that submits a batch run, waits
	# for it and records its days.
	grant_project "$batch" roles/dataflow.developer
	grant_project "$batch" roles/bigquery.jobUser
	grant_dataset "$batch" roles/bigquery.dataEditor
	gcloud iam service-accounts add-iam-policy-binding "$BATCH_WORKER_SA" --member="$batch" --role=roles/iam.serviceAccountUser --format=none
	gcloud storage buckets add-iam-policy-binding "gs://$DATAFLOW_BUCKET" --member="$batch" --role=roles/storage.objectAdmin --format=none
}

# --- build -------------------------------------------------------------------

build_image() { # JOB IMAGE
	say "Build $2 on Cloud Build (pipelines/$1, linux/amd64$([[ $WITH_ARM64 == true ]] && echo ' and linux/arm64'))"
	gcloud builds submit "$REPO_ROOT" --region="$REGION" \
		--config="$HERE/cloudbuild.yaml" --ignore-file="$HERE/gcloudignore" \
		--substitutions="_JOB=$1,_IMAGE=$2,_WITH_ARM64=$WITH_ARM64"
}

build() {
	build_image streaming "$STREAMING_IMAGE"
	say "The streaming Flex Template: $STREAMING_TEMPLATE"
	gcloud dataflow flex-template build "$STREAMING_TEMPLATE" \
		--image="$STREAMING_IMAGE" --sdk-language=GO \
		--metadata-file="$HERE/templates/streaming/metadata.json"

	build_image batch "$BATCH_IMAGE"
	say "The batch job as a Cloud Run job: $BATCH_RUN_JOB (its binary waits for each run and records its days)"
	gcloud run jobs deploy "$BATCH_RUN_JOB" --region="$REGION" --image="$BATCH_IMAGE" \
		--command=/template/batch --service-account="$BATCH_SA" \
		--tasks=1 --max-retries=1 --task-timeout=6h --cpu=1 --memory=2Gi
}

# --- run ---------------------------------------------------------------------

# streaming_params are the streaming template's parameters (its
# metadata.json lists them all, with their defaults).
streaming_params() {
	local params=(
		"subscription=$SUBSCRIPTION"
		"lake=gs://$LAKE_BUCKET"
		"dataset=$DATASET"
	)
	if [[ $WORKER_MACHINE_TYPE == t2a-* ]]; then
		params+=("worker_binary=/template/streaming-arm64")
	fi
	if (($# > 0)); then params+=("$@"); fi
	local IFS=,
	echo "${params[*]}"
}

flex_run() { # more gcloud flags…
	local flags=(
		--region="$REGION"
		--template-file-gcs-location="$STREAMING_TEMPLATE"
		--service-account-email="$WORKER_SA"
		--staging-location="gs://$DATAFLOW_BUCKET/staging" --temp-location="gs://$DATAFLOW_BUCKET/temp"
	)
	if [[ -n $WORKER_MACHINE_TYPE ]]; then flags+=(--worker-machine-type="$WORKER_MACHINE_TYPE"); fi
	if [[ -n $MAX_WORKERS ]]; then flags+=(--max-workers="$MAX_WORKERS"); fi
	gcloud dataflow flex-template run "$STREAMING_JOB_NAME" "${flags[@]}" "$@"
}

running_streaming_job() {
	gcloud dataflow jobs list --region="$REGION" --status=active \
		--filter="name=$STREAMING_JOB_NAME" --format='value(id)' | head -n 1
}

start_streaming() {
	say "Start the streaming job $STREAMING_JOB_NAME"
	if [[ -n $(running_streaming_job) ]]; then
		echo "$STREAMING_JOB_NAME is running already: update-streaming replaces it" >&2
		exit 1
	fi
	flex_run --parameters="$(streaming_params)"
}

update_streaming() {
	say "Update the streaming job $STREAMING_JOB_NAME in place (state kept; recover=false)"
	if [[ -z $(running_streaming_job) ]]; then
		echo "no running job named $STREAMING_JOB_NAME to update: start-streaming starts one" >&2
		exit 1
	fi
	local flags=(--update --parameters="$(streaming_params recover=false)")
	if [[ -n $TRANSFORM_NAME_MAPPINGS ]]; then flags+=(--transform-name-mappings="$TRANSFORM_NAME_MAPPINGS"); fi
	flex_run "${flags[@]}"
}

drain_streaming() {
	say "Drain the streaming job $STREAMING_JOB_NAME"
	local id
	id=$(running_streaming_job)
	if [[ -z $id ]]; then
		echo "no running job named $STREAMING_JOB_NAME" >&2
		exit 1
	fi
	gcloud dataflow jobs drain "$id" --region="$REGION"
	echo "Draining $id: it stops pulling, finishes its windows and writes them, then ends (gcloud dataflow jobs describe $id --region=$REGION)."
}

run_batch() { # FROM TO
	local from="${1:?give the first event day, YYYY-MM-DD}" to="${2:?give the last event day, YYYY-MM-DD}"
	local name
	name="${JOB_NAME_PREFIX}batch-${from}-${to}-$(date -u +%H%M%S)"
	say "Run the batch job over $from..$to as Dataflow job $name (Cloud Run job $BATCH_RUN_JOB waits for it)"
	local args=(
		--runner=dataflow --project="$PROJECT_ID" --region="$REGION"
		--staging_location="gs://$DATAFLOW_BUCKET/staging" --temp_location="gs://$DATAFLOW_BUCKET/temp"
		--service_account_email="$BATCH_WORKER_SA" --job_name="$name"
		--lake="gs://$LAKE_BUCKET" --from="$from" --to="$to" --dataset="$DATASET"
	)
	if [[ -n $WORKER_MACHINE_TYPE ]]; then args+=(--worker_machine_type="$WORKER_MACHINE_TYPE"); fi
	if [[ $WORKER_MACHINE_TYPE == t2a-* ]]; then args+=(--worker_binary=/template/batch-arm64); fi
	if [[ -n $MAX_WORKERS ]]; then args+=(--max_num_workers="$MAX_WORKERS"); fi
	local IFS=,
	gcloud run jobs execute "$BATCH_RUN_JOB" --region="$REGION" --wait --args="${args[*]}"
}

case "${1:-}" in
setup)
	enable_apis
	create_buckets
	create_pubsub
	create_registry
	create_dataset
	create_service_accounts
	;;
build) build ;;
start-streaming) start_streaming ;;
update-streaming) update_streaming ;;
drain-streaming) drain_streaming ;;
run-batch)
	shift
	run_batch "$@"
	;;
*)
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
