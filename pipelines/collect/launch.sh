#!/usr/bin/env bash
# Deploy Railyard's collection edge on Cloud Run, in front of the topic the
# streaming job reads. README.md beside this file explains every step; run
# them in this order (after runners/dataflow/launch.sh setup, which creates
# the topic, the registry and enables the APIs):
#
#   pipelines/collect/launch.sh setup    # the edge's service account: publisher (and viewer) on the one topic
#   pipelines/collect/launch.sh build    # the image on Cloud Build
#   pipelines/collect/launch.sh deploy   # the Cloud Run service
#
# Every step can run again. Settings come from the environment (defaults
# below, the same names as runners/dataflow/launch.sh); PROJECT_ID is
# required. AUTH=none (default) keeps the service private behind Cloud Run
# IAM; AUTH=api_key makes it public and reads the keys from the Secret
# Manager secret KEYS_SECRET (lines NAME sha256:HEX SOURCE[,SOURCE...]).
set -euo pipefail

: "${PROJECT_ID:?set PROJECT_ID to the Google Cloud project}"
REGION="${REGION:-us-central1}"
TOPIC_ID="${TOPIC_ID:-railyard-events}"
REPOSITORY="${REPOSITORY:-railyard}"
SERVICE="${SERVICE:-railyard-collect}"
COLLECT_SA_NAME="${COLLECT_SA_NAME:-railyard-collect}"
AUTH="${AUTH:-none}"
KEYS_SECRET="${KEYS_SECRET:-railyard-api-keys}"
ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-}"
MIN_INSTANCES="${MIN_INSTANCES:-1}"
MAX_INSTANCES="${MAX_INSTANCES:-20}"
TAG="${TAG:-$(git rev-parse --short HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}"

export CLOUDSDK_CORE_PROJECT="$PROJECT_ID" CLOUDSDK_CORE_DISABLE_PROMPTS=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO_ROOT/pipelines/collect"
COLLECT_SA="${COLLECT_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
IMAGE="${REGION}-docker.pkg.dev/${PROJECT_ID}/${REPOSITORY}/railyard-collect:${TAG}"
TOPIC="projects/${PROJECT_ID}/topics/${TOPIC_ID}"

say() { printf '\n== %s\n' "$*"; }

setup() {
	say "1. The edge's service account, $COLLECT_SA: publisher and viewer on $TOPIC only"
	gcloud iam service-accounts describe "$COLLECT_SA" --format='value(email)' >/dev/null 2>&1 ||
		gcloud iam service-accounts create "$COLLECT_SA_NAME" --display-name="Railyard collection edge"
	local member="serviceAccount:$COLLECT_SA"
	# Publish, and read the topic's metadata for /readyz: nothing else.
	gcloud pubsub topics add-iam-policy-binding "$TOPIC_ID" --member="$member" --role=roles/pubsub.publisher --format=none
	gcloud pubsub topics add-iam-policy-binding "$TOPIC_ID" --member="$member" --role=roles/pubsub.viewer --format=none
	if [[ $AUTH == api_key ]]; then
		say "   API keys: the edge reads the secret $KEYS_SECRET"
		gcloud secrets describe "$KEYS_SECRET" --format='value(name)' >/dev/null 2>&1 ||
			gcloud secrets create "$KEYS_SECRET" --replication-policy=automatic
		gcloud secrets add-iam-policy-binding "$KEYS_SECRET" --member="$member" --role=roles/secretmanager.secretAccessor --format=none
	fi
}

build() {
	say "2. Build $IMAGE on Cloud Build (pipelines/collect)"
	gcloud builds submit "$REPO_ROOT" --region="$REGION" \
		--config="$HERE/cloudbuild.yaml" --ignore-file="$REPO_ROOT/runners/dataflow/gcloudignore" \
		--substitutions="_IMAGE=$IMAGE"
}

deploy() {
	say "3. Deploy the Cloud Run service $SERVICE (auth $AUTH)"
	local args=(
		--image="$IMAGE" --region="$REGION" --service-account="$COLLECT_SA"
		--port=8080 --concurrency=250 --cpu=1 --memory=512Mi --timeout=60s
		--min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES"
		--no-cpu-throttling --execution-environment=gen2
	)
	# The command's flags, ';'-separated (gcloud's ^;^ prefix below), so
	# that comma-separated origins stay one flag.
	local flags="--topic=$TOPIC;--auth=$AUTH"
	if [[ -n $ALLOWED_ORIGINS ]]; then flags+=";--allowed_origins=$ALLOWED_ORIGINS"; fi
	case "$AUTH" in
	none) args+=(--no-allow-unauthenticated) ;;
	api_key)
		args+=(--allow-unauthenticated --set-secrets="RAILYARD_API_KEYS=${KEYS_SECRET}:latest") ;;
	*) echo "AUTH=$AUTH must be none or api_key" >&2; exit 2 ;;
	esac
	gcloud run deploy "$SERVICE" "${args[@]}" --args="^;^$flags" --labels=app=railyard
	gcloud run services describe "$SERVICE" --region="$REGION" --format='value(status.url)'
}

case "${1:-}" in
setup) setup ;;
build) build ;;
deploy) deploy ;;
*)
	sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
