package eventbus

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idSource is a monotonic ULID source: within a millisecond the 80-bit
// entropy counts up from a random start, so IDs made in one goroutine sort
// in creation order. Unlike ulid.Make it allocates nothing.
type idSource struct {
	mu      sync.Mutex
	ms      uint64
	entropy [10]byte
}

// ids is the process's one source, shared by NewEvent and every bus.
var ids idSource

// newID returns a fresh ULID for the time now.
func newID(now time.Time) ulid.ULID {
	s := lockIDs()
	id := s.next(ulid.Timestamp(now))
	s.unlock()
	return id
}

// lockIDs locks the source for a run of next calls: a bus loop stamps a
// whole batch under one lock.
func lockIDs() *idSource {
	ids.mu.Lock()
	return &ids
}

func (s *idSource) unlock() { s.mu.Unlock() }

// next returns the next ULID at or after millisecond ms. s must be locked.
func (s *idSource) next(ms uint64) ulid.ULID {
	if ms > s.ms {
		s.ms = ms
		_, _ = rand.Read(s.entropy[:]) // never fails (crypto/rand.Read doc)
	} else if incr(s.entropy[:]) {
		// The counter wrapped, which takes 2^80 IDs: move to the next
		// millisecond rather than repeat one.
		s.ms++
	}
	var id ulid.ULID
	_ = id.SetTime(s.ms)
	_ = id.SetEntropy(s.entropy[:])
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
