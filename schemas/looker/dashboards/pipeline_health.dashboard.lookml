- dashboard: pipeline_health
  title: Pipeline health
  description: "Freshness of each layer, dead letters by reason, and how far the batch layer lags: what the alerts watch."
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 5 minutes

  filters:
  - name: layer
    title: Layer
    type: field_filter
    allow_multiple_values: true
    required: false
    model: railyard
    explore: pipeline_health
    field: pipeline_health.layer

  elements:
  - name: event_freshness
    title: Minutes since the newest event, per layer
    model: railyard
    explore: pipeline_health
    type: looker_single_record
    fields: [pipeline_health.layer, pipeline_health.max_event_freshness_minutes, pipeline_health.max_ingest_freshness_minutes]
    sorts: [pipeline_health.layer]
    listen:
      layer: pipeline_health.layer
    row: 0
    col: 0
    width: 12
    height: 6

  - name: batch_lag
    title: Batch layer lag (hours behind now)
    model: railyard
    explore: pipeline_health
    type: single_value
    fields: [pipeline_health.batch_lag_hours]
    filters:
      pipeline_health.layer: batch
    row: 0
    col: 12
    width: 6
    height: 6

  - name: batch_watermark
    title: Batch layer complete until
    model: railyard
    explore: pipeline_health
    type: looker_grid
    fields: [pipeline_health.batch_complete_until_time, pipeline_health.batch_gap_days]
    filters:
      pipeline_health.layer: batch
    limit: 1
    row: 0
    col: 18
    width: 6
    height: 6

  - name: dead_letter_rate_per_hour
    title: Dead-letter rate per hour
    model: railyard
    explore: pipeline_health
    type: looker_line
    fields: [pipeline_health.hour_start_hour, pipeline_health.layer, pipeline_health.dead_letter_rate]
    pivots: [pipeline_health.layer]
    sorts: [pipeline_health.hour_start_hour desc]
    listen:
      layer: pipeline_health.layer
    row: 6
    col: 0
    width: 12
    height: 8

  - name: rows_per_hour
    title: Rows written per hour
    model: railyard
    explore: pipeline_health
    type: looker_column
    fields: [pipeline_health.hour_start_hour, pipeline_health.layer, pipeline_health.event_rows]
    pivots: [pipeline_health.layer]
    sorts: [pipeline_health.hour_start_hour desc]
    listen:
      layer: pipeline_health.layer
    row: 6
    col: 12
    width: 12
    height: 8

  - name: dead_letters_by_reason
    title: Dead letters by reason
    model: railyard
    explore: dead_letters
    type: looker_column
    fields: [dead_letters.failed_hour, dead_letters.reason, dead_letters.dead_letters]
    pivots: [dead_letters.reason]
    sorts: [dead_letters.failed_hour desc]
    filters:
      dead_letters.failed_date: 2 days
    listen:
      layer: dead_letters.layer
    row: 14
    col: 0
    width: 16
    height: 8

  - name: latest_dead_letters
    title: Latest dead letters
    model: railyard
    explore: dead_letters
    type: looker_grid
    fields: [dead_letters.failed_time, dead_letters.layer, dead_letters.reason, dead_letters.error, dead_letters.payload_preview, dead_letters.source_uri]
    sorts: [dead_letters.failed_time desc]
    filters:
      dead_letters.failed_date: 2 days
    listen:
      layer: dead_letters.layer
    limit: 50
    row: 14
    col: 16
    width: 8
    height: 8

  - name: open_dead_letters_by_reason
    title: Open dead letters by reason (never replayed)
    model: railyard
    explore: dead_letters
    type: looker_bar
    fields: [dead_letters.reason, dead_letters.distinct_dead_letters]
    sorts: [dead_letters.distinct_dead_letters desc]
    filters:
      dead_letters.failed_date: 7 days
      dead_letters.is_open: "Yes"
    listen:
      layer: dead_letters.layer
    row: 22
    col: 0
    width: 24
    height: 8

  - name: layer_spans
    title: Which layer serves which days
    model: railyard
    explore: layer_spans
    type: looker_grid
    fields: [layer_spans.table_name, layer_spans.layer, layer_spans.span_start_date, layer_spans.span_end_date, layer_spans.days]
    sorts: [layer_spans.table_name, layer_spans.span_start_date]
    limit: 100
    row: 30
    col: 0
    width: 24
    height: 6
