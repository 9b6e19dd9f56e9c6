package collector

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("shop "+HashKey("s3cret")+" web-shop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	topic := "--topic=projects/p-test/topics/events"
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr []string // substrings, each naming its flag; none: valid
	}{
		{"the defaults with a topic are valid", []string{topic}, nil},
		{"API keys from a file are read", []string{topic, "--auth=api_key", "--api_keys_file=" + keyFile}, nil},
		{"no topic is an error naming --topic", nil, []string{"--topic"}},
		{"every bad limit is named", []string{topic, "--max_body_bytes=10", "--max_decompressed_bytes=5", "--max_records=0", "--shutdown_timeout=15s", "--read_header_timeout=1m", "--read_timeout=1s"},
			[]string{"--max_body_bytes=10", "--max_decompressed_bytes=5", "--max_records=0", "--shutdown_timeout=15s", "--read_header_timeout=1m0s must not exceed --read_timeout=1s"}},
		{"an unknown auth mode is named", []string{topic, "--auth=basic"}, []string{"--auth=\"basic\""}},
		{"api_key auth without keys says where keys come from", []string{topic, "--auth=api_key", "--api_keys_env=RAILYARD_TEST_NO_SUCH_VAR"}, []string{"--api_keys_file"}},
		{"a key file without api_key auth is refused", []string{topic, "--api_keys_file=" + keyFile}, []string{"--api_keys_file is given but --auth=none"}},
		{"a missing key file is named", []string{topic, "--auth=api_key", "--api_keys_file=/nonexistent/keys"}, []string{"--api_keys_file: open /nonexistent/keys"}},
		{"an origin with a path is refused", []string{topic, "--allowed_origins=https://shop.example/app"}, []string{"--allowed_origins", "is not an origin"}},
		{"too small a flow control is named", []string{topic, "--max_outstanding_messages=1", "--max_outstanding_bytes=1"}, []string{"--max_outstanding_messages=1", "--max_outstanding_bytes=1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("collect", flag.ContinueOnError)
			build := RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := build()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if cfg.Auth == AuthAPIKey && (len(cfg.Keys) != 1 || cfg.Keys[0].Name != "shop") {
					t.Fatalf("keys %+v", cfg.Keys)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
