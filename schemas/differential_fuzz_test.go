package schemas

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseEventAgainstReference checks ParseEvent against the decoder it
// replaced (referenceParseEvent): on any bytes both return the same event,
// or both reject with the same reason code and the same message.
//
// Seeds are those of FuzzParseEvent. Run with:
//
//	go test -run='^$' -fuzz=FuzzParseEventAgainstReference -fuzztime=10m -parallel=1 ./schemas
func FuzzParseEventAgainstReference(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareWithReference(t, data)
	})
}

func compareWithReference(t *testing.T, data []byte) {
	t.Helper()
	got, err := ParseEvent(data)
	want, wantErr := referenceParseEvent(data)
	switch {
	case err == nil && wantErr == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the decoders read %q differently:\n got  %s\n want %s", data, showEvent(got), showEvent(want))
		}
	case err == nil:
		t.Fatalf("ParseEvent accepts %q as %s; the reference rejects it: %v", data, showEvent(got), wantErr)
	case wantErr == nil:
		t.Fatalf("ParseEvent rejects %q (%v); the reference accepts it as %s", data, err, showEvent(want))
	default:
		var ce, wantCE *ContractError
		if !errors.As(err, &ce) || !errors.As(wantErr, &wantCE) {
			t.Fatalf("errors %v (%T) and %v (%T) are not both *ContractError", err, err, wantErr, wantErr)
		}
		if ce.Reason != wantCE.Reason {
			t.Fatalf("the decoders reject %q for different reasons:\n got  %v\n want %v", data, err, wantErr)
		}
		if ce.Msg != wantCE.Msg {
			t.Fatalf("the decoders reject %q with different messages:\n got  %v\n want %v", data, err, wantErr)
		}
	}
}

// FuzzParseLakeLineAgainstReference checks ParseLakeLine against the one
// it replaced (referenceParseLakeLine): on any line both return the same
// record and the same error.
//
//	go test -run='^$' -fuzz=FuzzParseLakeLineAgainstReference -fuzztime=2m -parallel=1 ./schemas
func FuzzParseLakeLineAgainstReference(f *testing.F) {
	for _, line := range benchLines(benchRecords(f, 20)) {
		f.Add(line)
	}
	for _, line := range lakeLineSeeds() {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := ParseLakeLine(line, "u", 5)
		want, wantErr := referenceParseLakeLine(line, "u", 5)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the readers restore %q differently:\n got  %+v\n want %+v", line, got, want)
		}
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("the readers judge %q differently:\n got  %v\n want %v", line, err, wantErr)
		}
	})
}

// lakeLineSeeds are envelope lines that leave the form MarshalEnvelope
// writes in one way or another, and the lines of the reject cases.
func lakeLineSeeds() [][]byte {
	const head = `{"envelope":"railyard/raw/v1","message_id":"7","publish_time":"2026-11-01T10:00:00.5Z"`
	lines := []string{
		head + `,"data":""}`,
		head + `,"attributes":{},"data":"e30="}`,
		head + `,"attributes":{"a":"1","a":"2"},"data":"e30="}`,
		head + `,"attributes":{"a":"\u00e9"},"data":"e30="}`,
		head + `,"attributes":null,"data":"e30="}`,
		head + `,"data":"e30="} `,
		head + `,"data":"e30=","extra":1}`,
		head + `,"Data":"e30="}`,
		head + `,"data":"e3\n0="}`,
		head + `,"data":"e30"}`,
		head + `,"data":null}`,
		`{"envelope":"railyard/raw/v1","message_id":"7","publish_time":"2026-11-01T10:00:00+01:00","data":"e30="}`,
		`{"envelope":"railyard/raw/v1","message_id":"7","publish_time":"0001-01-01T00:00:00Z","data":"e30="}`,
		`{"envelope":"railyard/raw/v1","message_id":"\u0037","publish_time":"2026-11-01T10:00:00Z","data":"e30="}`,
		"{\"envelope\":\"railyard/raw/v1\",\"message_id\":\"\xff\",\"publish_time\":\"2026-11-01T10:00:00Z\",\"data\":\"e30=\"}",
		`{"message_id":"7","envelope":"railyard/raw/v1","publish_time":"2026-11-01T10:00:00Z","data":"e30="}`,
	}
	for _, tc := range lakeLineRejectCases() {
		lines = append(lines, tc.line)
	}
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = []byte(l)
	}
	return out
}
