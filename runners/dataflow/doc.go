// Package dataflow is how Railyard's jobs run on Google Cloud Dataflow:
// the streaming job from a Flex Template (Dockerfile, templates/streaming/
// metadata.json), the batch job as a Cloud Run job from the same kind of
// image, both launched by launch.sh, which README.md explains step by
// step; monitoring/ holds the alert policies.
//
// Its tests run offline. They translate both jobs for Dataflow with the
// Beam Go SDK's --dry_run, which prints the Dataflow job instead of
// submitting it, in this process and as the commands:
//
//	go run ./pipelines/batch --runner=dataflow --dry_run --project=P --region=R \
//	    --staging_location=gs://BUCKET/staging --temp_location=gs://BUCKET/tmp \
//	    --lake=gs://BUCKET --from=YYYY-MM-DD --to=YYYY-MM-DD
//	go run ./pipelines/streaming --runner=dataflow --dry_run --project=P --region=R \
//	    --staging_location=gs://BUCKET/staging --temp_location=gs://BUCKET/tmp \
//	    --subscription=projects/P/subscriptions/S --lake=gs://BUCKET
//
// They also check the templates' metadata.json against the jobs' flags
// (go test ./runners/dataflow -run TestTemplateMetadata -update rewrites
// it), the Dockerfile against the templates, and launch.sh against fake
// gcloud and bq commands.
package dataflow
