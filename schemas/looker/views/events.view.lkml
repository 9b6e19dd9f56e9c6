# One row per event: the BigQuery view events.
view: events {
  sql_table_name: `@{project}.@{dataset}.events` ;;

  # event_id is unique per event_time; the pair keys the row.
  dimension: row_key {
    primary_key: yes
    hidden: yes
    type: string
    sql: CONCAT(${TABLE}.event_id, '|', CAST(${TABLE}.event_time AS STRING)) ;;
  }

  dimension: event_id {
    type: string
    description: "Unique id of the event, as sent by the producer."
    sql: ${TABLE}.event_id ;;
  }

  dimension: event_type {
    type: string
    description: "What happened, for example page.view."
    sql: ${TABLE}.event_type ;;
  }

  dimension_group: event {
    type: time
    description: "When the event happened (UTC). Filter on it: the view is partitioned by its day."
    timeframes: [raw, time, minute, hour, date, week, month]
    datatype: timestamp
    sql: ${TABLE}.event_time ;;
  }

  dimension: source {
    type: string
    description: "The app, site or service that sent the event."
    sql: ${TABLE}.source ;;
  }

  dimension: platform {
    type: string
    description: "web, ios, android, server, iot or other; NULL when not sent."
    sql: ${TABLE}.platform ;;
  }

  dimension: country {
    type: string
    map_layer_name: countries
    description: "ISO 3166-1 alpha-2 country code; NULL when absent or invalid."
    sql: ${TABLE}.country ;;
  }

  dimension: user_id {
    type: string
    description: "The producer's user id; NULL when absent."
    sql: ${TABLE}.user_id ;;
  }

  dimension: session_id {
    type: string
    description: "The producer's own session id; NULL when absent."
    sql: ${TABLE}.session_id ;;
  }

  dimension: value {
    type: number
    hidden: yes
    sql: ${TABLE}.value ;;
  }

  dimension: properties {
    type: string
    description: "The producer's properties object, as JSON text."
    sql: TO_JSON_STRING(${TABLE}.properties) ;;
  }

  dimension_group: ingest {
    type: time
    description: "When Railyard received the record (Pub/Sub publish time)."
    timeframes: [raw, time, hour, date]
    datatype: timestamp
    sql: ${TABLE}.ingest_time ;;
  }

  dimension: layer {
    type: string
    description: "batch for days the batch layer has covered, speed for the rest."
    sql: ${TABLE}.layer ;;
  }

  dimension: message_id {
    type: string
    hidden: yes
    sql: ${TABLE}.message_id ;;
  }

  dimension: source_uri {
    type: string
    hidden: yes
    sql: ${TABLE}.source_uri ;;
  }

  measure: events {
    type: count
    description: "Number of events."
  }

  measure: users {
    type: count_distinct
    description: "Number of distinct users (non-NULL user_id)."
    sql: ${user_id} ;;
  }

  measure: total_value {
    type: sum
    description: "Sum of the events' value."
    sql: ${value} ;;
  }

  measure: average_value {
    type: average
    description: "Average value over the events that have one."
    sql: ${value} ;;
  }
}
