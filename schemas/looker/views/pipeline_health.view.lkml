# One row per layer and hour of the last 48 hours: the BigQuery view
# pipeline_health. What an alert watches.
view: pipeline_health {
  sql_table_name: `@{project}.@{dataset}.pipeline_health` ;;

  dimension: row_key {
    primary_key: yes
    hidden: yes
    type: string
    sql: CONCAT(${TABLE}.layer, '|', CAST(${TABLE}.hour_start AS STRING)) ;;
  }

  dimension: layer {
    type: string
    sql: ${TABLE}.layer ;;
  }

  dimension_group: hour_start {
    type: time
    description: "Hour in which the records counted were received (UTC)."
    timeframes: [raw, time, hour, date]
    datatype: timestamp
    sql: ${TABLE}.hour_start ;;
  }

  dimension: event_freshness_minutes {
    type: number
    value_format_name: decimal_1
    description: "Minutes since the newest event time (NULL: none in 7 days)."
    sql: ${TABLE}.event_freshness_seconds / 60 ;;
  }

  dimension: ingest_freshness_minutes {
    type: number
    value_format_name: decimal_1
    description: "Minutes since the newest ingest time (NULL: none in 7 days)."
    sql: ${TABLE}.ingest_freshness_seconds / 60 ;;
  }

  dimension_group: batch_complete_until {
    type: time
    description: "The batch watermark: the batch layer is complete before it."
    timeframes: [raw, time, date]
    datatype: timestamp
    sql: ${TABLE}.batch_complete_until ;;
  }

  dimension: batch_gap_days {
    type: number
    description: "Event days inside the batch layer's range that no run has covered."
    sql: ${TABLE}.batch_gap_days ;;
  }

  dimension_group: checked {
    type: time
    timeframes: [raw, time]
    datatype: timestamp
    sql: ${TABLE}.checked_at ;;
  }

  measure: event_rows {
    type: sum
    description: "Rows written for records received in the hours selected."
    sql: ${TABLE}.event_rows ;;
  }

  measure: dead_letters {
    type: sum
    description: "Dead letters of records received in the hours selected."
    sql: ${TABLE}.dead_letters ;;
  }

  measure: dead_letter_rate {
    type: number
    value_format_name: percent_2
    description: "Dead letters / (rows + dead letters) over the hours selected."
    sql: SAFE_DIVIDE(${dead_letters}, ${event_rows} + ${dead_letters}) ;;
  }

  measure: max_event_freshness_minutes {
    type: max
    value_format_name: decimal_1
    description: "Minutes since the newest event time; alert when high or NULL."
    sql: ${event_freshness_minutes} ;;
  }

  measure: max_ingest_freshness_minutes {
    type: max
    value_format_name: decimal_1
    sql: ${ingest_freshness_minutes} ;;
  }

  measure: batch_lag_hours {
    type: max
    value_format_name: decimal_1
    description: "Hours from the batch watermark to now."
    sql: ${TABLE}.batch_lag_seconds / 3600 ;;
  }
}
