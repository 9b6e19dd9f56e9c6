package pubsubio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// flowBook returns a lease book and a reader over pstest with n messages
// pulled, for the flow-control rules.
func flowBook(t *testing.T, n int) (*leaseBook, *reader, []string) {
	t.Helper()
	_, r, ids := pulled(t, n)
	r.cfg.AckDeadline, r.cfg.AckExtension = 10*time.Second, time.Minute
	b := newLeaseBook(r.cfg.Subscription)
	b.tick = 50 * time.Millisecond
	return b, r, ids
}

func sizes(n int, size int64) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func TestLeaseBookFlowControl(t *testing.T) {
	ctx := context.Background()
	t.Run("reserves room up to the message cap and frees it on acknowledgement", func(t *testing.T) {
		b, r, ids := flowBook(t, 10)
		lim := flowLimits{messages: 10, bytes: 1 << 20}
		first, _ := b.reserve(6, lim)
		second, _ := b.reserve(6, lim)
		third, freed := b.reserve(1, lim)
		if first.messages != 6 || second.messages != 4 || third.messages != 0 {
			t.Fatalf("reserved %d, %d, %d of a cap of 10; want 6, 4 and 0", first.messages, second.messages, third.messages)
		}
		b.lease(ctx, r, ids[:6], sizes(6, 100), time.Now(), first)
		b.unreserve(second) // the pull brought nothing
		select {
		case <-freed:
		default:
			t.Errorf("unreserve did not wake the shards waiting for room")
		}
		if got, _ := b.reserve(5, lim); got.messages != 4 {
			t.Errorf("reserved %d with 6 of 10 leased; want 4", got.messages)
		}
		_, freed = b.reserve(1, lim)
		b.forget(ids[:3])
		select {
		case <-freed:
		default:
			t.Errorf("an acknowledgement did not wake the shards waiting for room")
		}
		if held, heldBytes := b.outstanding(); held != 3 || heldBytes != 300 {
			t.Errorf("outstanding %d messages, %d bytes; want 3 and 300", held, heldBytes)
		}
		if peak, peakBytes := b.highWater(); peak != 6 || peakBytes != 600 {
			t.Errorf("high-water mark %d messages, %d bytes; want 6 and 600", peak, peakBytes)
		}
	})

	t.Run("waits for room, and pulls as soon as the pipeline acknowledges", func(t *testing.T) {
		b, r, ids := flowBook(t, 4)
		lim := flowLimits{messages: 4, bytes: 1 << 20}
		res, _ := b.reserve(4, lim)
		b.lease(ctx, r, ids, sizes(4, 100), time.Now(), res)
		start := time.Now()
		if got := b.awaitRoom(ctx, 4, lim, 300*time.Millisecond); got.messages != 0 || time.Since(start) < 300*time.Millisecond {
			t.Errorf("awaitRoom at the cap returned %d after %v; want nothing after 300ms", got.messages, time.Since(start))
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			b.forget(ids[:2])
		}()
		start = time.Now()
		if got := b.awaitRoom(ctx, 4, lim, 5*time.Second); got.messages != 2 || time.Since(start) > 2*time.Second {
			t.Errorf("awaitRoom returned %d after %v; want the 2 acknowledged, at once", got.messages, time.Since(start))
		}
	})

	t.Run("counts bytes at the average size of what it leased", func(t *testing.T) {
		b, r, ids := flowBook(t, 5)
		lim := flowLimits{messages: 100, bytes: 5000}
		res, _ := b.reserve(4, lim)
		b.lease(ctx, r, ids[:4], sizes(4, 1000), time.Now(), res)
		if got, _ := b.reserve(10, lim); got.messages != 1 || got.bytes != 1000 {
			t.Errorf("reserved %+v with 4000 of 5000 bytes leased at 1000 each; want 1 message, 1000 bytes", got)
		}
		if got, _ := b.reserve(10, lim); got.messages != 0 {
			t.Errorf("reserved %d messages with the bytes cap taken; want none", got.messages)
		}
	})

	t.Run("lets one message through an empty book however large", func(t *testing.T) {
		b, r, ids := flowBook(t, 2)
		lim := flowLimits{messages: 100, bytes: 1 << 20}
		res, _ := b.reserve(1, lim)
		b.lease(ctx, r, ids[:1], []int64{8 << 20}, time.Now(), res)
		if got, _ := b.reserve(1, lim); got.messages != 0 {
			t.Errorf("reserved %d messages over an 8 MiB message under a 1 MiB cap", got.messages)
		}
		b.forget(ids[:1])
		if got, _ := b.reserve(10, lim); got.messages != 1 {
			t.Errorf("reserved %d messages in an empty book whose average message is over the cap; want 1", got.messages)
		}
	})

	t.Run("waits for a twentieth of the cap rather than pulling a few at a time", func(t *testing.T) {
		b, r, ids := flowBook(t, 10)
		lim := flowLimits{messages: 200, bytes: 1 << 30}
		res, _ := b.reserve(195, lim)
		b.lease(ctx, r, ids, sizes(10, 10), time.Now(), reservation{}) // stand-ins for the 195
		if got, _ := b.reserve(100, lim); got.messages != 0 {
			t.Errorf("reserved %d with room for 5 of 200; want none until there is room for 10", got.messages)
		}
		b.unreserve(res)
		if got, _ := b.reserve(100, lim); got.messages != 100 {
			t.Errorf("reserved %d with room for 190; want 100", got.messages)
		}
	})
}

func TestChunkAckIDs(t *testing.T) {
	ids := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			id := fmt.Sprintf("%d:", i)
			out[i] = id + strings.Repeat("a", size-len(id))
		}
		return out
	}
	const sub = 60
	for _, tc := range []struct {
		name  string
		ids   []string
		sizes []int // chunk lengths
	}{
		{"no ids, no request", nil, nil},
		{"short ids go 2,500 to a request", ids(6001, 20), []int{2500, 2500, 1001}},
		{"long ids go as many as 512 KB holds", ids(3000, 300), []int{1644, 1356}},
		{"an id larger than a request goes alone", append(ids(1, 600_000), ids(2, 20)...), []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := chunkAckIDs(tc.ids, sub, modackIDsPerRequest, maxAckRequestBytes)
			var got []int
			var all []string
			for _, c := range chunks {
				got = append(got, len(c))
				all = append(all, c...)
				size := sub + 16
				for _, id := range c {
					size += len(id) + 4
				}
				if len(c) > 1 && size > maxAckRequestBytes {
					t.Errorf("a request of %d ids is %d bytes, over %d", len(c), size, maxAckRequestBytes)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.sizes) || len(all) != len(tc.ids) {
				t.Errorf("chunks of %v ids; want %v, %d ids in all", got, tc.sizes, len(tc.ids))
			}
			for i := range all {
				if all[i] != tc.ids[i] {
					t.Fatalf("id %d is %q in the requests; want %q", i, all[i], tc.ids[i])
				}
			}
		})
	}
}
