package eventbus

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ids is the process's one monotonic ULID source: within a millisecond the
// 80-bit entropy counts up from a random start, so IDs made in one goroutine
// sort in creation order. Unlike ulid.Make it allocates nothing.
var ids struct {
	mu      sync.Mutex
	ms      uint64
	entropy [10]byte
}

// newID returns a fresh ULID for the time now.
func newID(now time.Time) ulid.ULID {
	ms := ulid.Timestamp(now)
	var id ulid.ULID
	ids.mu.Lock()
	if ms > ids.ms {
		ids.ms = ms
		_, _ = rand.Read(ids.entropy[:]) // never fails (crypto/rand.Read doc)
	} else if incr(ids.entropy[:]) {
		// The counter wrapped, which takes 2^80 IDs: move to the next
		// millisecond rather than repeat one.
		ids.ms++
	}
	_ = id.SetTime(ids.ms)
	_ = id.SetEntropy(ids.entropy[:])
	ids.mu.Unlock()
	return id
}

// incr adds one to the big-endian number b and reports whether it wrapped.
func incr(b []byte) bool {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return false
		}
	}
	return true
}
