# One row per session of one user: the BigQuery view sessions.
view: sessions {
  sql_table_name: `@{project}.@{dataset}.sessions` ;;

  dimension: row_key {
    primary_key: yes
    hidden: yes
    type: string
    sql: CONCAT(${TABLE}.user_id, '|', CAST(${TABLE}.session_start AS STRING)) ;;
  }

  dimension_group: session_start {
    type: time
    description: "Event time of the session's first event (UTC). Filter on it: the view is partitioned by its day."
    timeframes: [raw, time, hour, date, week]
    datatype: timestamp
    sql: ${TABLE}.session_start ;;
  }

  dimension_group: session_end {
    type: time
    timeframes: [raw, time]
    datatype: timestamp
    sql: ${TABLE}.session_end ;;
  }

  dimension: user_id {
    type: string
    sql: ${TABLE}.user_id ;;
  }

  dimension: duration_seconds {
    type: number
    sql: ${TABLE}.duration_seconds ;;
  }

  dimension: events_in_session {
    type: number
    sql: ${TABLE}.events ;;
  }

  dimension: sources {
    type: string
    description: "The sources the session's events came from."
    sql: ARRAY_TO_STRING(${TABLE}.sources, ', ') ;;
  }

  dimension: layer {
    type: string
    sql: ${TABLE}.layer ;;
  }

  measure: sessions {
    type: count
    description: "Number of sessions."
  }

  measure: users {
    type: count_distinct
    description: "Number of distinct users with a session."
    sql: ${user_id} ;;
  }

  measure: events {
    type: sum
    description: "Number of events in the sessions."
    sql: ${events_in_session} ;;
  }

  measure: average_duration_seconds {
    type: average
    value_format_name: decimal_1
    sql: ${duration_seconds} ;;
  }
}
