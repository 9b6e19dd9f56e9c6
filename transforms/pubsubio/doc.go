// Package pubsubio reads Pub/Sub into Railyard's raw Records on any Beam
// runner: Read, a splittable DoFn that pulls with unary Pull, for Prism
// and the portable runners (Flink); ReadNative, Dataflow's own source, for
// Dataflow, which acknowledges by itself; and Ack, which acknowledges what
// Read left to the pipeline. The job picks the read from its runner
// profile.
//
// Beam Go's io/pubsubio runs only on Dataflow (Prism rejects it when the
// job is submitted), hence Read.
//
// # How Read works
//
// Impulse → Shards elements → Reshuffle → the reading splittable DoFn. Its
// restriction is one shard: a pull loop over the whole subscription, with
// no offsets (Pub/Sub hands each message to one puller). Each call of the
// DoFn reads one part of its shard — pulls until a pull comes back empty
// or short, or MaxBundleMessages / MaxBundleDuration are spent — emits
// Records, and returns sdf.ResumeProcessingIn itself: at once when
// messages flowed, after PollInterval when the subscription was idle. The
// SDK turns that into a checkpoint (the tracker's TrySplit(0): the primary
// is done, the residual is the rest of the shard), which is what lets a
// portable runner commit the bundle and schedule the next part.
//
// Acknowledgement: Read never acknowledges. It leases each pulled message
// for AckDeadline (1 minute by default) and emits it with its AckID; the
// worker's lease book renews the lease every half deadline
// until the pipeline acknowledges the message with Ack, once everything it
// must become is durable (archived, written), or until AckExtension (10
// minutes) has passed. A message the pipeline does not get to ack in time
// comes back, and dedup removes it; so do the messages of a worker that
// dies, within AckDeadline. The leases are kept however long the reader
// is not called (a sink waiting out an outage stalls it), and a job that
// ends in the process that read gives back what it still leases with
// ReleaseLeases, so that its successor gets it at once.
//
// Flow control, as the Pub/Sub client's ReceiveSettings: the lease book
// also caps what the process holds pulled and not yet
// acknowledged, over all shards, at MaxOutstandingMessages (200,000) and
// MaxOutstandingBytes (512 MiB), so a backlog enters memory a cap at a
// time. A shard pulls only into room under the cap; one at the cap waits
// up to PollInterval for the pipeline to acknowledge something, then
// checkpoints for a short delay (it never spins). It is not idle for
// StopAfterIdle, and its watermark moves on as an idle shard's: the
// pipeline acknowledges a message once windows of ingest time have
// closed over it, which a watermark held back by the unread backlog
// would never let happen. The leases are renewed in requests of up to
// 2,500 ack ids and 500 KB, eight at a time.
//
// A committed bundle is not yet a durable effect on every runner (see
// Prism in runners/KNOWN_ISSUES.md), hence acknowledgement by the
// pipeline. A part of a shard that fails gives back at once what the
// worker's running parts hold.
//
// Watermark: a manual estimator per shard, set after each part to the
// oldest timestamp among the messages the worker's running parts hold, or,
// when the subscription is idle, to now − IdleWatermarkLag (never later).
// Timestamps are the event time in EventTimeAttribute, else the publish
// time. A shard that ends (StopAfterIdle) sets it to the end of time, and
// once every shard has ended the pipeline drains.
//
// What Prism v2.77.0 does with the reader (where it roots the stage, how
// it parks residuals and takes the watermark, splits, retries and busy
// waits) is in runners/KNOWN_ISSUES.md.
package pubsubio
