-- view: metrics_minute
-- Per one-minute event-time window and event_type, source, platform,
-- country: events, distinct users and value sum, merged from both layers.
-- For each event day the batch layer has covered, the rows of
-- metrics_minute_batch; for every other day, the latest pane (revision) of
-- each window of metrics_minute_speed. Filter on window_start to scan only
-- the days you need. users is not additive: use metrics_hourly or events
-- for distinct users over longer spans.
--
-- columns from metrics_minute_batch: window_start, window_end, event_type,
--   source, platform, country, events, users, value_sum
-- column layer STRING: Which layer the row comes from: batch for event days
--   the batch layer has covered, speed for every other day.
-- column pane_index INT64: For speed rows, the index of the pane shown (the
--   latest revision of the window); NULL for batch rows.
-- column pane_timing STRING: For speed rows, the timing of the pane shown:
--   EARLY (the window may still change), ON_TIME or LATE; NULL for batch rows.
-- column processed_at TIMESTAMP: For speed rows, when the speed layer
--   computed the pane shown; NULL for batch rows.
WITH
  spans AS (
    SELECT layer, span_start, span_end
    FROM `{project}.{dataset}.layer_spans`
    WHERE table_name = 'metrics_minute_batch'
  ),
  batch AS (
    SELECT
      b.window_start, b.window_end, b.event_type, b.source, b.platform,
      b.country, b.events, b.users, b.value_sum, 'batch' AS layer,
      CAST(NULL AS INT64) AS pane_index, CAST(NULL AS STRING) AS pane_timing,
      CAST(NULL AS TIMESTAMP) AS processed_at
    FROM `{project}.{dataset}.metrics_minute_batch` AS b
    JOIN spans AS c
      ON c.layer = 'batch'
      AND b.window_start >= c.span_start
      AND b.window_start < c.span_end
  ),
  speed AS (
    SELECT * EXCEPT (latest_pane)
    FROM (
      SELECT
        s.window_start, s.window_end, s.event_type, s.source, s.platform,
        s.country, s.events, s.users, s.value_sum, 'speed' AS layer,
        s.pane_index, s.pane_timing, s.processed_at,
        -- PARTITION BY groups NULL platform and country together; window_start
        -- is in it so a filter on it reaches the table.
        ROW_NUMBER() OVER (
          PARTITION BY s.window_start, s.event_type, s.source, s.platform, s.country
          -- The latest computed pane: a restarted job's panes count again
          -- from 0, and the restarted job recovers the open windows first.
          ORDER BY s.processed_at DESC, s.pane_index DESC
        ) AS latest_pane
      FROM `{project}.{dataset}.metrics_minute_speed` AS s
      JOIN spans AS c
        ON c.layer = 'speed'
        AND (c.span_start IS NULL OR s.window_start >= c.span_start)
        AND (c.span_end IS NULL OR s.window_start < c.span_end)
    )
    WHERE latest_pane = 1
  )
SELECT * FROM batch
UNION ALL
SELECT * FROM speed
