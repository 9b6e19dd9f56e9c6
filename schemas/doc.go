// Package schemas holds Railyard's contracts: the event contract v1 (what a
// valid event is and its canonical form), the archive envelope the lake
// stores, the BigQuery row types with the table definitions derived from
// them, and the SQL of the serving views.
//
// Nothing here does IO; every other package builds on these types.
package schemas
