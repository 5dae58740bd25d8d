package route

import "strings"

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
	need   byteSet
	minLen int    // glob: the fewest bytes a matching topic has
	g      glob   // glob: compiled
	pre    string // glob: literal prefix; below: "k."
	suf    string // glob: literal suffix
	src    string

	rsuf string // suf reversed
	tri  uint32 // residual glob: 3 bytes of its longest literal run (see triOf), or 0
	slot int    // glob: position in its radix list or the residual list; exact, below: in Index.filter.keys
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
	return len(topic) >= p.minLen && !has.lacks(p.need) && p.g.match(topic)
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
		// Each byte but a star matches at least one byte.
		p.minLen = len(src) - strings.Count(src, "*")
		p.g = compile(src)
		if p.residual() {
			p.tri = infixOf(src)
		}
	}
	return p
}

// infixOf returns the first 3 bytes of the longest run of literal bytes in
// a glob (between its wildcards) as a triOf key, or 0 if no run is 3 bytes
// long: every topic the glob matches holds them.
func infixOf(src string) uint32 {
	best := ""
	for _, run := range strings.FieldsFunc(src, func(r rune) bool { return r == '*' || r == '?' }) {
		if len(run) > len(best) {
			best = run
		}
	}
	if len(best) < 3 {
		return 0
	}
	return triOf(best)
}

// triOf packs the first 3 bytes of s into a key, never 0: the bytes of a
// valid pattern or topic are not 0.
func triOf(s string) uint32 {
	return uint32(s[0])<<16 | uint32(s[1])<<8 | uint32(s[2])
}

// infixBuckets is the number of buckets of Index.infixN, a power of two.
const infixBuckets = 1 << 14

// triBucket is a key's bucket in Index.infixN.
func triBucket(key uint32) uint32 { return key * 0x9E3779B1 >> (32 - 14) }

// infixCounts counts the keys of Index.infix per triBucket and per first
// byte, so that a topic passes over its 3-byte pieces that start with a
// byte no key starts with by testing a bit, those in a bucket with no key
// by reading a count, and only looks the others up in the map.
type infixCounts struct {
	n      [infixBuckets]uint16
	firstN [256]uint32
	first  [4]uint64 // the bytes whose firstN is not 0
}

// inc counts one more key.
func (c *infixCounts) inc(key uint32) {
	c.n[triBucket(key)]++
	b := key >> 16
	c.firstN[b]++
	c.first[b/64] |= 1 << (b % 64)
}

// dec counts one fewer key, counted before.
func (c *infixCounts) dec(key uint32) {
	c.n[triBucket(key)]--
	b := key >> 16
	if c.firstN[b]--; c.firstN[b] == 0 {
		c.first[b/64] &^= 1 << (b % 64)
	}
}

// starts reports whether some key starts with byte b.
func (c *infixCounts) starts(b byte) bool { return c.first[b/64]&(1<<(b%64)) != 0 }

// meets reports whether a topic whose bytes are in has may hold a key:
// whether one of them starts a key (modulo 128, as byteSet).
func (c *infixCounts) meets(has byteSet) bool {
	return has[0]&(c.first[0]|c.first[2]) != 0 || has[1]&(c.first[1]|c.first[3]) != 0
}
