package collector

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// APIKey is one client's key as the edge keeps it: the SHA-256 of the key,
// never the key itself, and the sources the key may send events of.
type APIKey struct {
	// Name identifies the key in logs and error messages (never the key).
	Name string
	// Hash is the SHA-256 of the key as the client sends it.
	Hash [32]byte
	// Sources are the event sources (the contract's source, trimmed) the
	// key may send; AnySource allows every source.
	Sources []string
}

// AnySource, as a key's only source, allows the key every source.
const AnySource = "*"

var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (k APIKey) validate() error {
	if !keyNamePattern.MatchString(k.Name) {
		return errors.New("the name must be 1-64 letters, digits, '_', '.' or '-'")
	}
	if k.Hash == ([32]byte{}) {
		return errors.New("no hash")
	}
	if len(k.Sources) == 0 {
		return errors.New("bound to no source")
	}
	for _, s := range k.Sources {
		if s == "" || len(s) > 64 || strings.TrimSpace(s) != s {
			return fmt.Errorf("source %q is not a source of the event contract (1-64 characters, trimmed)", s)
		}
	}
	return nil
}

// HashKey returns the SHA-256 of an API key, as a key file lists it
// (sha256:<64 hex digits>); the shell's `printf %s KEY | sha256sum` gives
// the same digits.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseAPIKeys reads API keys, one a line:
//
//	NAME sha256:HEX SOURCE[,SOURCE...]
//
// where HEX is the SHA-256 of the key (HashKey) and SOURCE an event
// source the key may send, or * for every source. Blank lines and lines
// starting with # are skipped. Keys are never given in clear text.
func ParseAPIKeys(text string) ([]APIKey, error) {
	var keys []APIKey
	var errs []error
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			errs = append(errs, fmt.Errorf("line %d: want NAME sha256:HEX SOURCE[,SOURCE...], got %d fields", line, len(f)))
			continue
		}
		k := APIKey{Name: f[0], Sources: strings.Split(f[2], ",")}
		hexHash, ok := strings.CutPrefix(f[1], "sha256:")
		b, err := hex.DecodeString(hexHash)
		if !ok || err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("line %d (%s): the key must be given as sha256:<64 hex digits> of the key, never the key itself", line, k.Name))
			continue
		}
		copy(k.Hash[:], b)
		if err := k.validate(); err != nil {
			errs = append(errs, fmt.Errorf("line %d (%s): %w", line, k.Name, err))
			continue
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return keys, errors.Join(errs...)
}

// keyStore finds the key a request presents.
type keyStore struct {
	keys []storedKey
}

type storedKey struct {
	name    string
	hash    [32]byte
	any     bool
	sources map[string]bool
}

func newKeyStore(keys []APIKey) *keyStore {
	ks := &keyStore{}
	for _, k := range keys {
		sk := storedKey{name: k.Name, hash: k.Hash, sources: map[string]bool{}}
		for _, s := range k.Sources {
			if s == AnySource {
				sk.any = true
			}
			sk.sources[s] = true
		}
		ks.keys = append(ks.keys, sk)
	}
	return ks
}

// HeaderAPIKey is the header a client sends its key in (or
// "Authorization: Bearer KEY").
const HeaderAPIKey = "X-API-Key"

// presentedKey returns the key of the request, or "".
func presentedKey(r *http.Request) string {
	if k := r.Header.Get(HeaderAPIKey); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// lookup returns the key whose hash is the presented key's, comparing
// every stored hash in constant time (no early exit), or nil.
func (ks *keyStore) lookup(key string) *storedKey {
	sum := sha256.Sum256([]byte(key))
	var found *storedKey
	for i := range ks.keys {
		if subtle.ConstantTimeCompare(sum[:], ks.keys[i].hash[:]) == 1 {
			found = &ks.keys[i]
		}
	}
	return found
}

func (k *storedKey) allows(source string) bool { return k.any || k.sources[source] }
