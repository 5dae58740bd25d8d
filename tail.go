package eventbus

import "iter"

// tailSize is how many recent events the loop keeps for hand-overs.
const tailSize = 1024

// tail is a ring of the most recent events the loop has fanned out, with
// consecutive Seqs, so a catch-up goroutine can be taken back live without
// the loop reading the store. It belongs to the loop (whoever holds
// Bus.run).
type tail struct {
	ring []tailEntry
	n    int    // entries held
	last uint64 // Seq of the newest entry (or the store's LastSeq at start)
}

type tailEntry struct {
	e       Event
	at      int64
	persist bool // stored, so a lagging subscription missed it
}

func (t *tail) init(size int, last uint64) {
	t.ring = make([]tailEntry, size)
	t.last = last
}

func (t *tail) add(it *item, persisted bool) {
	if len(t.ring) == 0 {
		return
	}
	t.last = it.e.Seq
	t.ring[t.last%uint64(len(t.ring))] = tailEntry{e: it.e, at: it.at, persist: persisted}
	t.n = min(t.n+1, len(t.ring))
}

// covers reports whether every event from Seq from on is in the ring.
func (t *tail) covers(from uint64) bool {
	return from+uint64(t.n) > t.last
}

// since yields the entries with Seq from on, oldest first. covers(from)
// must hold.
func (t *tail) since(from uint64) iter.Seq[*tailEntry] {
	return func(yield func(*tailEntry) bool) {
		for seq := from; seq <= t.last; seq++ {
			if !yield(&t.ring[seq%uint64(len(t.ring))]) {
				return
			}
		}
	}
}
