-- view: layer_spans
-- Which layer the serving views read, when: per batch table, the spans of
-- event time served from the batch table (runs of consecutive days in
-- batch_coverage) and the spans between them served from the speed table.
-- The spans of one table do not overlap and cover all time. The events,
-- metrics_minute and sessions views join their rows to these spans.
--
-- column table_name STRING: The batch table whose coverage this is:
--   events_batch, metrics_minute_batch or sessions_batch.
-- column layer STRING: The layer the views read in this span: batch or speed.
-- column span_start TIMESTAMP: Start of the span (inclusive, 00:00 UTC of
--   its first day); NULL for the speed span before the first covered day.
-- column span_end TIMESTAMP: End of the span (exclusive, 00:00 UTC of the
--   day after its last day); NULL for the speed span after the last covered
--   day.
WITH
  batch_tables AS (
    SELECT table_name
    FROM UNNEST(['events_batch', 'metrics_minute_batch', 'sessions_batch']) AS table_name
  ),
  numbered AS (
    -- Along a run of consecutive days, day number minus rank is constant.
    SELECT
      c.table_name,
      c.day_start,
      DIV(UNIX_SECONDS(c.day_start), 86400)
        - DENSE_RANK() OVER (PARTITION BY c.table_name ORDER BY c.day_start) AS run
    FROM `{project}.{dataset}.batch_coverage` AS c
  ),
  covered AS (
    SELECT
      table_name,
      MIN(day_start) AS span_start,
      TIMESTAMP_ADD(MAX(day_start), INTERVAL 1 DAY) AS span_end
    FROM numbered
    GROUP BY table_name, run
  ),
  before_each AS (
    SELECT
      table_name,
      LAG(span_end) OVER (PARTITION BY table_name ORDER BY span_start) AS span_start,
      span_start AS span_end
    FROM covered
  ),
  after_last AS (
    SELECT t.table_name, MAX(c.span_end) AS span_start, CAST(NULL AS TIMESTAMP) AS span_end
    FROM batch_tables AS t
    LEFT JOIN covered AS c ON c.table_name = t.table_name
    GROUP BY t.table_name
  )
SELECT table_name, 'batch' AS layer, span_start, span_end FROM covered
UNION ALL
SELECT table_name, 'speed' AS layer, span_start, span_end FROM before_each
UNION ALL
SELECT table_name, 'speed' AS layer, span_start, span_end FROM after_last
