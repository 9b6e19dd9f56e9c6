package sample

import "math/bits"

// rng is a SplitMix64 generator. The sample is committed under testdata,
// so its bytes must not change with the Go release: math/rand/v2 keeps its
// sources stable, but not every method's use of them.
type rng struct{ state uint64 }

// newRNG returns a generator for one part of the sample (stream), so that
// a change to one part does not reshuffle the others.
func newRNG(seed int64, stream uint64) *rng {
	r := &rng{state: uint64(seed)*0x9e3779b97f4a7c15 ^ (stream+1)*0xd1b54a32d192ed03}
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n); n must be positive.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// between returns a number in [lo, hi).
func (r *rng) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	h, _ := bits.Mul64(r.next(), uint64(hi-lo))
	return lo + int64(h)
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func (r *rng) chance(p float64) bool { return r.float() < p }

func pick[T any](r *rng, xs ...T) T { return xs[r.intn(len(xs))] }

const hexDigits = "0123456789abcdef"

// hex returns n random lowercase hex digits.
func (r *rng) hex(n int) string {
	b := make([]byte, n)
	var v uint64
	for i := range b {
		if i%16 == 0 {
			v = r.next()
		}
		b[i] = hexDigits[v&15]
		v >>= 4
	}
	return string(b)
}

// alnum returns n random characters of [0-9A-Za-z].
func (r *rng) alnum(n int) string {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.intn(len(chars))]
	}
	return string(b)
}
