package eventbus

import (
	"testing"
	"time"
)

// TestLoopNow holds loop.now to its promise: the wall time is the last
// wall clock reading plus the monotonic time since, and a reading a second
// old is replaced by a fresh one.
func TestLoopNow(t *testing.T) {
	b := &Bus{epoch: time.Now()}
	l := &loop{b: b}

	before := time.Now()
	first, at := l.now()
	if first.Before(before) || first.After(time.Now()) {
		t.Fatalf("first reading %v is not between %v and now", first, before)
	}
	if at < 0 || at > b.clock() {
		t.Fatalf("clock %d is not between 0 and %d", at, b.clock())
	}

	// Within the second, the wall time follows the monotonic clock from
	// the last reading, even if that reading was far from the wall clock.
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	l.wall, l.wallAt = past, b.clock()
	got, at := l.now()
	if d := got.Sub(past); d < 0 || d > time.Second || time.Duration(at-l.wallAt) != d {
		t.Fatalf("within the second: got %v (%v after the reading), clock %d after it", got, d, at-l.wallAt)
	}

	// A reading a second old is replaced.
	l.wall, l.wallAt = past, b.clock()-int64(time.Second)
	before = time.Now()
	got, _ = l.now()
	if got.Before(before) || got.After(time.Now()) {
		t.Fatalf("after a second: got %v, want a fresh reading after %v", got, before)
	}
	if !l.wall.Equal(got) {
		t.Fatalf("the fresh reading %v was not kept (%v)", got, l.wall)
	}
}
