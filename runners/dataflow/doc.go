// Package dataflow is how Railyard's jobs run on Google Cloud Dataflow.
//
// Its tests translate the batch job for Dataflow offline, with the Beam
// Go SDK's --dry_run, which prints the Dataflow job instead of submitting
// it:
//
//	go run ./pipelines/batch --runner=dataflow --dry_run --project=P --region=R \
//	    --staging_location=gs://BUCKET/staging --temp_location=gs://BUCKET/tmp \
//	    --lake=gs://BUCKET --from=YYYY-MM-DD --to=YYYY-MM-DD
package dataflow
