-- view: sessions
-- Sessions per user_id, merged from both layers: for each event day the
-- batch layer has covered, the rows of sessions_batch; for every other day,
-- the latest pane (revision) of each session of sessions_speed. Sessions
-- end at midnight UTC, so a session lies within the day of its
-- session_start; filter on session_start to scan only the days you need.
--
-- columns from sessions_batch: session_start, session_end, user_id,
--   duration_seconds, events, sources, gap_seconds
-- column layer STRING: Which layer the row comes from: batch for event days
--   the batch layer has covered, speed for every other day.
-- column pane_index INT64: For speed rows, the index of the pane shown (the
--   latest revision of the session); NULL for batch rows.
-- column pane_timing STRING: For speed rows, the timing of the pane shown:
--   EARLY (the session may still grow), ON_TIME or LATE; NULL for batch rows.
-- column processed_at TIMESTAMP: For speed rows, when the speed layer
--   computed the pane shown; NULL for batch rows.
WITH
  spans AS (
    SELECT layer, span_start, span_end
    FROM `{project}.{dataset}.layer_spans`
    WHERE table_name = 'sessions_batch'
  ),
  batch AS (
    SELECT
      b.session_start, b.session_end, b.user_id, b.duration_seconds, b.events,
      b.sources, b.gap_seconds, 'batch' AS layer,
      CAST(NULL AS INT64) AS pane_index, CAST(NULL AS STRING) AS pane_timing,
      CAST(NULL AS TIMESTAMP) AS processed_at
    FROM `{project}.{dataset}.sessions_batch` AS b
    JOIN spans AS c
      ON c.layer = 'batch'
      AND b.session_start >= c.span_start
      AND b.session_start < c.span_end
  ),
  speed AS (
    SELECT * EXCEPT (latest_pane)
    FROM (
      SELECT
        s.session_start, s.session_end, s.user_id, s.duration_seconds, s.events,
        s.sources, s.gap_seconds, 'speed' AS layer,
        s.pane_index, s.pane_timing, s.processed_at,
        -- session_start is in the PARTITION BY so a filter on it reaches the table.
        ROW_NUMBER() OVER (
          PARTITION BY s.user_id, s.session_start
          -- The latest computed pane: a restarted job's panes count again
          -- from 0, and the restarted job recovers the open windows first.
          ORDER BY s.processed_at DESC, s.pane_index DESC
        ) AS latest_pane
      FROM `{project}.{dataset}.sessions_speed` AS s
      JOIN spans AS c
        ON c.layer = 'speed'
        AND (c.span_start IS NULL OR s.session_start >= c.span_start)
        AND (c.span_end IS NULL OR s.session_start < c.span_end)
    )
    WHERE latest_pane = 1
  )
SELECT * FROM batch
UNION ALL
SELECT * FROM speed
