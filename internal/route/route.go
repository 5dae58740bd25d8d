// Package route indexes subscription patterns for the bus's router: which
// subscribers an event on a topic reaches, at a cost that does not depend on
// how many subscriptions exist.
//
// # Patterns
//
// A pattern is a topic, or a topic with wildcards: '*' matches any run of
// characters, dots included, and '?' exactly one character (see [Match]).
// The index sorts patterns into four shapes and stores each where a topic
// finds it without looking at the others:
//
//   - exact ("worker.task"): a map from the topic;
//   - all ("*"): one list;
//   - below ("worker.*", a literal then ".*"): a map from the literal, looked
//     up with each parent of the topic ("worker", "worker.task", …);
//   - glob (anything else): in a radix tree of literal prefixes (the text
//     before the first wildcard), walked along the topic's bytes, or in one
//     of reversed literal suffixes (the text after the last wildcard),
//     whichever literal is longer; a glob with neither ("*a*", "?*") is
//     residual and sits in a short list every topic is matched against.
//
// Patterns must be valid (the bus validates them): at most 255 bytes, at
// most 8 stars, non-empty dot-separated segments, valid UTF-8.
//
// # Route cache
//
// Route memoises the result per topic, up to a bound; when the cache is
// full a quarter of it is evicted at random, so a flood of topics nobody
// listens to costs bounded memory. Add and Remove keep the cache correct
// without flushing it: an exact pattern updates at most one entry; a below
// pattern and a glob update the cached topics that start with its literal
// prefix (or end with its literal suffix), found through radix trees of
// the cached topics, if there are at most 32 of them. "*", residual globs
// and patterns whose literal more cached topics share go instead to a
// short change log (64 changes) that a cached topic replays, matching only
// those patterns, the next time it is routed; a topic more than 8 changes
// behind is recomputed. So a change costs the same whatever the number of
// subscriptions, and the work of updating routes follows the topics that
// are routed, not the size of the cache. Each entry counts how many of a
// subscriber's patterns match its topic, so a subscriber with several
// matching patterns appears once and stays until the last of them is
// removed. A route handed out is never modified: a change replaces it, or
// reuses its backing array only where no route handed out can see a
// difference (they are capped at their length, so appending to one
// reallocates); see entry.add.
package route

import (
	"slices"
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
	residual []*pat[S]          // globs with neither
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

	scratch []S
	counts  map[S]int32
}

// kind is the shape of a pattern.
type kind uint8

const (
	kindExact kind = iota
	kindAll
	kindBelow
	kindGlob
)

// pat is one distinct pattern and its subscribers.
type pat[S comparable] struct {
	// What matches reads comes first.
	kind kind
	// inSuf says a glob is filed under its suffix (it is longer than the
	// prefix); residual globs have neither.
	inSuf bool
	// need holds the bytes of a glob's literal text: a topic lacking one
	// of them cannot match, and that check is cheaper than Match.
	need byteSet
	pre  string // glob: literal prefix; below: "k."
	suf  string // glob: literal suffix
	src  string

	rsuf string // suf reversed
	slot int    // glob: position in its radix list or the residual list
	subs set[S]
}

// byteSet is a set of bytes modulo 128: a filter, not an exact set.
type byteSet [2]uint64

// bytesOf returns the set of the bytes of s other than '*' and '?'.
func bytesOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		if c := s[i] & 127; c != '*' && c != '?' {
			b[c>>6] |= 1 << (c & 63)
		}
	}
	return b
}

// lacks reports whether some byte of need is not in b.
func (b byteSet) lacks(need byteSet) bool {
	return need[0]&^b[0] != 0 || need[1]&^b[1] != 0
}

// residual reports whether p is a glob with no literal prefix or suffix.
func (p *pat[S]) residual() bool { return p.kind == kindGlob && p.pre == "" && p.suf == "" }

// matches reports whether the valid topic, whose bytes are in has,
// matches p.
func (p *pat[S]) matches(topic string, has byteSet) bool {
	switch p.kind {
	case kindAll:
		return true
	case kindExact:
		return topic == p.src
	case kindBelow:
		return strings.HasPrefix(topic, p.pre) && len(topic) > len(p.pre)
	}
	return len(topic) >= len(p.pre)+len(p.suf) && !has.lacks(p.need) &&
		strings.HasPrefix(topic, p.pre) && strings.HasSuffix(topic, p.suf) &&
		Match(p.src, topic)
}

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

// New returns an empty index whose route cache holds up to cacheSize
// topics. With cacheSize 0 Route computes every route afresh.
func New[S comparable](cacheSize int) *Index[S] {
	return &Index[S]{
		pats:      make(map[string]*pat[S]),
		below:     make(map[string]*pat[S]),
		subs:      make(map[S]int32),
		cacheSize: max(cacheSize, 0),
		eagerMax:  eagerMax,
		rand:      0x9E3779B97F4A7C15,
		cache:     make(map[string]*entry[S]),
	}
}

