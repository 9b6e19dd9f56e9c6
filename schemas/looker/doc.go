// Package looker holds Railyard's LookML project: a LookML view per BigQuery
// serving view (views/), the model with its explores, the manifest with the
// project and dataset constants, and the Traffic and Pipeline health
// dashboards (dashboards/). It has no Go code; its test parses every file
// with the LookML parser pinned in tools/ and checks each ${TABLE}.column
// against the views' catalogue in package schemas.
package looker
