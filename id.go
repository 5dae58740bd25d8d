package eventbus

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idSource is a monotonic ULID source: within a millisecond the 80-bit
// entropy counts up from a random start, so IDs made in one goroutine sort
// in creation order. Unlike ulid.Make it allocates nothing. It keeps the
// last ID made and counts it up in place.
type idSource struct {
	mu   sync.Mutex
	ms   uint64    // the time part of last
	last ulid.ULID // 6 bytes of time, 10 of entropy
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
	switch {
	case ms > s.ms:
		s.ms = ms
		_ = s.last.SetTime(ms)
		_, _ = rand.Read(s.last[6:]) // never fails (crypto/rand.Read doc)
	case incr(s.last[6:]):
		// The counter wrapped, which takes 2^80 IDs: move to the next
		// millisecond rather than repeat one.
		s.ms++
		_ = s.last.SetTime(s.ms)
	}
	return s.last
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