// classify returns a new pattern record for the valid pattern src.
func classify[S comparable](src string) *pat[S] {
	p := &pat[S]{src: src}
	first := strings.IndexAny(src, "*?")
	switch {
	case src == "*":
		p.kind = kindAll
	case first < 0:
		p.kind = kindExact
	case first == len(src)-1 && strings.HasSuffix(src, ".*"):
		p.kind, p.pre = kindBelow, src[:len(src)-1]
	default:
		p.kind = kindGlob
		p.pre = src[:first]
		p.suf = src[strings.LastIndexAny(src, "*?")+1:]
		p.inSuf = len(p.suf) > len(p.pre)
		p.rsuf = reverse(p.suf)
		p.need = bytesOf(src)
	}
	return p
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
	case kindAll:
		x.all = p
	case kindBelow:
		x.below[p.pre[:len(p.pre)-1]] = p
	case kindGlob:
		var list *[]*pat[S]
		switch {
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
	switch p.kind {
	case kindAll:
		x.all = nil
	case kindBelow:
		delete(x.below, p.pre[:len(p.pre)-1])
	case kindGlob:
		var tree *radix[[]*pat[S]]
		var key string
		var list *[]*pat[S]
		switch {
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
		if len(*list) == 0 && tree != nil {
			tree.del(key)
		}
	}
}

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
	if tree == nil || tree.count(key, x.eagerMax+1) > x.eagerMax {
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

// seq returns the sequence number of the next change logged.
func (x *Index[S]) seq() uint64 { return x.logBase + uint64(len(x.log)) }

// Route returns the subscribers an event on topic reaches, each once, in
// no particular order. The slice is shared and read-only; it stays valid,
// and unchanged, until the next Add or Remove. A cached topic costs one map
// lookup and allocates nothing; a new topic is matched only against the
// patterns that can match it (see the package doc) and then cached.
func (x *Index[S]) Route(topic string) []S {
	if x.cacheSize == 0 {
		return x.Lookup(topic, nil)
	}
	e := x.cache[topic]
	if e == nil {
		return x.fill(topic)
	}
	if e.seq != x.seq() {
		x.replay(e)
	}
	return e.subs[:len(e.subs):len(e.subs)]
}

// fill computes, caches and returns the route of a topic not in the cache.
func (x *Index[S]) fill(topic string) []S {
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
	e.subs, e.counts = x.resolve(topic, e.has)
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
		e.subs, e.counts = x.resolve(e.topic, e.has)
		e.seen = len(e.subs)
	} else {
		log := x.log[e.seq-x.logBase:]
		for i := range log {
			c := &log[i]
			if c.p.kind == kindGlob && e.has.lacks(c.p.need) {
				continue // the common case, without a call
			}
			if c.p.matches(e.topic, e.has) {
				e.add(c.s, c.delta)
			}
		}
	}
	e.seq = x.seq()
	return recomputed
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

// Lookup appends to dst the subscribers an event on topic reaches, each
// once, without using or filling the route cache. It only reads the index:
// calls of Lookup, Count, Patterns, Subscribers, Subscriptions and
// ForEachPattern may run at the same time as each other (under a read
// lock, say), but not with Add, Remove or Route.
func (x *Index[S]) Lookup(topic string, dst []S) []S {
	start := len(dst)
	dst = x.collect(topic, bytesOf(topic), dst)
	if x.multi > 0 && len(dst)-start > 1 {
		n := len(unique(dst[start:]))
		clear(dst[start+n:])
		dst = dst[:start+n]
	}
	return dst
}

// unique moves the distinct elements of buf to its front, in their order,
// and returns them.
func unique[S comparable](buf []S) []S {
	out := buf[:0]
	if len(buf) <= 32 {
	next:
		for _, s := range buf {
			for _, t := range out {
				if s == t {
					continue next
				}
			}
			out = append(out, s)
		}
		return out
	}
	seen := make(map[S]struct{}, len(buf))
	for _, s := range buf {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// resolve computes the route of topic as a new slice, with counts if some
// subscriber has several patterns.
func (x *Index[S]) resolve(topic string, has byteSet) ([]S, []int32) {
	buf := x.collect(topic, has, x.scratch[:0])
	defer func() {
		clear(buf)
		x.scratch = buf[:0]
	}()
	if len(buf) == 0 {
		return nil, nil
	}
	if x.multi == 0 || len(buf) == 1 {
		return slices.Clone(buf), nil
	}
	return x.dedup(buf)
}

// dedup returns the distinct subscribers of buf in a new slice, and how
// many times each occurs (nil if once each).
func (x *Index[S]) dedup(buf []S) ([]S, []int32) {
	out := make([]S, 0, len(buf))
	var counts []int32
	if x.counts == nil {
		x.counts = make(map[S]int32)
	}
	repeated := false
	for _, s := range buf {
		if x.counts[s]++; x.counts[s] == 1 {
			out = append(out, s)
		} else {
			repeated = true
		}
	}
	if repeated {
		counts = make([]int32, len(out))
		for i, s := range out {
			counts[i] = x.counts[s]
		}
	}
	clear(x.counts)
	return out, counts
}

// collect appends to dst the subscribers of every pattern matching topic,
// a subscriber once per matching pattern.
func (x *Index[S]) collect(topic string, has byteSet, dst []S) []S {
	if p := x.pats[topic]; p != nil && p.kind == kindExact {
		dst = p.subs.appendTo(dst)
	}
	if x.all != nil {
		dst = x.all.subs.appendTo(dst)
	}
	if len(x.below) > 0 {
		for i := 1; i < len(topic); i++ {
			if topic[i] == '.' {
				if p := x.below[topic[:i]]; p != nil {
					dst = p.subs.appendTo(dst)
				}
			}
		}
	}
	globs := func(list *[]*pat[S]) {
		for _, p := range *list {
			if p.matches(topic, has) {
				dst = p.subs.appendTo(dst)
			}
		}
	}
	x.prefixes.prefixesOf(topic, false, globs)
	x.suffixes.prefixesOf(topic, true, globs)
	globs(&x.residual)
	return dst
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
