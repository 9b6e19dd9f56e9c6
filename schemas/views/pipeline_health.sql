-- view: pipeline_health
-- What an alert watches: one row per layer (batch, speed) and hour of the
-- last 48 hours, with the rows each layer wrote for records received in
-- that hour, its dead letters and dead-letter rate, its freshness, and for
-- the batch layer its watermark and lag. Reads the last 7 days of event
-- time and of dead letters only; freshness ignores event times in the
-- future (a producer's clock cannot hide a stalled pipeline).
--
-- column layer STRING: The layer: batch or speed.
-- column hour_start TIMESTAMP: Start of the hour (UTC) in which the records
--   counted were received (Pub/Sub publish time, or file creation time).
-- column event_rows INT64: Rows the layer wrote to its events table for records
--   received in the hour (speed rows before deduplication).
-- column dead_letters INT64: Bad records of the layer received in the hour,
--   each once (a message dead-lettered again after a redelivery counts
--   once; see record_key in dead_letters).
-- column dead_letter_rate FLOAT64: dead_letters / (event_rows + dead_letters);
--   NULL when the layer received nothing in the hour.
-- column newest_event_time TIMESTAMP: The newest event time (not in the
--   future) in the layer's events table over the last 7 days; NULL if none.
-- column newest_ingest_time TIMESTAMP: The newest ingest time in the
--   layer's events table over the last 7 days of event time; NULL if none.
-- column event_freshness_seconds INT64: Seconds from newest_event_time to
--   checked_at; NULL when there is no event in the last 7 days (alert on
--   NULL as on a large value).
-- column ingest_freshness_seconds INT64: Seconds from newest_ingest_time to
--   checked_at; NULL when there is no event in the last 7 days.
-- column batch_complete_until TIMESTAMP: For the batch layer, the earliest
--   complete_until over the batch tables (batch_watermark); NULL for the
--   speed layer and before the first batch run.
-- column batch_lag_seconds INT64: For the batch layer, seconds from
--   batch_complete_until to checked_at; NULL for the speed layer.
-- column batch_gap_days INT64: For the batch layer, event days between the
--   first and the last covered day of events_batch that no run has covered
--   (the views serve them from the speed layer); NULL for the speed layer.
-- column batch_last_finished_at TIMESTAMP: For the batch layer, when the
--   latest recorded batch run finished; NULL for the speed layer.
-- column checked_at TIMESTAMP: When the view was queried
--   (CURRENT_TIMESTAMP()).
WITH
  hours AS (
    SELECT layer, hour_start
    FROM UNNEST(['batch', 'speed']) AS layer
    CROSS JOIN UNNEST(GENERATE_TIMESTAMP_ARRAY(
      TIMESTAMP_TRUNC(TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 47 HOUR), HOUR),
      TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), HOUR),
      INTERVAL 1 HOUR)) AS hour_start
  ),
  recent_events AS (
    SELECT 'batch' AS layer, b.event_time, b.ingest_time
    FROM `{project}.{dataset}.events_batch` AS b
    WHERE b.event_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)
    UNION ALL
    SELECT 'speed' AS layer, s.event_time, s.ingest_time
    FROM `{project}.{dataset}.events_speed` AS s
    WHERE s.event_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)
  ),
  freshness AS (
    SELECT
      layer,
      MAX(IF(event_time <= CURRENT_TIMESTAMP(), event_time, NULL)) AS newest_event_time,
      MAX(ingest_time) AS newest_ingest_time
    FROM recent_events
    GROUP BY layer
  ),
  received AS (
    SELECT layer, TIMESTAMP_TRUNC(ingest_time, HOUR) AS hour_start, COUNT(*) AS event_rows
    FROM recent_events
    GROUP BY layer, hour_start
  ),
  dead AS (
    SELECT
      d.layer, TIMESTAMP_TRUNC(COALESCE(d.publish_time, d.failed_at), HOUR) AS hour_start,
      COUNT(DISTINCT CONCAT(d.layer, ':', COALESCE(d.message_id, d.source_uri, TO_HEX(SHA256(d.payload))))) AS dead_letters
    FROM `{project}.{dataset}.dead_letter` AS d
    WHERE d.failed_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)
    GROUP BY layer, hour_start
  ),
  watermark AS (
    SELECT MIN(w.complete_until) AS complete_until
    FROM `{project}.{dataset}.batch_watermark` AS w
    WHERE w.table_name IN ('events_batch', 'metrics_minute_batch', 'sessions_batch')
  ),
  coverage AS (
    SELECT
      TIMESTAMP_DIFF(MAX(c.day_start), MIN(c.day_start), DAY) + 1 - COUNT(*) AS gap_days,
      MAX(c.finished_at) AS last_finished_at
    FROM `{project}.{dataset}.batch_coverage` AS c
    WHERE c.table_name = 'events_batch'
  )
SELECT
  h.layer,
  h.hour_start,
  COALESCE(r.event_rows, 0) AS event_rows,
  COALESCE(d.dead_letters, 0) AS dead_letters,
  SAFE_DIVIDE(COALESCE(d.dead_letters, 0), COALESCE(r.event_rows, 0) + COALESCE(d.dead_letters, 0)) AS dead_letter_rate,
  f.newest_event_time,
  f.newest_ingest_time,
  TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), f.newest_event_time, SECOND) AS event_freshness_seconds,
  TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), f.newest_ingest_time, SECOND) AS ingest_freshness_seconds,
  IF(h.layer = 'batch', w.complete_until, NULL) AS batch_complete_until,
  IF(h.layer = 'batch', TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), w.complete_until, SECOND), NULL) AS batch_lag_seconds,
  IF(h.layer = 'batch', COALESCE(c.gap_days, 0), NULL) AS batch_gap_days,
  IF(h.layer = 'batch', c.last_finished_at, NULL) AS batch_last_finished_at,
  CURRENT_TIMESTAMP() AS checked_at
FROM hours AS h
LEFT JOIN received AS r ON r.layer = h.layer AND r.hour_start = h.hour_start
LEFT JOIN dead AS d ON d.layer = h.layer AND d.hour_start = h.hour_start
LEFT JOIN freshness AS f ON f.layer = h.layer
CROSS JOIN watermark AS w
CROSS JOIN coverage AS c
