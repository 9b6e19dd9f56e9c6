# Explores over Railyard's serving views. Each explore asks for a time
# filter by default: every view is partitioned by day underneath, and a
# filter on its time column makes BigQuery scan only those days.
connection: "railyard_bigquery"

include: "/views/*.view.lkml"
include: "/dashboards/*.dashboard.lookml"

datagroup: railyard_hourly {
  sql_trigger: SELECT TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), HOUR) ;;
  max_cache_age: "1 hour"
}

datagroup: railyard_live {
  sql_trigger: SELECT TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), MINUTE) ;;
  max_cache_age: "5 minutes"
}

persist_with: railyard_hourly

explore: events {
  label: "Events"
  description: "Every event once: batch layer for the days it has covered, speed layer for the rest."
  always_filter: {
    filters: [events.event_date: "7 days"]
  }
}

explore: metrics_hourly {
  label: "Traffic per hour"
  description: "Events, distinct users and value per hour and event type, source, platform, country."
  always_filter: {
    filters: [metrics_hourly.hour_start_date: "7 days"]
  }
}

explore: metrics_minute {
  label: "Traffic per minute"
  description: "Events and value per minute window; speed-layer days show the latest pane."
  always_filter: {
    filters: [metrics_minute.window_start_date: "1 day"]
  }
}

explore: sessions {
  label: "Sessions"
  description: "Sessions per user: start, end, duration, events."
  always_filter: {
    filters: [sessions.session_start_date: "7 days"]
  }
}

explore: dead_letters {
  label: "Dead letters"
  description: "Records that did not become events, with the reason and a preview of their payload."
  persist_with: railyard_live
  always_filter: {
    filters: [dead_letters.failed_date: "7 days"]
  }
}

explore: pipeline_health {
  label: "Pipeline health"
  description: "Per layer and hour of the last 48 hours: rows, dead-letter rate, freshness, batch watermark and lag."
  persist_with: railyard_live
}

explore: layer_spans {
  label: "Layer spans"
  description: "Per batch table, the spans of event time the views read from the batch layer and from the speed layer."
  persist_with: railyard_live
}
