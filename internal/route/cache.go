package route

import (
	"hash/maphash"
	"slices"
)

// entry is the cached route of one topic.
type entry[S comparable] struct {
	// What Route and replay read comes first, in one cache line.
	seq uint64 // the change log is replayed up to here
	// subs is shared with callers up to its length; seen bounds what of
	// its backing array may have been (see add).
	subs  []S
	seen  int
	topic string
	has   byteSet
	// memo is the pattern replay matched against topic last and matched
	// whether it matches: a pattern toggled over and over is matched once
	// (patterns never change, and holding memo keeps its address from
	// being reused).
	memo    *pat[S]
	matched bool

	// counts[i] is how many patterns of subs[i] match topic; nil means 1
	// each.
	counts []int32
	rev    string // topic reversed
	// Its nodes in the cachePre and cacheSuf trees.
	pre, suf *rnode[*entry[S]]
	slot     int // in Index.entries
}

// change is a logged change of a pattern, replayed by cache entries when
// they are next routed.
type change[S comparable] struct {
	p     *pat[S]
	s     S
	delta int32
}

// maxLog bounds the change log: entries that fall behind it are recomputed.
const maxLog = 64

// replayMax is the most logged changes a cached topic replays; one further
// behind is recomputed, which costs about as much as matching a few
// patterns and allocates once.
const replayMax = 8

// Route returns the subscribers an event on topic reaches, each once, in
// no particular order. The slice is shared and read-only, and never
// changes. A cached topic costs one map lookup and allocates nothing;
// another is matched only against the patterns that can match it (see the
// package doc), and cached if it was routed recently (see admit).
func (x *Index[S]) Route(topic string) []S {
	if x.cacheSize == 0 {
		return x.uncachedRoute(topic, 0)
	}
	e := x.cache[topic]
	if e == nil {
		h := maphash.String(x.seed, topic)
		if !x.admit(h) {
			return x.uncachedRoute(topic, h)
		}
		return x.fill(topic, h)
	}
	if e.seq != x.seq() {
		x.replay(e)
	}
	return e.subs[:len(e.subs):len(e.subs)]
}

// doorSize is how many recently routed uncached topics admit remembers, in
// sets of doorWays.
const (
	doorSize = 4096
	doorWays = 4
)

// admit reports whether to cache the route of topic, not in the cache: yes
// if it was routed recently, else it is remembered. Caching costs several
// times what matching does, so a topic routed once, as in a stream of
// topics never seen before, is not cached (the doorkeeper of TinyLFU); a
// topic routed again is. Topics are remembered by their hash, in a set of
// doorWays slots chosen by it, where they replace one another in turn, so
// topics routed in alternation are not kept from the cache by sharing a
// slot.
// h is the topic's maphash under x.seed.
func (x *Index[S]) admit(h uint64) bool {
	h |= 1 // 0 marks an empty slot
	set := x.door[h%(doorSize/doorWays)*doorWays:][:doorWays]
	for i, v := range set {
		if v == h {
			set[i] = 0
			return true
		}
	}
	x.doorNext++
	set[x.doorNext%doorWays] = h
	return false
}

// uncachedRoute returns the route of topic without the cache, in a slice
// of its own (nil if empty); h is as for lookup.
func (x *Index[S]) uncachedRoute(topic string, h uint64) []S {
	r := x.lookup(topic, h, nil)
	return r[:len(r):len(r)]
}

// fill computes, caches and returns the route of a topic not in the cache,
// whose maphash is h.
func (x *Index[S]) fill(topic string, h uint64) []S {
	if len(x.cache) >= x.cacheSize {
		x.evict()
	}
	// One allocation holds the topic and its reverse.
	b := make([]byte, 2*len(topic))
	for i := range len(topic) {
		b[i], b[len(b)-1-i] = topic[i], topic[i]
	}
	both := string(b)
	topic = both[:len(topic)]
	e := &entry[S]{topic: topic, rev: both[len(topic):], has: bytesOf(topic), seq: x.seq()}
	e.subs, e.counts = x.resolve(topic, h, e.has)
	e.seen = len(e.subs)
	x.cache[topic] = e
	e.slot = len(x.entries)
	x.entries = append(x.entries, e)
	e.pre, e.suf = x.cachePre.node(topic), x.cacheSuf.node(e.rev)
	e.pre.val, e.suf.val = e, e
	return e.subs[:len(e.subs):len(e.subs)]
}

