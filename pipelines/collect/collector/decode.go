package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
)

// Body formats.
const (
	formatJSON   = "json"   // one JSON value, or a JSON array of records
	formatNDJSON = "ndjson" // one record a line
)

// Request-level error codes: the request as a whole is refused and
// nothing of it is published.
const (
	codeBodyTooLarge         = "body_too_large"
	codeDecompressedTooLarge = "decompressed_too_large"
	codeTooManyRecords       = "too_many_records"
	codeEmptyBody            = "empty_body"
	codeBadArray             = "bad_array"
	codeBadGzip              = "bad_gzip"
	codeUnsupportedType      = "unsupported_media_type"
	codeUnsupportedEncoding  = "unsupported_encoding"
	codeReadTimeout          = "read_timeout"
	codeReadFailed           = "read_failed"
	codeMethod               = "method_not_allowed"
	codeNoKey                = "missing_api_key"
	codeUnknownKey           = "unknown_api_key"
	codeSourceNotAllowed     = "source_not_allowed"
	codeOriginNotAllowed     = "origin_not_allowed"
	codeShuttingDown         = "shutting_down"
)

// requestError refuses a whole request.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.code + ": " + e.msg }

func refuse(status int, code, format string, args ...any) *requestError {
	return &requestError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// bodyFormat returns the format of a Content-Type, or a 415.
func bodyFormat(contentType string) (string, *requestError) {
	const want = "send application/json (one event or an array of events) or application/x-ndjson (one event a line)"
	if contentType == "" {
		return "", refuse(http.StatusUnsupportedMediaType, codeUnsupportedType, "no Content-Type: %s", want)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", refuse(http.StatusUnsupportedMediaType, codeUnsupportedType, "Content-Type %q does not parse: %s", contentType, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", refuse(http.StatusUnsupportedMediaType, codeUnsupportedType, "charset %q: events are UTF-8", cs)
	}
	switch mt {
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines":
		return formatNDJSON, nil
	}
	return "", refuse(http.StatusUnsupportedMediaType, codeUnsupportedType, "Content-Type %q: %s", mt, want)
}

// limits are the body limits of a request.
type limits struct {
	maxBody, maxDecompressed int64
	maxRecords               int
}

// readBody reads a request body within the limits, gunzipping it if its
// Content-Encoding says gzip, into buf.
func readBody(buf *bytes.Buffer, body io.Reader, contentLength int64, encoding string, l limits) *requestError {
	if contentLength > l.maxBody {
		return refuse(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the body is %d bytes, the limit is %d: send fewer events a request", contentLength, l.maxBody)
	}
	tooLarge := func() *requestError {
		return refuse(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the body is over the limit of %d bytes: send fewer events a request", l.maxBody)
	}
	// The bytes as sent are limited as they are read; a read that fails
	// is the connection's failure, not the body's.
	lr := &limitedReader{r: body, n: l.maxBody}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		_, err := buf.ReadFrom(lr)
		switch {
		case lr.err != nil:
			return connError(lr.err)
		case lr.over:
			return tooLarge()
		case err != nil:
			return connError(err)
		}
		return nil
	case "gzip", "x-gzip":
	default:
		return refuse(http.StatusUnsupportedMediaType, codeUnsupportedEncoding, "Content-Encoding %q: send gzip or no encoding", encoding)
	}
	// The inflated bytes are limited as they come out: a bomb stops at
	// the limit.
	var n int64
	zr, err := gzip.NewReader(lr)
	if err == nil {
		n, err = buf.ReadFrom(io.LimitReader(zr, l.maxDecompressed+1))
	}
	switch {
	case lr.err != nil:
		return connError(lr.err)
	case lr.over:
		return tooLarge()
	case err != nil:
		return refuse(http.StatusBadRequest, codeBadGzip, "Content-Encoding is gzip but the body is not a whole gzip stream (truncated or corrupt): %v", err)
	case n > l.maxDecompressed:
		return refuse(http.StatusRequestEntityTooLarge, codeDecompressedTooLarge, "the body inflates past the limit of %d bytes: send fewer events a request", l.maxDecompressed)
	}
	return nil
}

// connError is a failed read of the connection: 408 when the client was
// too slow for the read timeout, 413 past the server's byte limit, else 400.
func connError(err error) *requestError {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return refuse(http.StatusRequestTimeout, codeReadTimeout, "the body was not received within the read timeout")
	case errors.As(err, &mbe):
		return refuse(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the body is over the limit of %d bytes: send fewer events a request", mbe.Limit)
	}
	return refuse(http.StatusBadRequest, codeReadFailed, "reading the body failed: %v", err)
}

// limitedReader reads at most n bytes of r, records whether r had more,
// and keeps r's own error apart from those of what reads from it.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
	err  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
		} else if err != nil && err != io.EOF {
			l.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// splitRecords returns the records of a body, each the bytes exactly as
// the client sent them (sub-slices of body or copies), and how many
// blank lines an NDJSON body held. A JSON body that starts with '[' is
// an array of records; any other JSON body is one record, valid or not
// (the event contract judges it). An NDJSON body holds one record a line;
// blank lines are skipped and counted.
func splitRecords(body []byte, format string, maxRecords int) (records [][]byte, blank int, rerr *requestError) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, 0, refuse(http.StatusBadRequest, codeEmptyBody, "the body holds no record")
	}
	tooMany := func() *requestError {
		return refuse(http.StatusRequestEntityTooLarge, codeTooManyRecords, "more than %d records in one request: send fewer events a request", maxRecords)
	}
	switch {
	case format == formatNDJSON:
		for len(body) > 0 {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(bytes.TrimSpace(line)) == 0 {
				blank++
				continue
			}
			if len(records) == maxRecords {
				return nil, 0, tooMany()
			}
			records = append(records, line)
		}
	case trimmed[0] == '[':
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if _, err := dec.Token(); err != nil {
			return nil, 0, badArray(err)
		}
		for dec.More() {
			if len(records) == maxRecords {
				return nil, 0, tooMany()
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, 0, badArray(err)
			}
			records = append(records, raw)
		}
		if _, err := dec.Token(); err != nil {
			return nil, 0, badArray(err)
		}
		if off := dec.InputOffset(); off != int64(len(trimmed)) {
			return nil, 0, refuse(http.StatusBadRequest, codeBadArray, "bytes after the array's closing ] at offset %d", off)
		}
	default:
		records = [][]byte{body}
	}
	if len(records) == 0 {
		return nil, blank, refuse(http.StatusBadRequest, codeEmptyBody, "the body holds no record")
	}
	return records, blank, nil
}

func badArray(err error) *requestError {
	return refuse(http.StatusBadRequest, codeBadArray, "the body starts as a JSON array of events but is not one (%v): nothing was published; send valid JSON, or NDJSON to have each line judged on its own", err)
}
