package collector

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// DefaultKeysEnv is the environment variable API keys are read from by
// default (on Cloud Run, a secret mounted as a variable).
const DefaultKeysEnv = "RAILYARD_API_KEYS"

// RegisterFlags defines the edge's flags on fs, with DefaultConfig's
// defaults, and returns a function that builds and validates the Config
// once fs is parsed; its error names every flag at fault.
func RegisterFlags(fs *flag.FlagSet) func() (Config, error) {
	d := DefaultConfig()
	topic := fs.String("topic", "", "Pub/Sub topic to publish to, the one the streaming job's subscription reads: projects/PROJECT/topics/NAME.")
	maxBody := fs.Int64("max_body_bytes", d.MaxBodyBytes, "Largest request body as sent (compressed or not); larger is 413.")
	maxDecompressed := fs.Int64("max_decompressed_bytes", d.MaxDecompressedBytes, "Largest body once gunzipped; a gzip body that inflates past it is 413.")
	maxRecords := fs.Int("max_records", d.MaxRecords, "Most records in one request; more is 413.")
	readHeader := fs.Duration("read_header_timeout", d.ReadHeaderTimeout, "How long a client may take to send a request's headers.")
	read := fs.Duration("read_timeout", d.ReadTimeout, "How long a client may take to send a whole request; a body not received in time is 408.")
	idle := fs.Duration("idle_timeout", d.IdleTimeout, "How long a kept-alive connection waits for its next request.")
	publish := fs.Duration("publish_timeout", d.PublishTimeout, "How long a request waits for Pub/Sub to acknowledge its records; those still waiting are answered failed (503).")
	shutdown := fs.Duration("shutdown_timeout", d.ShutdownTimeout, "On SIGTERM, the time to finish the requests in flight and flush the publisher (below Cloud Run's 10s grace).")
	maxMsgs := fs.Int("max_outstanding_messages", d.MaxOutstandingMessages, "Publisher flow control: most records published and not yet acknowledged; beyond it records fail with 429.")
	maxBytes := fs.Int("max_outstanding_bytes", d.MaxOutstandingBytes, "Publisher flow control: most bytes published and not yet acknowledged; beyond it records fail with 429.")
	publishRejected := fs.Bool("publish_rejected", d.PublishRejected, "Publish the records that break the event contract too, marked railyard_edge_reason, so they land in dead_letter with their raw bytes.")
	clientIP := fs.Bool("client_ip_attribute", d.ClientIPAttribute, "Stamp each message with the client's address (railyard_client_ip). Off: an address is personal data.")
	auth := fs.String("auth", d.Auth, "none (behind Cloud Run IAM or another authenticating proxy) or api_key (keys from --api_keys_file or --api_keys_env).")
	keysFile := fs.String("api_keys_file", "", "File of API keys, one a line: NAME sha256:HEX SOURCE[,SOURCE...] (HEX: the SHA-256 of the key; SOURCE * for any).")
	keysEnv := fs.String("api_keys_env", DefaultKeysEnv, "Environment variable holding API keys in the file's format (lines or ';'-separated), read with --auth=api_key.")
	origins := fs.String("allowed_origins", "", "Comma-separated browser origins (https://host[:port]) that may call the API, or * for any; empty: none.")

	return func() (Config, error) {
		cfg := Config{
			Topic: *topic, MaxBodyBytes: *maxBody, MaxDecompressedBytes: *maxDecompressed, MaxRecords: *maxRecords,
			ReadHeaderTimeout: *readHeader, ReadTimeout: *read, IdleTimeout: *idle,
			PublishTimeout: *publish, ShutdownTimeout: *shutdown,
			MaxOutstandingMessages: *maxMsgs, MaxOutstandingBytes: *maxBytes,
			PublishRejected: *publishRejected, ClientIPAttribute: *clientIP, Auth: *auth,
		}
		for _, o := range strings.Split(*origins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
			}
		}
		var errs []error
		if cfg.Auth == AuthAPIKey {
			var text string
			if *keysFile != "" {
				b, err := os.ReadFile(*keysFile)
				if err != nil {
					errs = append(errs, fmt.Errorf("--api_keys_file: %w", err))
				}
				text = string(b)
			}
			if *keysEnv != "" {
				text += "\n" + strings.ReplaceAll(os.Getenv(*keysEnv), ";", "\n")
			}
			keys, err := ParseAPIKeys(text)
			if err != nil {
				errs = append(errs, fmt.Errorf("API keys (--api_keys_file, $%s): %w", *keysEnv, err))
			}
			cfg.Keys = keys
		} else if *keysFile != "" {
			errs = append(errs, fmt.Errorf("--api_keys_file is given but --auth=%s: give --auth=%s to use the keys", cfg.Auth, AuthAPIKey))
		}
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
		return cfg, errors.Join(errs...)
	}
}

// Project returns the project of a topic name projects/PROJECT/topics/T.
func Project(topic string) string {
	rest, _ := strings.CutPrefix(topic, "projects/")
	project, _, _ := strings.Cut(rest, "/")
	return project
}
