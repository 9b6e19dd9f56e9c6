-- view: metrics_hourly
-- Per event-time hour and event_type, source, platform, country: events and
-- value sum rolled up from metrics_minute, and distinct users counted from
-- the events view (distinct users do not add up across minutes). Filter on
-- hour_start to read only the hours you need.
--
-- column hour_start TIMESTAMP: Start of the event-time hour (inclusive, UTC).
-- column hour_end TIMESTAMP: End of the hour (exclusive, UTC).
-- columns from metrics_minute_batch: event_type, source, platform, country
-- column events INT64: Number of distinct events in the hour: the sum of
--   metrics_minute.events over the hour's windows.
-- column users INT64: Number of distinct non-NULL user_id values among the
--   hour's events, counted from the events view.
-- column value_sum FLOAT64: Sum of value over the hour's events: the sum of
--   metrics_minute.value_sum over the hour's windows.
-- column layer STRING: Which layer the hour comes from: batch when the batch
--   layer has covered its day, speed otherwise.
WITH
  minutes AS (
    SELECT
      TIMESTAMP_TRUNC(m.window_start, HOUR) AS hour_start, m.event_type,
      m.source, m.platform, m.country, m.events, m.value_sum, m.layer,
      CAST(NULL AS STRING) AS user_id
    FROM `{project}.{dataset}.metrics_minute` AS m
  ),
  users AS (
    SELECT
      TIMESTAMP_TRUNC(e.event_time, HOUR) AS hour_start, e.event_type,
      e.source, e.platform, e.country, 0 AS events, 0.0 AS value_sum, e.layer,
      e.user_id
    FROM `{project}.{dataset}.events` AS e
    WHERE e.user_id IS NOT NULL
  ),
  both_layers AS (
    SELECT * FROM minutes
    UNION ALL
    SELECT * FROM users
  )
-- GROUP BY puts NULL platform and country in one group each.
SELECT
  hour_start,
  TIMESTAMP_ADD(hour_start, INTERVAL 1 HOUR) AS hour_end,
  event_type, source, platform, country,
  SUM(events) AS events,
  COUNT(DISTINCT user_id) AS users,
  SUM(value_sum) AS value_sum,
  MAX(layer) AS layer
FROM both_layers
GROUP BY hour_start, event_type, source, platform, country
