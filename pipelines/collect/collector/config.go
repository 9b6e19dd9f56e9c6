package collector

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/railyard/railyard/schemas"
)

// Auth modes.
const (
	// AuthNone takes every request: the service sits behind Cloud Run IAM
	// (or another authenticating proxy) that lets only its callers in.
	AuthNone = "none"
	// AuthAPIKey takes a request only with a known API key, and only the
	// events of the sources that key is bound to.
	AuthAPIKey = "api_key"
)

// Config is one collection edge. Every field is a flag of the collect
// command (named in Validate's messages); DefaultConfig holds the defaults.
type Config struct {
	// Topic is the Pub/Sub topic the streaming job's subscription reads:
	// projects/PROJECT/topics/NAME (--topic).
	Topic string

	// MaxBodyBytes is the largest request body as sent, compressed or not
	// (--max_body_bytes): a larger one is refused with 413.
	MaxBodyBytes int64
	// MaxDecompressedBytes is the largest body once gunzipped
	// (--max_decompressed_bytes): a gzip bomb is refused with 413 as soon
	// as it inflates past it.
	MaxDecompressedBytes int64
	// MaxRecords is the most records one request may carry
	// (--max_records); more is refused with 413.
	MaxRecords int

	// ReadHeaderTimeout is how long a client may take to send a
	// request's headers (--read_header_timeout), ReadTimeout the whole
	// request with its body (--read_timeout): a slow client cannot hold a
	// connection. IdleTimeout is how long a kept-alive connection waits
	// for its next request (--idle_timeout).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// PublishTimeout bounds how long a request waits for Pub/Sub to
	// acknowledge its records (--publish_timeout); a record still
	// unacknowledged then is answered as failed (503).
	PublishTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM: in-flight
	// requests finish and the publisher flushes within it
	// (--shutdown_timeout). Cloud Run kills the container 10 s after
	// SIGTERM, so it must stay below that.
	ShutdownTimeout time.Duration

	// MaxOutstandingMessages and MaxOutstandingBytes are the publisher's
	// flow control (--max_outstanding_messages, --max_outstanding_bytes):
	// records published and not yet acknowledged by Pub/Sub. A record
	// beyond them is not published and the request is answered 429.
	MaxOutstandingMessages int
	MaxOutstandingBytes    int

	// PublishRejected publishes the records that break the event contract
	// too, marked with the attribute AttrEdgeReason, so that the streaming
	// job dead-letters them with their raw bytes (--publish_rejected).
	PublishRejected bool
	// ClientIPAttribute stamps each message with the client's address in
	// AttrClientIP (--client_ip_attribute). Off by default: an address is
	// personal data.
	ClientIPAttribute bool

	// Auth is AuthNone or AuthAPIKey (--auth); Keys are the API keys for
	// AuthAPIKey (--api_keys_file or the variable --api_keys_env names).
	Auth string
	Keys []APIKey
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may call the API, or "*" for any (--allowed_origins). Empty: no
	// cross-origin browser calls.
	AllowedOrigins []string
}

// DefaultConfig returns the defaults of every field but Topic and Keys.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:           5 << 20,
		MaxDecompressedBytes:   20 << 20,
		MaxRecords:             1000,
		ReadHeaderTimeout:      5 * time.Second,
		ReadTimeout:            30 * time.Second,
		IdleTimeout:            2 * time.Minute,
		PublishTimeout:         10 * time.Second,
		ShutdownTimeout:        8 * time.Second,
		MaxOutstandingMessages: 20_000,
		MaxOutstandingBytes:    200 << 20,
		PublishRejected:        true,
		Auth:                   AuthNone,
	}
}

var topicPattern = regexp.MustCompile(`^projects/[a-z][a-z0-9.:-]{4,62}/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)

// Validate returns every problem of c, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !topicPattern.MatchString(c.Topic) {
		bad("--topic=%q must be a topic name: projects/PROJECT/topics/NAME", c.Topic)
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 32<<20 {
		bad("--max_body_bytes=%d must be between 1 KiB and 32 MiB (Cloud Run takes requests of up to 32 MiB)", c.MaxBodyBytes)
	}
	if c.MaxDecompressedBytes < c.MaxBodyBytes || c.MaxDecompressedBytes > 256<<20 {
		bad("--max_decompressed_bytes=%d must be between --max_body_bytes (%d) and 256 MiB", c.MaxDecompressedBytes, c.MaxBodyBytes)
	}
	if c.MaxRecords < 1 || c.MaxRecords > 10_000 {
		bad("--max_records=%d must be between 1 and 10,000", c.MaxRecords)
	}
	for _, d := range []struct {
		flag     string
		v        time.Duration
		min, max time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout, 100 * time.Millisecond, time.Minute},
		{"read_timeout", c.ReadTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"idle_timeout", c.IdleTimeout, time.Second, time.Hour},
		{"publish_timeout", c.PublishTimeout, 100 * time.Millisecond, 5 * time.Minute},
		{"shutdown_timeout", c.ShutdownTimeout, 100 * time.Millisecond, 9500 * time.Millisecond},
	} {
		if d.v < d.min || d.v > d.max {
			bad("--%s=%v must be between %v and %v", d.flag, d.v, d.min, d.max)
		}
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		bad("--read_header_timeout=%v must not exceed --read_timeout=%v", c.ReadHeaderTimeout, c.ReadTimeout)
	}
	if c.MaxOutstandingMessages < 100 || c.MaxOutstandingMessages > 10_000_000 {
		bad("--max_outstanding_messages=%d must be between 100 and 10,000,000", c.MaxOutstandingMessages)
	}
	if c.MaxOutstandingBytes < schemas.MaxRecordBytes*2 || c.MaxOutstandingBytes > 4<<30 {
		bad("--max_outstanding_bytes=%d must be between 2 MiB (two records of the largest size) and 4 GiB", c.MaxOutstandingBytes)
	}
	switch c.Auth {
	case AuthNone:
		if len(c.Keys) > 0 {
			bad("--auth=none takes no API keys: give --auth=api_key to use them")
		}
	case AuthAPIKey:
		if len(c.Keys) == 0 {
			bad("--auth=api_key needs at least one key in --api_keys_file or the variable --api_keys_env names")
		}
		seen := map[[32]byte]bool{}
		for _, k := range c.Keys {
			if err := k.validate(); err != nil {
				bad("API key %q: %v", k.Name, err)
			}
			if seen[k.Hash] {
				bad("API key %q: the same key is listed twice", k.Name)
			}
			seen[k.Hash] = true
		}
	default:
		bad("--auth=%q must be %s or %s", c.Auth, AuthNone, AuthAPIKey)
	}
	for _, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			bad("--allowed_origins: %v", err)
		}
	}
	return errors.Join(errs...)
}

// checkOrigin accepts "*" or an origin as a browser sends it:
// scheme://host[:port], nothing after.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ToLower(o) != o {
		return fmt.Errorf("%q is not an origin: write it as a browser sends it, scheme://host[:port] in lowercase, or * for any", o)
	}
	return nil
}
