-- view: events
-- Every event once, merged from both layers: for each event day the batch
-- layer has covered (batch_coverage), the rows of events_batch; for every
-- other day, the rows of events_speed with redeliveries removed (the first
-- row of each event_id and event_time by ingest_time). Partitioned tables
-- underneath: filter on event_time to scan only the days you need.
--
-- columns from events_batch: event_id, event_type, event_time, source,
--   platform, user_id, session_id, country, value, properties, extra,
--   ingest_time, message_id, source_uri
-- column layer STRING: Which layer the row comes from: batch for event days
--   the batch layer has covered, speed for every other day.
WITH
  spans AS (
    SELECT layer, span_start, span_end
    FROM `{project}.{dataset}.layer_spans`
    WHERE table_name = 'events_batch'
  ),
  batch AS (
    SELECT
      b.event_id, b.event_type, b.event_time, b.source, b.platform, b.user_id,
      b.session_id, b.country, b.value, b.properties, b.extra, b.ingest_time,
      b.message_id, b.source_uri, 'batch' AS layer
    FROM `{project}.{dataset}.events_batch` AS b
    JOIN spans AS c
      ON c.layer = 'batch'
      AND b.event_time >= c.span_start
      AND b.event_time < c.span_end
  ),
  speed AS (
    SELECT * EXCEPT (first_by_ingest)
    FROM (
      SELECT
        s.event_id, s.event_type, s.event_time, s.source, s.platform, s.user_id,
        s.session_id, s.country, s.value, s.properties, s.extra, s.ingest_time,
        s.message_id, s.source_uri, 'speed' AS layer,
        -- event_time is in the PARTITION BY so a filter on it reaches the table.
        ROW_NUMBER() OVER (
          PARTITION BY s.event_id, s.event_time
          ORDER BY s.ingest_time, s.message_id
        ) AS first_by_ingest
      FROM `{project}.{dataset}.events_speed` AS s
      JOIN spans AS c
        ON c.layer = 'speed'
        AND (c.span_start IS NULL OR s.event_time >= c.span_start)
        AND (c.span_end IS NULL OR s.event_time < c.span_end)
    )
    WHERE first_by_ingest = 1
  )
SELECT * FROM batch
UNION ALL
SELECT * FROM speed