// evict drops a quarter of the cache, at random.
func (x *Index[S]) evict() {
	for range max(x.cacheSize/4, 1) {
		// xorshift64*: cheap, and the same sequence each run, so that a
		// failing test replays.
		x.rand ^= x.rand >> 12
		x.rand ^= x.rand << 25
		x.rand ^= x.rand >> 27
		i := int((x.rand * 2685821657736338717) % uint64(len(x.entries)))
		e := x.entries[i]
		last := x.entries[len(x.entries)-1]
		x.entries[i], last.slot = last, i
		x.entries[len(x.entries)-1] = nil
		x.entries = x.entries[:len(x.entries)-1]
		delete(x.cache, e.topic)
		x.cachePre.delNode(e.pre)
		x.cacheSuf.delNode(e.suf)
	}
	if len(x.cache) == 0 {
		// No entry is behind the log any more.
		x.logBase += uint64(len(x.log))
		clear(x.log)
		x.log = x.log[:0]
	}
}

// dropCache empties the route cache (for benchmarks).
func (x *Index[S]) dropCache() {
	clear(x.cache)
	clear(x.entries)
	x.entries = x.entries[:0]
	x.cachePre, x.cacheSuf = radix[*entry[S]]{}, radix[*entry[S]]{}
	x.logBase += uint64(len(x.log))
	clear(x.log)
	x.log = x.log[:0]
}

// replay brings a cache entry up to date with the change log, and
// reports whether it did so by recomputing the entry from the index.
func (x *Index[S]) replay(e *entry[S]) (recomputed bool) {
	recomputed = e.seq < x.logBase || x.seq()-e.seq > replayMax
	if recomputed {
		e.subs, e.counts = x.resolve(e.topic, 0, e.has)
		e.seen = len(e.subs)
	} else {
		log := x.log[e.seq-x.logBase:]
		for i := range log {
			c := &log[i]
			if c.p != e.memo {
				e.match(c.p)
			}
			if e.matched && !e.toggle(c.s, c.delta) {
				e.add(c.s, c.delta)
			}
		}
	}
	e.seq = x.seq()
	return recomputed
}

// match matches p against the entry's topic, remembering p and the answer
// in memo and matched.
func (e *entry[S]) match(p *pat[S]) {
	e.memo = p
	// The common case, a glob lacking a byte, without a call.
	e.matched = !(p.kind == kindGlob && e.has.lacks(p.need)) && p.matches(e.topic, e.has)
}

// toggle does what add does in the two cases of a subscriber toggling a
// pattern, without searching subs, and reports whether it did: s leaving
// the end of the route, or joining it again where it left. (When the
// route is shorter than seen, the element past its end is the subscriber
// that left it last, so it is not in the route.)
func (e *entry[S]) toggle(s S, delta int32) bool {
	n := len(e.subs)
	if e.counts != nil {
		return false
	}
	if delta > 0 {
		if n < e.seen && e.subs[:n+1][n] == s {
			e.subs = e.subs[:n+1]
			return true
		}
	} else if n > 0 && n == e.seen && e.subs[n-1] == s {
		e.subs = e.subs[:n-1]
		return true
	}
	return false
}

