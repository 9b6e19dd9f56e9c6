package shard

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// The hash is hash/fnv's FNV-1a, byte for byte.
func TestHashIsFNV1a(t *testing.T) {
	want := fnv.New32a()
	want.Write(binary.LittleEndian.AppendUint64(nil, uint64(1795660468886840)))
	want.Write([]byte("page_view\x00web-shop"))
	got := New().Int64(1795660468886840).String("page_view").Byte(0).String("web-shop")
	if uint32(got) != want.Sum32() {
		t.Errorf("hash %d, hash/fnv's FNV-1a %d", uint32(got), want.Sum32())
	}
	if s := got.Of(256); s != int(want.Sum32()%256) {
		t.Errorf("shard %d of 256, want %d", s, want.Sum32()%256)
	}
}
