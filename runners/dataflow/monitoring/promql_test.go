package monitoring

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file reads the metrics a condition names: the vector selectors of
// a PromQL query and the metric.type / metric_name clauses of a
// Monitoring filter. It is a reader for what policies say, not a PromQL
// parser: it knows the lexical structure (strings, identifiers, braces,
// brackets) and which identifiers are functions, aggregations and
// keywords, which is all it takes to find every selector.

// A selector is one vector selector: a metric name and its matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct {
	label, op, value string
}

type promToken struct {
	kind string // ident, string, number, op, or the punctuation itself
	text string // for strings, the unquoted value
}

func lexPromQL(q string) ([]promToken, error) {
	var toks []promToken
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(q) && q[j] != c {
				if q[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			raw := q[i : j+1]
			if c == '\'' {
				raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			s, err := strconv.Unquote(raw)
			if err != nil {
				return nil, fmt.Errorf("string at offset %d: %w", i, err)
			}
			toks = append(toks, promToken{"string", s})
			i = j + 1
		case isIdentStart(c):
			j := i
			for j < len(q) && (isIdentStart(q[j]) || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			toks = append(toks, promToken{"ident", q[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(q) && (isIdentStart(q[j]) || q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			toks = append(toks, promToken{"number", q[i:j]})
			i = j
		case strings.ContainsRune("(){}[],", rune(c)):
			toks = append(toks, promToken{string(c), string(c)})
			i++
		default:
			op := q[i : i+1]
			if i+1 < len(q) && slices.Contains([]string{"==", "!=", "=~", "!~", ">=", "<="}, q[i:i+2]) {
				op = q[i : i+2]
			}
			if !strings.Contains("=!~<>+-*/%^@:", op[:1]) {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			toks = append(toks, promToken{"op", op})
			i += len(op)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// promKeywords are identifiers that are not metric names when no "("
// follows: aggregation operators (sum by (…) (…)), set and comparison
// modifiers, and literals.
var promKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// labelLists are keywords followed by a parenthesized list of labels.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// promSelectors returns every vector selector of a PromQL query.
func promSelectors(q string) ([]selector, error) {
	toks, err := lexPromQL(q)
	if err != nil {
		return nil, err
	}
	var sels []selector
	depth := map[string]int{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := func() string {
			if i+1 < len(toks) {
				return toks[i+1].kind
			}
			return ""
		}
		switch t.kind {
		case "(":
			depth["("]++
		case ")":
			depth["("]--
		case "[":
			// a range or subquery: [10m], [1h:5m]
			end := slices.IndexFunc(toks[i+1:], func(t promToken) bool { return t.kind == "]" })
			if end < 0 {
				return nil, fmt.Errorf("unbalanced brackets in %q", q)
			}
			i += 1 + end
		case "]":
			depth["["]--
		case "{":
			s, end, err := matchers(toks, i)
			if err != nil {
				return nil, err
			}
			sels = append(sels, s)
			i = end
		case "ident":
			switch {
			case labelLists[t.text] && next() == "(":
				end := slices.IndexFunc(toks[i+1:], func(t promToken) bool { return t.kind == ")" })
				if end < 0 {
					return nil, fmt.Errorf("%s ( without )", t.text)
				}
				i += 1 + end
			case next() == "(" || promKeywords[t.text]:
				// a function call, an aggregation or a keyword
			default:
				s := selector{name: t.text}
				if next() == "{" {
					var end int
					if s, end, err = matchers(toks, i+1); err != nil {
						return nil, err
					}
					if s.name != "" {
						return nil, fmt.Errorf("selector %s names its metric twice", t.text)
					}
					s.name = t.text
					i = end
				}
				sels = append(sels, s)
			}
		}
		if depth["("] < 0 || depth["["] < 0 {
			return nil, fmt.Errorf("unbalanced brackets in %q", q)
		}
	}
	if depth["("] != 0 || depth["["] != 0 {
		return nil, fmt.Errorf("unbalanced brackets in %q", q)
	}
	for _, s := range sels {
		if s.name == "" {
			return nil, fmt.Errorf("a selector without a metric name in %q", q)
		}
	}
	return sels, nil
}

// matchers reads {…} starting at toks[open] and returns the selector it
// describes (the name when given inside the braces) and the index of }.
func matchers(toks []promToken, open int) (selector, int, error) {
	var s selector
	for i := open + 1; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == "}":
			return s, i, nil
		case t.kind == ",":
		case (t.kind == "ident" || t.kind == "string") && i+2 < len(toks) && toks[i+1].kind == "op" && toks[i+2].kind == "string":
			m := matcher{label: t.text, op: toks[i+1].text, value: toks[i+2].text}
			if !slices.Contains([]string{"=", "!=", "=~", "!~"}, m.op) {
				return s, 0, fmt.Errorf("matcher %s%s%q: unknown operator", m.label, m.op, m.value)
			}
			if m.label == "__name__" {
				if m.op != "=" {
					return s, 0, fmt.Errorf("__name__%s%q: only = names a metric here", m.op, m.value)
				}
				s.name = m.value
			} else {
				s.matchers = append(s.matchers, m)
			}
			i += 2
		case t.kind == "string":
			s.name = t.text // {"dataflow.googleapis.com/job/user_counter", …}
		default:
			return s, 0, fmt.Errorf("unexpected %q in a label matcher list", t.text)
		}
	}
	return s, 0, fmt.Errorf("{ without }")
}

// filterRefs returns the metric types and metric_name values a Monitoring
// filter names. A metric_name clause it cannot read fails: a test that
// skips what it does not understand would let a wrong name through.
func filterRefs(filter string) (types []string, names []matcher, err error) {
	typeRe := regexp.MustCompile(`metric\.type\s*=\s*"([^"]*)"`)
	for _, m := range typeRe.FindAllStringSubmatch(filter, -1) {
		types = append(types, m[1])
	}
	if len(types) == 0 {
		return nil, nil, fmt.Errorf("filter %q names no metric.type", filter)
	}
	nameRe := regexp.MustCompile(`metric\.labels?\.(?:"metric_name"|metric_name)\s*(!?=)\s*"([^"]*)"`)
	for _, m := range nameRe.FindAllStringSubmatch(filter, -1) {
		names = append(names, matcher{label: "metric_name", op: m[1], value: m[2]})
	}
	if n := strings.Count(filter, "metric_name"); n != len(names) {
		return nil, nil, fmt.Errorf("filter %q: a metric_name clause is not of the form metric.label.metric_name = \"NAME\"", filter)
	}
	return types, names, nil
}

// metricNames returns the counter names a metric_name matcher selects:
// the value of = and !=, the alternatives of =~ and !~ when they are
// plain names.
func (m matcher) metricNames() ([]string, error) {
	plain := regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	values := []string{m.value}
	if m.op == "=~" || m.op == "!~" {
		values = strings.Split(m.value, "|")
	}
	for _, v := range values {
		if !plain.MatchString(v) {
			return nil, fmt.Errorf("%s%s%q: only plain names (a|b|c) can be checked against the code", m.label, m.op, m.value)
		}
	}
	return values, nil
}

func TestPromSelectors(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        []selector
		wantErr     string
	}{
		{
			name:  "reads a ratio with aggregations, ranges and a vector(0) fallback",
			query: `sum by (job_name) (delta(a:b{metric_name="dead_letters",job_name=~"rail.*"}[10m])) / sum by (job_name) (delta(a:b{metric_name="records_in"}[10m])) > 0.01 or vector(0)`,
			want: []selector{
				{name: "a:b", matchers: []matcher{{"metric_name", "=", "dead_letters"}, {"job_name", "=~", "rail.*"}}},
				{name: "a:b", matchers: []matcher{{"metric_name", "=", "records_in"}}},
			},
		},
		{
			name:  "skips the label lists of on, by, ignoring and group_left",
			query: `x and on (job_name) max(y) by (job_name) * ignoring(a) group_left(b) z`,
			want:  []selector{{name: "x"}, {name: "y"}, {name: "z"}},
		},
		{
			name:  "reads the UTF-8 and __name__ forms",
			query: `{"dataflow.googleapis.com/job/system_lag", job_name="j"} + {__name__="p:q", 'l'="v"}`,
			want: []selector{
				{name: "dataflow.googleapis.com/job/system_lag", matchers: []matcher{{"job_name", "=", "j"}}},
				{name: "p:q", matchers: []matcher{{"l", "=", "v"}}},
			},
		},
		{
			name:  "ignores strings outside braces and comments",
			query: "label_replace(m{a=\"b\"}, \"dst\", \"$1\", \"src\", \"(.*)\") # not_a_metric{x=\"y\"}",
			want:  []selector{{name: "m", matchers: []matcher{{"a", "=", "b"}}}},
		},
		{name: "rejects a selector without a name", query: `{job_name="x"}`, wantErr: "without a metric name"},
		{name: "rejects unbalanced parentheses", query: `sum(x`, wantErr: "unbalanced"},
		{name: "rejects an unterminated string", query: `x{a="b}`, wantErr: "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := promSelectors(tc.query)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("promSelectors(%q) error = %v, want one containing %q", tc.query, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("promSelectors(%q)\n got %v\nwant %v", tc.query, got, tc.want)
			}
		})
	}
}

func TestFilterRefs(t *testing.T) {
	types, names, err := filterRefs(`resource.type = "dataflow_job" AND metric.type = "dataflow.googleapis.com/job/user_counter" AND metric.label."metric_name" = "records_in"`)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(types, names) != "[dataflow.googleapis.com/job/user_counter] [{metric_name = records_in}]" {
		t.Errorf("filterRefs = %v %v", types, names)
	}
	if _, _, err := filterRefs(`metric.type = "dataflow.googleapis.com/job/user_counter" AND metric.labels.metric_name = starts_with("dead_")`); err == nil {
		t.Error("filterRefs accepted a metric_name clause it cannot read")
	}
}
