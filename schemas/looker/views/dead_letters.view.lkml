# One row per dead letter: the BigQuery view dead_letters.
view: dead_letters {
  sql_table_name: `@{project}.@{dataset}.dead_letters` ;;

  dimension_group: failed {
    type: time
    description: "When the record failed. Filter on it: the view is partitioned by its day."
    timeframes: [raw, time, hour, date, week]
    datatype: timestamp
    sql: ${TABLE}.failed_at ;;
  }

  dimension_group: received {
    type: time
    description: "When the record arrived (publish time when known)."
    timeframes: [raw, time, hour, date]
    datatype: timestamp
    sql: ${TABLE}.received_at ;;
  }

  dimension: layer {
    type: string
    sql: ${TABLE}.layer ;;
  }

  dimension: stage {
    type: string
    sql: ${TABLE}.stage ;;
  }

  dimension: reason {
    type: string
    description: "Short, stable reason code."
    sql: ${TABLE}.reason ;;
  }

  dimension: error {
    type: string
    sql: ${TABLE}.error ;;
  }

  dimension: payload_preview {
    type: string
    description: "The payload's first 1024 bytes as text."
    sql: ${TABLE}.payload_preview ;;
  }

  dimension: payload_bytes {
    type: number
    sql: ${TABLE}.payload_bytes ;;
  }

  dimension: payload_truncated {
    type: yesno
    sql: ${TABLE}.payload_truncated ;;
  }

  dimension: source_uri {
    type: string
    sql: ${TABLE}.source_uri ;;
  }

  dimension: message_id {
    type: string
    sql: ${TABLE}.message_id ;;
  }

  dimension: record_key {
    type: string
    description: "Identifies the bad record within its layer; rows of a record dead-lettered more than once (a Pub/Sub redelivery) share it."
    sql: ${TABLE}.record_key ;;
  }

  dimension: attributes {
    type: string
    sql: ${TABLE}.attributes ;;
  }

  dimension: dead_letter_id {
    type: string
    description: "Identifies the dead letter across replays (dead_letter_replays.dead_letter_id)."
    sql: ${TABLE}.dead_letter_id ;;
  }

  dimension: replay_status {
    type: string
    description: "open (never replayed: still to fix), replayed (passes now, in the lake for the batch run of its day), or replayed_still_failing."
    sql: ${TABLE}.replay_status ;;
  }

  dimension: is_open {
    type: yesno
    description: "Whether the dead letter was never replayed."
    sql: ${TABLE}.replay_status = 'open' ;;
  }

  dimension_group: last_replayed {
    type: time
    description: "When the latest replay of the dead letter ran; empty when open."
    timeframes: [raw, time, date]
    datatype: timestamp
    sql: ${TABLE}.last_replayed_at ;;
  }

  measure: dead_letters {
    type: count
    description: "Number of dead-letter rows."
  }

  measure: bad_records {
    type: count_distinct
    sql: ${record_key} ;;
    description: "Number of bad records, each once, however often it was dead-lettered."
  }

  measure: distinct_dead_letters {
    type: count_distinct
    sql: ${dead_letter_id} ;;
    description: "Number of dead letters, each once however often it was dead-lettered again for the same reason (the replay job's unit)."
  }
}
