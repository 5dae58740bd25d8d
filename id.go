package eventbus

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idSource is a monotonic ULID source: within a millisecond the 80-bit
// entropy counts up from a random start, so IDs made in one goroutine sort
// in creation order. Unlike ulid.Make it allocates nothing. The entropy is
// kept as two integers, hi (16 bits) and lo (64), so counting up is an
// increment.
type idSource struct {
	mu     sync.Mutex
	ms     uint64 // time part of the last ID
	hi     uint16 // entropy, high 16 bits
	lo     uint64 // entropy, low 64 bits
	seeded bool
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
	case ms > s.ms || !s.seeded:
		s.ms, s.seeded = max(ms, s.ms), true
		var r [10]byte
		_, _ = rand.Read(r[:]) // never fails (crypto/rand.Read doc)
		s.hi, s.lo = binary.BigEndian.Uint16(r[:2]), binary.BigEndian.Uint64(r[2:])
	default:
		if s.lo++; s.lo == 0 {
			if s.hi++; s.hi == 0 {
				// The counter wrapped, which takes 2^80 IDs: move to the
				// next millisecond rather than repeat one.
				s.ms++
			}
		}
	}
	var id ulid.ULID // 48 bits of time, then 80 of entropy, big-endian
	binary.BigEndian.PutUint64(id[:8], s.ms<<16|uint64(s.hi))
	binary.BigEndian.PutUint64(id[8:], s.lo)
	return id
}
