package route

import "math/bits"

// keyFilter is a Bloom filter over the keys of the exact and below
// patterns, consulted before the maps that hold them: with many patterns
// those maps are too large to stay in the processor's caches, and a topic
// routed for the first time would miss in them, in memory, once for itself
// and once for each of its parents, although it matches none. The filter
// takes 16 bits a key, so it stays in a near cache, and it answers "no"
// for all but about 2 % of the keys it lacks from one 64-bit word.
//
// A key is filed by the maphash of the exact topic, or of the below
// pattern's literal with its dot ("k." for "k.*", which no exact pattern
// ends with), and sets 2 bits of one word. The filter never answers "no"
// for a key it holds: a removed key leaves its bits set (stale), and the
// filter is rebuilt from the hashes of the keys it holds when stale and
// live keys together fill it, at a size for twice the live keys, so that
// growing and shrinking cost O(1) a change, amortised. It is off (every
// answer "maybe") while it holds fewer than Index.filterMin keys, when
// the maps are small enough to stay cached themselves.
type keyFilter[S comparable] struct {
	words []uint64 // a power of two of them; nil while off
	shift uint     // 64 - log2(len(words)): a hash's top bits pick its word
	// keys holds every key filed, at its pattern's slot, on or off.
	keys  []filterKey[S]
	stale int // keys removed since the last rebuild, their bits left set
}

// filterKey is a key of a keyFilter: its hash and its pattern.
type filterKey[S comparable] struct {
	h uint64
	p *pat[S]
}

// keysPerWord is how many keys a filter word holds at most before the
// filter is rebuilt (16 bits a key, 2 of them set).
const keysPerWord = 4

// filterMin is the fewest keys for which an index turns its filter on
// (tests vary it per index, in Index.filterMin); it is turned off again
// below half as many.
const filterMin = 1024

// on reports whether the filter is in use.
func (f *keyFilter[S]) on() bool { return f.words != nil }

// mask returns the bits of a key with hash h in its word.
func mask(h uint64) uint64 { return 1<<(h&63) | 1<<(h>>6&63) }

// mayHave reports whether a key with hash h may be filed; false means it
// is not. The filter must be on.
func (f *keyFilter[S]) mayHave(h uint64) bool {
	m := mask(h)
	return f.words[h>>f.shift]&m == m
}

// add files the key of p, whose hash is h, turning the filter on if it
// now holds least keys.
func (f *keyFilter[S]) add(p *pat[S], h uint64, least int) {
	p.slot = len(f.keys)
	f.keys = append(f.keys, filterKey[S]{h, p})
	switch {
	case !f.on():
		if len(f.keys) >= least {
			f.rebuild()
		}
	case len(f.keys)+f.stale > keysPerWord*len(f.words):
		f.rebuild()
	default:
		f.words[h>>f.shift] |= mask(h)
	}
}

// remove removes the key of p, turning the filter off if it now holds
// fewer than least/2 keys.
func (f *keyFilter[S]) remove(p *pat[S], least int) {
	last := len(f.keys) - 1
	moved := f.keys[last]
	f.keys[p.slot], moved.p.slot = moved, p.slot
	f.keys[last] = filterKey[S]{}
	f.keys = f.keys[:last]
	switch {
	case !f.on():
	case len(f.keys) < least/2:
		f.words, f.stale = nil, 0
	default:
		if f.stale++; len(f.keys)+f.stale > keysPerWord*len(f.words) {
			f.rebuild()
		}
	}
}

// rebuild sizes the filter for twice the keys it holds and files them
// afresh, with no stale bits.
func (f *keyFilter[S]) rebuild() {
	n := max((2*len(f.keys)+keysPerWord-1)/keysPerWord, 1)
	logn := bits.Len(uint(n - 1)) // len(words) = 1<<logn >= n
	if len(f.words) == 1<<logn {
		clear(f.words)
	} else {
		f.words = make([]uint64, 1<<logn)
	}
	f.shift = uint(64 - logn)
	for _, k := range f.keys {
		f.words[k.h>>f.shift] |= mask(k.h)
	}
	f.stale = 0
}
