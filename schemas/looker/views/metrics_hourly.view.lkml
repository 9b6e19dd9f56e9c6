# One row per event-time hour and key: the BigQuery view metrics_hourly.
view: metrics_hourly {
  sql_table_name: `@{project}.@{dataset}.metrics_hourly` ;;

  dimension: row_key {
    primary_key: yes
    hidden: yes
    type: string
    sql: TO_JSON_STRING(STRUCT(${TABLE}.hour_start, ${TABLE}.event_type, ${TABLE}.source, ${TABLE}.platform, ${TABLE}.country)) ;;
  }

  dimension_group: hour_start {
    type: time
    description: "Start of the event-time hour (UTC)."
    timeframes: [raw, time, hour, date, week, month]
    datatype: timestamp
    sql: ${TABLE}.hour_start ;;
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
    sql: ${TABLE}.layer ;;
  }

  measure: events {
    type: sum
    description: "Number of events."
    sql: ${TABLE}.events ;;
  }

  measure: peak_hourly_users {
    type: max
    description: "The most distinct users of one hour and key. Distinct users do not add up across hours or keys: count them in the Events explore."
    sql: ${TABLE}.users ;;
  }

  measure: total_value {
    type: sum
    description: "Sum of the events' value."
    sql: ${TABLE}.value_sum ;;
  }
}
