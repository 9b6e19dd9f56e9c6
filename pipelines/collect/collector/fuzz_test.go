package collector

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeBody feeds any body, plain or as gzip, to the request
// decoder: it never panics, never answers with records beyond the limit,
// and every record it returns is bytes of the body as sent (a line of
// NDJSON, an element of an array, or the whole body).
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		event("a"), "[" + event("a") + "," + event("b") + "]", event("a") + "\n\n" + event("b"),
		"", " ", "[", "[]", "[1,", `{"a":"\xfc"}`, "\x1f\x8b\x08\x00", "[" + event("a") + "] x",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, false)
	}
	f.Add(gzBytes([]byte(event("a")+"\n"+event("b"))), true, true)
	f.Fuzz(func(t *testing.T, body []byte, ndjson, gzipped bool) {
		format := formatJSON
		if ndjson {
			format = formatNDJSON
		}
		enc := ""
		if gzipped {
			enc = "gzip"
		}
		var buf bytes.Buffer
		l := limits{maxBody: 1 << 16, maxDecompressed: 1 << 18, maxRecords: 50}
		if rerr := readBody(&buf, bytes.NewReader(body), int64(len(body)), enc, l); rerr != nil {
			if rerr.status < 400 || rerr.status > 499 || rerr.msg == "" {
				t.Fatalf("refusal %+v", rerr)
			}
			return
		}
		if !gzipped && !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("the plain body changed in reading")
		}
		decoded := buf.Bytes()
		records, _, rerr := splitRecords(decoded, format, l.maxRecords)
		if rerr != nil {
			if rerr.status != 400 && rerr.status != 413 {
				t.Fatalf("refusal %+v", rerr)
			}
			return
		}
		if len(records) == 0 || len(records) > l.maxRecords {
			t.Fatalf("%d records", len(records))
		}
		for _, r := range records {
			switch {
			case !bytes.Contains(decoded, r):
				t.Fatalf("record %q is not bytes of the body", r)
			case ndjson && (bytes.IndexByte(r, '\n') >= 0 || len(bytes.TrimSpace(r)) == 0):
				t.Fatalf("NDJSON record %q holds a newline or is blank", r)
			case !ndjson && len(records) > 1 && !json.Valid(r):
				t.Fatalf("array element %q is not JSON", r)
			}
		}
	})
}

func gzBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzipWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
