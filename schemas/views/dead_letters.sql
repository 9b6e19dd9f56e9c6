-- view: dead_letters
-- Dead letters of both layers in readable form: why each record failed,
-- where, and a text preview of its payload. A bad record the stream saw and
-- the batch layer later re-read appears once per layer. A message Pub/Sub
-- delivered again after a crash is dead-lettered again: count
-- DISTINCT record_key to count each bad record once. The raw bytes are in
-- dead_letter.payload. Filter on failed_at to scan only the days you need.
-- replay_status says whether a replay (pipelines/replay) brought the
-- record back; open dead letters are the ones still to fix.
--
-- columns from dead_letter: failed_at
-- column received_at TIMESTAMP: When the record arrived: its Pub/Sub
--   publish time when known, otherwise failed_at.
-- columns from dead_letter: layer, stage, reason, error
-- column record_key STRING: Identifies the bad record within its layer: the
--   layer and the Pub/Sub message_id, or the lake line (source_uri) when
--   there is no message id, or a hash of the payload when there is
--   neither. Rows of a record dead-lettered more than once share it.
-- column payload_bytes INT64: Size of the stored payload in bytes.
-- column payload_preview STRING: The first 1024 bytes of the payload as
--   text: bytes that are not valid UTF-8 and control characters other than
--   tab, line feed and carriage return are shown as U+FFFD.
-- column payload_truncated BOOL: Whether the payload is longer than the
--   preview.
-- columns from dead_letter: source_uri, message_id, publish_time
-- column attributes STRING: Pub/Sub message attributes as JSON text; NULL
--   when there were none.
-- column dead_letter_id STRING: Identifies this dead letter for replays:
--   the hex SHA-256 of its layer, stage, reason, source_uri, message_id and
--   payload. failed_at is not part of it: a record dead-lettered again for
--   the same reason keeps its id. dead_letter_replays rows carry it.
-- column replay_status STRING: open (never replayed), replayed (a replay
--   found that it passes now and wrote it to the lake, for the batch run of
--   its day), or replayed_still_failing (replayed, and it still fails: see
--   dead_letter_replays for the error of each replay).
-- column last_replayed_at TIMESTAMP: When the latest replay of this dead
--   letter ran; NULL when open.
SELECT
  d.failed_at,
  COALESCE(d.publish_time, d.failed_at) AS received_at,
  d.layer,
  d.stage,
  d.reason,
  d.error,
  CONCAT(d.layer, ':', COALESCE(d.message_id, d.source_uri, TO_HEX(SHA256(d.payload)))) AS record_key,
  LENGTH(d.payload) AS payload_bytes,
  REGEXP_REPLACE(
    SAFE_CONVERT_BYTES_TO_STRING(SUBSTR(d.payload, 1, 1024)),
    r'[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]', '\uFFFD'
  ) AS payload_preview,
  LENGTH(d.payload) > 1024 AS payload_truncated,
  d.source_uri,
  d.message_id,
  d.publish_time,
  -- TO_JSON_STRING(NULL) is the text null; keep SQL NULL.
  IF(d.attributes IS NULL, NULL, TO_JSON_STRING(d.attributes)) AS attributes,
  d.dead_letter_id,
  CASE
    WHEN r.dead_letter_id IS NULL THEN 'open'
    WHEN r.replayed THEN 'replayed'
    ELSE 'replayed_still_failing'
  END AS replay_status,
  r.last_replayed_at
-- The id is computed per row of the selected partitions only: a filter on
-- failed_at passes into this subquery and prunes dead_letter.
FROM (
  SELECT
    dl.*,
    TO_HEX(SHA256(CONCAT(dl.layer, '|', dl.stage, '|', dl.reason, '|', COALESCE(dl.source_uri, ''), '|', COALESCE(dl.message_id, ''), '|', TO_HEX(SHA256(COALESCE(dl.payload, b'')))))) AS dead_letter_id
  FROM `{project}.{dataset}.dead_letter` AS dl
) AS d
LEFT JOIN (
  SELECT
    dead_letter_id,
    LOGICAL_OR(outcome = 'replayed') AS replayed,
    MAX(replayed_at) AS last_replayed_at
  FROM `{project}.{dataset}.dead_letter_replays`
  GROUP BY dead_letter_id
) AS r
ON r.dead_letter_id = d.dead_letter_id
