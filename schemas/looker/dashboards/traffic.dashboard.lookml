- dashboard: traffic
  title: Traffic
  description: "Events and users over time by source, platform and country, merged from the batch and speed layers."
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 15 minutes

  filters:
  - name: date
    title: Date
    type: field_filter
    default_value: 7 days
    allow_multiple_values: true
    required: true
    model: railyard
    explore: metrics_hourly
    field: metrics_hourly.hour_start_date
  - name: source
    title: Source
    type: field_filter
    allow_multiple_values: true
    required: false
    model: railyard
    explore: metrics_hourly
    field: metrics_hourly.source
  - name: platform
    title: Platform
    type: field_filter
    allow_multiple_values: true
    required: false
    model: railyard
    explore: metrics_hourly
    field: metrics_hourly.platform
  - name: country
    title: Country
    type: field_filter
    allow_multiple_values: true
    required: false
    model: railyard
    explore: metrics_hourly
    field: metrics_hourly.country

  elements:
  - name: events_per_hour_by_source
    title: Events per hour by source
    model: railyard
    explore: metrics_hourly
    type: looker_line
    fields: [metrics_hourly.hour_start_hour, metrics_hourly.source, metrics_hourly.events]
    pivots: [metrics_hourly.source]
    sorts: [metrics_hourly.hour_start_hour desc]
    limit: 500
    listen:
      date: metrics_hourly.hour_start_date
      source: metrics_hourly.source
      platform: metrics_hourly.platform
      country: metrics_hourly.country
    row: 0
    col: 0
    width: 24
    height: 8

  - name: users_per_day_by_platform
    title: Distinct users per day by platform
    model: railyard
    explore: events
    type: looker_column
    fields: [events.event_date, events.platform, events.users]
    pivots: [events.platform]
    sorts: [events.event_date desc]
    limit: 500
    listen:
      date: events.event_date
      source: events.source
      platform: events.platform
      country: events.country
    row: 8
    col: 0
    width: 12
    height: 8

  - name: users_per_day_by_source
    title: Distinct users per day by source
    model: railyard
    explore: events
    type: looker_line
    fields: [events.event_date, events.source, events.users]
    pivots: [events.source]
    sorts: [events.event_date desc]
    limit: 500
    listen:
      date: events.event_date
      source: events.source
      platform: events.platform
      country: events.country
    row: 8
    col: 12
    width: 12
    height: 8

  - name: events_and_users_by_country
    title: Events and users by country
    model: railyard
    explore: events
    type: looker_geo_choropleth
    fields: [events.country, events.events, events.users]
    sorts: [events.events desc]
    limit: 500
    listen:
      date: events.event_date
      source: events.source
      platform: events.platform
      country: events.country
    row: 16
    col: 0
    width: 12
    height: 8

  - name: value_per_hour_by_platform
    title: Value per hour by platform
    model: railyard
    explore: metrics_hourly
    type: looker_area
    fields: [metrics_hourly.hour_start_hour, metrics_hourly.platform, metrics_hourly.total_value]
    pivots: [metrics_hourly.platform]
    sorts: [metrics_hourly.hour_start_hour desc]
    limit: 500
    listen:
      date: metrics_hourly.hour_start_date
      source: metrics_hourly.source
      platform: metrics_hourly.platform
      country: metrics_hourly.country
    row: 16
    col: 12
    width: 12
    height: 8
