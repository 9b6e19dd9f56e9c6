# Which layer the serving views read, when: the BigQuery view layer_spans.
view: layer_spans {
  sql_table_name: `@{project}.@{dataset}.layer_spans` ;;

  dimension: row_key {
    primary_key: yes
    hidden: yes
    type: string
    sql: CONCAT(${TABLE}.table_name, '|', IFNULL(CAST(${TABLE}.span_start AS STRING), 'open')) ;;
  }

  dimension: table_name {
    type: string
    description: "The batch table: events_batch, metrics_minute_batch or sessions_batch."
    sql: ${TABLE}.table_name ;;
  }

  dimension: layer {
    type: string
    description: "The layer the views read in this span."
    sql: ${TABLE}.layer ;;
  }

  dimension_group: span_start {
    type: time
    description: "Start of the span; empty for the span before the first covered day."
    timeframes: [raw, date]
    datatype: timestamp
    sql: ${TABLE}.span_start ;;
  }

  dimension_group: span_end {
    type: time
    description: "End of the span (exclusive); empty for the span after the last covered day."
    timeframes: [raw, date]
    datatype: timestamp
    sql: ${TABLE}.span_end ;;
  }

  dimension: days {
    type: number
    description: "Days in the span; empty when it is open."
    sql: TIMESTAMP_DIFF(${TABLE}.span_end, ${TABLE}.span_start, DAY) ;;
  }

  measure: spans {
    type: count
  }
}
