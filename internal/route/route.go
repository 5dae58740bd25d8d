package route

import (
	"hash/maphash"
	"strings"
)

// Index maps topics to the subscribers whose patterns match them. It is not
// safe for concurrent use: one owner serialises every call, Route and
// Lookup included (Route fills the cache). Make one with New; the zero
// Index is not usable. S is the subscriber, typically a pointer.
type Index[S comparable] struct {
	pats     map[string]*pat[S] // every pattern with a subscriber, by source
	below    map[string]*pat[S] // "k.*" patterns by k
	all      *pat[S]            // "*", or nil
	prefixes radix[[]*pat[S]]   // globs by literal prefix
	suffixes radix[[]*pat[S]]   // globs by reversed literal suffix
	residual []*pat[S]          // globs with neither, and no literal run of 3 bytes
	// infix files the other residual globs by a 3-byte piece of their
	// longest literal run: a topic meets only those whose piece it holds.
	infix map[uint32]*[]*pat[S]
	// infixN counts the keys of infix, so that most of a topic's pieces
	// are passed over without a map lookup (nil while infix has never had
	// a key).
	infixN *infixCounts
	// filter holds the keys of exact and below, to pass over them
	// without a lookup in either map for most topics that match none.
	filter    keyFilter[S]
	filterMin int // see filterMin
	// dropped is the pattern dropped last, reused if it is added again
	// (a subscriber toggling a pattern).
	dropped *pat[S]

	subs  map[S]int32 // patterns per subscriber
	multi int         // subscribers with more than one pattern
	n     int         // subscriptions (subscriber, pattern)

	cacheSize int
	eagerMax  int // see touch
	cache     map[string]*entry[S]
	entries   []*entry[S]      // the cache's entries, to evict at random
	rand      uint64           // xorshift state for evict
	cachePre  radix[*entry[S]] // cached topics
	cacheSuf  radix[*entry[S]] // cached topics, reversed
	log       []change[S]      // "*" and residual changes not yet replayed by every entry
	logBase   uint64           // sequence number of log[0]

	door     *[doorSize]uint64 // hashes of topics routed once, see admit
	doorNext uint32            // the way admit replaces next
	seed     maphash.Seed

	scratch []S
	counts  map[S]int32
}

// New returns an empty index whose route cache holds up to cacheSize
// topics. With cacheSize 0 Route computes every route afresh.
func New[S comparable](cacheSize int) *Index[S] {
	return &Index[S]{
		pats:      make(map[string]*pat[S]),
		below:     make(map[string]*pat[S]),
		infix:     make(map[uint32]*[]*pat[S]),
		subs:      make(map[S]int32),
		cacheSize: max(cacheSize, 0),
		eagerMax:  eagerMax,
		filterMin: filterMin,
		rand:      0x9E3779B97F4A7C15,
		cache:     make(map[string]*entry[S]),
		door:      new([doorSize]uint64),
		seed:      maphash.MakeSeed(),
	}
}

// Add subscribes s to pattern, which must be valid. It returns false, and
// does nothing, if s already had pattern. Its cost depends on the pattern
// and on the (at most 32) cached topics it updates, not on the number of
// subscriptions.
func (x *Index[S]) Add(pattern string, s S) bool {
	p := x.pats[pattern]
	if p == nil {
		if p = x.dropped; p != nil && p.src == pattern {
			x.dropped = nil
		} else {
			p = classify[S](strings.Clone(pattern))
		}
		x.insert(p)
	}
	if !p.subs.add(s) {
		return false
	}
	x.n++
	x.subs[s]++
	if x.subs[s] == 2 {
		x.multi++
	}
	x.touch(p, s, 1)
	return true
}

