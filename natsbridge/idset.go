package natsbridge

import (
	"sync"

	"github.com/oklog/ulid/v2"
)

// idSet is a bounded set of event IDs that forgets the oldest when full:
// the IDs of the events that crossed the bridge, either way. It is safe for
// concurrent use.
// It grows as IDs arrive, up to its limit.
type idSet struct {
	mu    sync.Mutex
	limit int
	pos   map[ulid.ULID]int // ID -> its slot in ring
	ring  []ulid.ULID       // insertion order; once full, ring[next] is the oldest
	next  int
}

func newIDSet(limit int) *idSet {
	return &idSet{limit: limit, pos: make(map[ulid.ULID]int)}
}

// add inserts id and reports whether it was new.
func (s *idSet) add(id ulid.ULID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pos[id]; ok {
		return false
	}
	if len(s.ring) < s.limit {
		s.pos[id] = len(s.ring)
		s.ring = append(s.ring, id)
		return true
	}
	if old := s.ring[s.next]; s.has(old, s.next) {
		delete(s.pos, old) // unless it was removed, or removed and added again
	}
	s.ring[s.next] = id
	s.pos[id] = s.next
	s.next = (s.next + 1) % s.limit
	return true
}

// remove forgets id, so that it can be imported again (after a failure).
func (s *idSet) remove(id ulid.ULID) {
	s.mu.Lock()
	delete(s.pos, id)
	s.mu.Unlock()
}

// has reports whether id is in the set at slot i.
func (s *idSet) has(id ulid.ULID, i int) bool {
	j, ok := s.pos[id]
	return ok && j == i
}
