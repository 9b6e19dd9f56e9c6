// Package shard spreads keys over a fixed number of shards, the same way
// on every worker: the batch transforms group by shard to keep the number
// of keys the runner tracks small.
package shard

// Hash is a 32-bit FNV-1a hash (hash/fnv), written out so that strings are
// hashed without being copied to bytes. Start from New.
type Hash uint32

const (
	offset32 = 2166136261
	prime32  = 16777619
)

// New returns the hash of nothing.
func New() Hash { return offset32 }

// Byte adds one byte.
func (h Hash) Byte(c byte) Hash { return (h ^ Hash(c)) * prime32 }

// String adds the bytes of s.
func (h Hash) String(s string) Hash {
	for i := range len(s) {
		h = h.Byte(s[i])
	}
	return h
}

// Int64 adds the 8 bytes of v, least significant first.
func (h Hash) Int64(v int64) Hash {
	for i := range 8 {
		h = h.Byte(byte(v >> (8 * i)))
	}
	return h
}

// Of returns the shard of the hash among n.
func (h Hash) Of(n int) int { return int(uint32(h) % uint32(n)) }