// Remove unsubscribes s from pattern. It returns false, and does nothing,
// if s did not have pattern. The index may still refer to s for a while:
// the route cache's change log keeps up to 64 recent changes, and a cached
// route may keep the subscriber that left it last in its spare capacity,
// until the route changes again, is recomputed or is evicted.
func (x *Index[S]) Remove(pattern string, s S) bool {
	p := x.pats[pattern]
	if p == nil || !p.subs.remove(s) {
		return false
	}
	x.n--
	switch x.subs[s]--; x.subs[s] {
	case 0:
		delete(x.subs, s)
	case 1:
		x.multi--
	}
	x.touch(p, s, -1)
	if p.subs.len() == 0 {
		x.drop(p)
	}
	return true
}

// insert files a new pattern in the index.
func (x *Index[S]) insert(p *pat[S]) {
	x.pats[p.src] = p
	switch p.kind {
	case kindExact:
		x.filter.add(p, maphash.String(x.seed, p.src), x.filterMin)
	case kindAll:
		x.all = p
	case kindBelow:
		x.below[p.pre[:len(p.pre)-1]] = p
		x.filter.add(p, maphash.String(x.seed, p.pre), x.filterMin)
	case kindGlob:
		var list *[]*pat[S]
		switch {
		case p.residual() && p.tri != 0:
			list = x.infix[p.tri]
			if list == nil {
				list = new([]*pat[S])
				x.infix[p.tri] = list
				if x.infixN == nil {
					x.infixN = new(infixCounts)
				}
				x.infixN.inc(p.tri)
			}
		case p.residual():
			list = &x.residual
		case p.inSuf:
			list = x.suffixes.slot(p.rsuf)
		default:
			list = x.prefixes.slot(p.pre)
		}
		p.slot = len(*list)
		*list = append(*list, p)
	}
}

// drop removes a pattern that has no subscribers left from the index.
func (x *Index[S]) drop(p *pat[S]) {
	delete(x.pats, p.src)
	x.dropped = p
	if cap(p.subs.list) > setIndexAt {
		// The change log and cache entries (see entry.memo) may keep p
		// for a while: not its room for many subscribers.
		p.subs = set[S]{}
	}
	switch p.kind {
	case kindExact:
		x.filter.remove(p, x.filterMin)
	case kindAll:
		x.all = nil
	case kindBelow:
		delete(x.below, p.pre[:len(p.pre)-1])
		x.filter.remove(p, x.filterMin)
	case kindGlob:
		var tree *radix[[]*pat[S]]
		var key string
		var list *[]*pat[S]
		switch {
		case p.residual() && p.tri != 0:
			list = x.infix[p.tri]
		case p.residual():
			list = &x.residual
		case p.inSuf:
			tree, key = &x.suffixes, p.rsuf
			list = tree.get(key)
		default:
			tree, key = &x.prefixes, p.pre
			list = tree.get(key)
		}
		l := *list
		last := l[len(l)-1]
		l[p.slot], last.slot = last, p.slot
		l[len(l)-1] = nil
		*list = l[:len(l)-1]
		if len(*list) == 0 {
			switch {
			case tree != nil:
				tree.del(key)
			case p.tri != 0:
				delete(x.infix, p.tri)
				x.infixN.dec(p.tri)
			}
		}
	}
}

// Subscriptions returns the number of (subscriber, pattern) pairs.
func (x *Index[S]) Subscriptions() int { return x.n }

// Subscribers returns the number of distinct subscribers.
func (x *Index[S]) Subscribers() int { return len(x.subs) }

// Patterns returns the number of distinct patterns with a subscriber.
func (x *Index[S]) Patterns() int { return len(x.pats) }

// Count returns the number of subscribers of pattern.
func (x *Index[S]) Count(pattern string) int {
	if p := x.pats[pattern]; p != nil {
		return p.subs.len()
	}
	return 0
}

// ForEachPattern calls fn with each distinct pattern and its number of
// subscribers, in no particular order. fn must not call Add or Remove.
func (x *Index[S]) ForEachPattern(fn func(pattern string, n int)) {
	for src, p := range x.pats {
		fn(src, p.subs.len())
	}
}

// CacheLen returns the number of topics in the route cache.
func (x *Index[S]) CacheLen() int { return len(x.cache) }
