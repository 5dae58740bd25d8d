package eventbus

import "iter"

// tailSize is how many recent events the loop keeps for rejoins: a power
// of two, so a Seq's low bits pick its slot (the line after fails to
// compile otherwise).
const tailSize = 1024

var _ = [1]struct{}{}[tailSize&(tailSize-1)]

// tail is a ring of the most recent events the loop has fanned out, with
// consecutive Seqs, so a catch-up goroutine can be taken back live without
// the loop reading the store. It belongs to the loop. It holds the stored
// events only: a lagging subscription is owed nothing else, and an event
// that was never stored is not kept alive once delivered.
type tail struct {
	ring []envelope // zero for an event that was not stored
	n    int        // entries held
	last uint64     // Seq of the newest entry (or the store's LastSeq at start)
}

// init makes the ring.
func (t *tail) init(last uint64) {
	t.ring = make([]envelope, tailSize)
	t.last = last
}

// add records the next event, it.e.Seq == t.last+1; stored says whether
// the store has it.
func (t *tail) add(it *item, stored bool) {
	if len(t.ring) == 0 {
		return
	}
	t.last = it.e.Seq
	slot := &t.ring[t.last&uint64(len(t.ring)-1)]
	if stored {
		slot.e, slot.at = it.e, it.at
	} else {
		*slot = envelope{}
	}
	t.n = min(t.n+1, len(t.ring))
}

// covers reports whether every event from Seq from on is in the ring.
func (t *tail) covers(from uint64) bool {
	return from+uint64(t.n) > t.last
}

// since yields the Seqs from from on, oldest first, with their events (nil
// for one that was not stored). covers(from) must hold.
func (t *tail) since(from uint64) iter.Seq2[uint64, *envelope] {
	return func(yield func(uint64, *envelope) bool) {
		for seq := from; seq <= t.last; seq++ {
			env := &t.ring[seq&uint64(len(t.ring)-1)]
			if env.e.Seq != seq {
				env = nil // not stored
			}
			if !yield(seq, env) {
				return
			}
		}
	}
}
