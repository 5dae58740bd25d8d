package natsbridge

import (
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
)

func TestIDSet(t *testing.T) {
	var a, b, c, d, e, f = ulid.Make(), ulid.Make(), ulid.Make(), ulid.Make(), ulid.Make(), ulid.Make()
	s := newIDSet(4)
	for _, id := range []ulid.ULID{a, b, c, d} {
		assert.True(t, s.add(id))
	}
	assert.False(t, s.add(a), "still remembered")

	// A removed ID is forgotten at once. Added again, it takes the oldest
	// slot (a's); when its former slot comes round, it is not forgotten.
	s.remove(c)
	assert.True(t, s.add(c), "removed, so new again") // slots: c b c d
	assert.True(t, s.add(e))                          // forgets b: c e c d
	assert.True(t, s.add(f))                          // reuses c's former slot: c e f d
	assert.False(t, s.add(c), "c is still remembered")
	assert.True(t, s.add(a), "a was forgotten") // forgets d: c e f a
	assert.True(t, s.add(d), "d was forgotten") // forgets c: d e f a
	assert.True(t, s.add(c), "c was forgotten in its turn")
	assert.Len(t, s.pos, 4)
	assert.Len(t, s.ring, 4)
}
