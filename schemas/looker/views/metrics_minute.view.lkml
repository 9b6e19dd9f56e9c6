# One row per one-minute window and key: the BigQuery view metrics_minute.
view: metrics_minute {
  sql_table_name: `@{project}.@{dataset}.metrics_minute` ;;

  dimension_group: window_start {
    type: time
    description: "Start of the one-minute event-time window (UTC). Filter on it: the view is partitioned by its day."
    timeframes: [raw, minute, hour, date]
    datatype: timestamp
    sql: ${TABLE}.window_start ;;
  }

  dimension: event_type {
    type: string
    sql: ${TABLE}.event_type ;;
  }

  dimension: source {
    type: string
    sql: ${TABLE}.source ;;
  }

  dimension: platform {
    type: string
    sql: ${TABLE}.platform ;;
  }

  dimension: country {
    type: string
    map_layer_name: countries
    sql: ${TABLE}.country ;;
  }

  dimension: layer {
    type: string
    description: "batch for days the batch layer has covered, speed for the rest."
    sql: ${TABLE}.layer ;;
  }

  dimension: pane_timing {
    type: string
    description: "For speed rows, EARLY (may still change), ON_TIME or LATE; NULL for batch rows."
    sql: ${TABLE}.pane_timing ;;
  }

  dimension: users_in_window {
    type: number
    description: "Distinct users in the window. Not additive: for users over longer spans use the Events explore."
    sql: ${TABLE}.users ;;
  }

  measure: events {
    type: sum
    description: "Number of events."
    sql: ${TABLE}.events ;;
  }

  measure: total_value {
    type: sum
    description: "Sum of the events' value."
    sql: ${TABLE}.value_sum ;;
  }
}