// add records that one more (delta 1) or one fewer (delta -1) pattern of s
// matches the entry's topic, replacing subs if s joins or leaves it.
//
// Routes are handed out capped at their length, and no element of the
// backing array below seen, which they may show, is ever written again.
// So s may join by appending into capacity at or past seen, or, if it left
// the end of the route last (a subscriber toggling a pattern), by
// re-extending over its own old slot; and the last element may leave by
// shortening the route, once (so at most one removed subscriber stays
// reachable from the entry). Anything else copies.
func (e *entry[S]) add(s S, delta int32) {
	i := slices.Index(e.subs, s)
	n := len(e.subs)
	if delta > 0 {
		if i >= 0 {
			e.countsFor()[i]++
			return
		}
		switch {
		case n < e.seen && e.subs[:n+1][n] == s:
			e.subs = e.subs[:n+1]
		case n == e.seen && n < cap(e.subs):
			e.subs = append(e.subs, s)
			e.seen++
		default:
			subs := make([]S, n+1, n+n/4+2)
			copy(subs, e.subs)
			subs[n] = s
			e.subs, e.seen = subs, n+1
		}
		if e.counts != nil {
			e.counts = append(e.counts[:n], 1)
		}
		return
	}
	if i < 0 {
		return
	}
	if e.counts != nil && e.counts[i] > 1 {
		e.counts[i]--
		return
	}
	if i == n-1 && n == e.seen {
		e.subs = e.subs[:i]
		if e.counts != nil {
			e.counts = e.counts[:i]
		}
		return
	}
	subs := make([]S, n-1, n+n/4+1)
	copy(subs, e.subs[:i])
	copy(subs[i:], e.subs[i+1:])
	e.subs, e.seen = subs, n-1
	if e.counts != nil {
		e.counts = slices.Delete(e.counts, i, i+1)
	}
}

// countsFor returns e.counts, made explicit.
func (e *entry[S]) countsFor() []int32 {
	if e.counts == nil {
		e.counts = make([]int32, len(e.subs))
		for i := range e.counts {
			e.counts[i] = 1
		}
	}
	return e.counts
}

// seq returns the sequence number of the next change logged.
func (x *Index[S]) seq() uint64 { return x.logBase + uint64(len(x.log)) }

// touch brings the route cache up to date with s gaining (delta 1) or
// losing (delta -1) pattern p. A change that may concern at most eagerMax
// cached topics updates them now; one that may concern more ("*", a
// residual glob, a pattern whose literal many cached topics share) is
// logged, and each cached topic replays it when next routed, so the work
// follows the topics routed, not the size of the cache.
func (x *Index[S]) touch(p *pat[S], s S, delta int32) {
	if len(x.cache) == 0 {
		return
	}
	var tree *radix[*entry[S]]
	var key string
	switch {
	case p.kind == kindExact:
		if e := x.cache[p.src]; e != nil {
			x.apply(e, p, s, delta)
		}
		return
	case p.kind == kindAll || p.residual():
	case p.inSuf:
		tree, key = &x.cacheSuf, p.rsuf
	default: // below, or a glob filed by its prefix
		tree, key = &x.cachePre, p.pre
	}
	if tree == nil || tree.count(key) > x.eagerMax {
		x.logChange(p, s, delta)
		return
	}
	tree.under(key, func(e **entry[S]) { x.apply(*e, p, s, delta) })
}

// apply applies a change to one cached entry now. An entry behind the log
// replays it first, so that it sees every change in order (a change may
// be logged and a later change of the same pattern applied now, when
// fewer cached topics share its literal); if that recomputes the entry
// from the index, which already holds this change, nothing is left to do.
func (x *Index[S]) apply(e *entry[S], p *pat[S], s S, delta int32) {
	if e.seq != x.seq() && x.replay(e) {
		return
	}
	if p.matches(e.topic, e.has) {
		e.add(s, delta)
	}
}

// eagerMax is the most cached topics a change updates at once (tests
// vary it per index).
const eagerMax = 32

// logChange appends a change to the log, forgetting the older half of the
// log when it is full: entries still behind it are recomputed when next
// routed.
func (x *Index[S]) logChange(p *pat[S], s S, delta int32) {
	x.log = append(x.log, change[S]{p: p, s: s, delta: delta})
	if len(x.log) > maxLog {
		half := len(x.log) / 2
		n := copy(x.log, x.log[half:])
		clear(x.log[n:])
		x.log = x.log[:n]
		x.logBase += uint64(half)
	}
}
