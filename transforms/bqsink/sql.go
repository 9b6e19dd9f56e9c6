package bqsink

import (
	"fmt"
	"strings"
	"time"
)

// tableRef is the fully qualified, quoted name of a table. Railyard always
// qualifies names: the emulator confuses unqualified names when two
// datasets hold a table of the same name.
func tableRef(project, dataset, table string) string {
	return "`" + project + "." + dataset + "." + table + "`"
}

func quoteIdent(name string) string { return "`" + name + "`" }

// columnList is cols quoted and comma-separated, each after qualifier
// ("S." for the source of a MERGE, "" for none).
func columnList(cols []string, qualifier string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = qualifier + quoteIdent(c)
	}
	return strings.Join(quoted, ", ")
}

// timestampLiteral renders t as a GoogleSQL TIMESTAMP literal in UTC.
func timestampLiteral(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'"
}

// replaceDaySQL is the statement that replaces one day of target with the
// rows of staging, atomically in BigQuery: every target row of the day
// that is not in the source (all of them: ON FALSE) is deleted, and every
// source row is inserted, in one DML job. The staging table holds rows of
// that day only.
//
// Columns are listed by name, not INSERT ROW, so that a target whose
// columns are in another order, or that has columns Railyard does not
// write, still gets each value in its column. The day bounds are literals:
// BigQuery prunes the target to the day's partition with them, and the
// emulator ignores query parameters inside MERGE.
func replaceDaySQL(target, staging, partitionCol string, day time.Time, cols []string) string {
	p := "T." + quoteIdent(partitionCol)
	return fmt.Sprintf(`MERGE %s T
USING %s S
ON FALSE
WHEN NOT MATCHED BY SOURCE AND %s >= %s AND %s < %s THEN DELETE
WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)`,
		target, staging,
		p, timestampLiteral(day), p, timestampLiteral(day.AddDate(0, 0, 1)),
		columnList(cols, ""), columnList(cols, "S."))
}

// replaceDayScript replaces one day of target with the rows of staging as
// replaceDaySQL does, in a transaction of a DELETE of the day and an
// INSERT … SELECT of the staging rows. It is for a server whose MERGE
// pairs every source row with every target row (the emulator: see
// server.mergePairsRows). BigQuery would commit the two statements
// together; the emulator runs them one after the other and does not undo
// the DELETE when the INSERT fails, which leaves the day empty until the
// day is written again (the job fails, so the day is not recorded as
// covered).
func replaceDayScript(target, staging, partitionCol string, day time.Time, cols []string) string {
	list := columnList(cols, "")
	p := quoteIdent(partitionCol)
	return fmt.Sprintf(`BEGIN TRANSACTION;
DELETE FROM %s WHERE %s >= %s AND %s < %s;
INSERT INTO %s (%s) SELECT %s FROM %s;
COMMIT TRANSACTION;`,
		target, p, timestampLiteral(day), p, timestampLiteral(day.AddDate(0, 0, 1)),
		target, list, list, staging)
}

// fileOfSQL is the GoogleSQL twin of fileOf: the source URI without its
// final "#L<line>".
const fileOfSQL = `REGEXP_REPLACE(T.source_uri, r'#L[0-9]+$', '')`

// replaceDeadLettersSQL is the statement that replaces the batch layer's
// dead letters of a set of lake files, atomically in BigQuery. The staging
// table holds the new dead letters (replace_file NULL) and one marker row
// per file the run read (replace_file set). A target row of the batch
// layer whose file has a marker is deleted; every new dead letter is
// inserted.
//
// The files travel as rows, not as an array parameter: the emulator binds
// no parameter inside MERGE, and a long --from/--to run reads more files
// than a query's text may list.
func replaceDeadLettersSQL(target, staging string, cols []string) string {
	return fmt.Sprintf(`MERGE %s T
USING %s S
ON S.%s IS NOT NULL AND T.layer = 'batch' AND %s = S.%s
WHEN MATCHED THEN DELETE
WHEN NOT MATCHED BY TARGET AND S.%s IS NULL THEN INSERT (%s) VALUES (%s)`,
		target, staging,
		quoteIdent(replaceFileColumn), fileOfSQL, quoteIdent(replaceFileColumn),
		quoteIdent(replaceFileColumn), columnList(cols, ""), columnList(cols, "S."))
}

// fileOf returns the lake file of a source URI: the URI without its final
// "#L<line>" (gs://b/raw/x.jsonl.gz#L12 → gs://b/raw/x.jsonl.gz).
func fileOf(uri string) string {
	i := strings.LastIndex(uri, "#L")
	if i < 0 || i+2 == len(uri) {
		return uri
	}
	for _, c := range uri[i+2:] {
		if c < '0' || c > '9' {
			return uri
		}
	}
	return uri[:i]
}
