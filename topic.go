package eventbus

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/match"
)

const (
	// MaxTopicLen is the longest topic or pattern, in bytes.
	MaxTopicLen = 255
	// MaxPatternStars is the most '*' wildcards one pattern may hold.
	MaxPatternStars = 8
	// matchComplexity bounds the work of one glob match (see match.MatchLimit).
	matchComplexity = 256
)

// ValidateTopic reports whether topic is a valid topic: 1–255 bytes of
// dot-separated, non-empty segments, each made of printable non-space
// characters other than '*', '?', '\' and '.'. A segment that is exactly
// ">" or "#" (the NATS and MQTT multi-level wildcards) is refused, so that
// a topic never looks like a wildcard. The error wraps ErrInvalidTopic and
// names the reason.
func ValidateTopic(topic string) error {
	if reason := checkName(topic, false); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidTopic, clip(topic), reason)
	}
	return nil
}

// ValidatePattern reports whether pattern is a valid subscription pattern: a
// topic in which segments may also hold the wildcards '*' (any run of
// characters, dots included) and '?' (exactly one character), with at most
// MaxPatternStars stars. A segment that is exactly ">" or "#" is refused
// with a hint: those are NATS and MQTT wildcards, and here "orders.*"
// matches every topic below orders. The error wraps ErrInvalidPattern and
// names the reason.
func ValidatePattern(pattern string) error {
	if reason := checkName(pattern, true); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidPattern, clip(pattern), reason)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// checkName validates a topic, or a pattern if wild is set, and returns the
// reason it is invalid, or "" if it is valid.
func checkName(s string, wild bool) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > MaxTopicLen:
		return fmt.Sprintf("longer than %d bytes", MaxTopicLen)
	}
	if !wild && plainTopic(s) {
		return ""
	}
	return checkNameSlow(s, wild)
}

// checkNameSlow is checkName byte by byte, for patterns, non-ASCII topics
// and the errors. s is neither empty nor too long.
func checkNameSlow(s string, wild bool) string {
	stars, segLen, segStart := 0, 0, 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '.':
				if segLen == 0 {
					return "empty segment"
				}
				if reason := foreignWildcard(s, segStart, i-1, wild); reason != "" {
					return reason
				}
				segLen, segStart = 0, i
				continue
			case c == '*' || c == '?':
				if !wild {
					return fmt.Sprintf("wildcard %q in a topic", c)
				}
				if c == '*' {
					if stars++; stars > MaxPatternStars {
						return fmt.Sprintf("more than %d '*' wildcards", MaxPatternStars)
					}
				}
			case c == '\\':
				return "backslash"
			case c <= ' ' || c == 0x7f:
				return "whitespace or control character"
			}
			segLen++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "invalid UTF-8"
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "whitespace or control character"
		}
		i += size
		segLen++
	}
	if segLen == 0 {
		return "empty segment"
	}
	return foreignWildcard(s, segStart, len(s), wild)
}

// foreignWildcard returns why the segment s[start:end] is refused if it is
// exactly ">" (NATS's multi-level wildcard) or "#" (MQTT's), with a hint
// naming what '*' does here; otherwise "".
func foreignWildcard(s string, start, end int, wild bool) string {
	if end-start != 1 || (s[start] != '>' && s[start] != '#') {
		return ""
	}
	what := fmt.Sprintf("%q is a NATS wildcard", s[start:end])
	if s[start] == '#' {
		what = fmt.Sprintf("%q is an MQTT wildcard", s[start:end])
	}
	switch {
	case !wild:
		return what + ", not a topic segment"
	case len(s) == 1:
		return what + `; here "*" matches every topic`
	case end == len(s):
		parent := clip(s[:start-1])
		return fmt.Sprintf("%s; here %q matches every topic below %s", what, parent+".*", parent)
	}
	return fmt.Sprintf("%s; here '*' matches any run of characters, dots included, as in %q", what, clip(s[:start]+"*"+s[end:]))
}

// plainTopic reports whether s is dot-separated, non-empty segments of
// printable ASCII other than '*', '?', '\\', '>' and '#': the common topic,
// checked in one pass of table lookups. Anything else goes the long way
// (including '>' and '#', which are refused as a whole segment only).
func plainTopic(s string) bool {
	segLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainTopicByte[c] {
			segLen++
			continue
		}
		if c != '.' || segLen == 0 {
			return false
		}
		segLen = 0
	}
	return segLen > 0
}

// plainTopicByte marks the printable ASCII bytes that stand for themselves
// in any topic segment.
var plainTopicByte = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = c != '.' && c != '*' && c != '?' && c != '\\' && c != '>' && c != '#'
	}
	return t
}()

// Match reports whether topic matches pattern: '*' matches any run of
// characters, dots included, and '?' exactly one character. So "*" matches
// every topic and "worker.*" every topic strictly below "worker", at any
// depth. Match returns false if either argument is invalid.
func Match(pattern, topic string) bool {
	if checkName(topic, false) != "" || checkName(pattern, true) != "" {
		return false
	}
	return classify(pattern).matches(topic)
}

// patternKind says how a valid pattern is routed.
type patternKind uint8

const (
	kindExact  patternKind = iota // no wildcard: map lookup
	kindAll                       // "*"
	kindPrefix                    // "literal.*": parent-prefix lookup
	kindGlob                      // anything else: matched per topic, cached
)

// pattern is a valid pattern with its routing class. For kindPrefix, key is
// the literal part before ".*"; otherwise it is the pattern itself.
type pattern struct {
	kind patternKind
	key  string
	src  string
}

func classify(p string) pattern {
	switch {
	case p == "*":
		return pattern{kind: kindAll, key: p, src: p}
	case !strings.ContainsAny(p, "*?"):
		return pattern{kind: kindExact, key: p, src: p}
	case strings.HasSuffix(p, ".*") && !strings.ContainsAny(p[:len(p)-2], "*?"):
		return pattern{kind: kindPrefix, key: p[:len(p)-2], src: p}
	}
	return pattern{kind: kindGlob, key: p, src: p}
}

// matches reports whether a valid topic matches the pattern.
func (p pattern) matches(topic string) bool {
	switch p.kind {
	case kindAll:
		return true
	case kindExact:
		return topic == p.key
	case kindPrefix:
		return len(topic) > len(p.key)+1 && topic[len(p.key)] == '.' && strings.HasPrefix(topic, p.key)
	}
	ok, stopped := match.MatchLimit(topic, p.key, matchComplexity)
	return ok && !stopped
}

// routeTable is an immutable index from topics to the subscriptions they
// reach. It is rebuilt on every (un)subscribe and published through an
// atomic.Pointer; a published table is never modified.
type routeTable struct {
	exact  map[string][]*Subscription
	prefix map[string][]*Subscription
	all    []*Subscription
	globs  []globRoute
	// multi is set when some subscription has more than one pattern, so a
	// lookup may find it twice and must de-duplicate.
	multi bool
	// patterns counts subscriptions per pattern, for Stats.
	patterns map[string]int
	subs     int
}

type globRoute struct {
	p   pattern
	sub *Subscription
}

var emptyRoutes = &routeTable{}

// buildRoutes indexes the given subscriptions by their patterns.
func buildRoutes(subs map[*Subscription][]pattern) *routeTable {
	rt := &routeTable{
		exact:    make(map[string][]*Subscription),
		prefix:   make(map[string][]*Subscription),
		patterns: make(map[string]int),
		subs:     len(subs),
	}
	for s, ps := range subs {
		if len(ps) > 1 {
			rt.multi = true
		}
		for _, p := range ps {
			rt.patterns[p.src]++
			switch p.kind {
			case kindAll:
				rt.all = append(rt.all, s)
			case kindExact:
				rt.exact[p.key] = append(rt.exact[p.key], s)
			case kindPrefix:
				rt.prefix[p.key] = append(rt.prefix[p.key], s)
			default:
				rt.globs = append(rt.globs, globRoute{p: p, sub: s})
			}
		}
	}
	return rt
}

// lookup appends to dst, once each, the subscriptions an event on topic
// reaches. It costs one map lookup per dot in topic plus one glob match per
// glob pattern, whatever the number of subscriptions.
func (rt *routeTable) lookup(topic string, dst []*Subscription) []*Subscription {
	start := len(dst)
	dst = append(dst, rt.exact[topic]...)
	dst = append(dst, rt.all...)
	if len(rt.prefix) > 0 {
		for i := 1; i < len(topic); i++ {
			if topic[i] == '.' {
				dst = append(dst, rt.prefix[topic[:i]]...)
			}
		}
	}
	for i := range rt.globs {
		if rt.globs[i].p.matches(topic) {
			dst = append(dst, rt.globs[i].sub)
		}
	}
	if rt.multi && len(dst)-start > 1 {
		dst = dedup(dst, start)
	}
	return dst
}

// dedup removes repeated subscriptions from dst[start:], keeping the first.
func dedup(dst []*Subscription, start int) []*Subscription {
	seen := make(map[*Subscription]struct{}, len(dst)-start)
	out := dst[:start]
	for _, s := range dst[start:] {
		if _, ok := seen[s]; ok {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	clear(dst[len(out):])
	return out
}

// maxRouteCache bounds the per-topic route cache of the bus loop.
const maxRouteCache = 4096

// routeCache memoises routeTable.lookup per topic for one table. It belongs
// to the bus loop and is not safe for concurrent use. A flood of distinct
// topics evicts entries at random (as NATS does), so it never grows past
// maxRouteCache.
type routeCache struct {
	table   *routeTable
	entries map[string][]*Subscription
	off     bool // testing: route without the cache
	scratch []*Subscription
	// The last topic routed and its result: runs of events on one topic
	// skip the map lookup.
	lastTopic string
	lastSubs  []*Subscription
}

// route returns the subscriptions an event on topic reaches under rt. The
// result is shared: callers must not modify it.
func (c *routeCache) route(rt *routeTable, topic string) []*Subscription {
	if c.off {
		c.scratch = rt.lookup(topic, c.scratch[:0])
		return c.scratch
	}
	if c.table != rt {
		c.table = rt
		clear(c.entries)
		c.lastTopic, c.lastSubs = "", nil
	}
	if topic == c.lastTopic && c.lastTopic != "" {
		return c.lastSubs
	}
	subs, ok := c.entries[topic]
	if !ok {
		subs = c.fill(rt, topic)
	}
	c.lastTopic, c.lastSubs = topic, subs
	return subs
}

// fill computes and caches the route of topic, evicting at random when the
// cache is full.
func (c *routeCache) fill(rt *routeTable, topic string) []*Subscription {
	if c.entries == nil {
		c.entries = make(map[string][]*Subscription)
	}
	if len(c.entries) >= maxRouteCache {
		n := maxRouteCache / 4
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n == 0 {
				break
			}
		}
	}
	subs := rt.lookup(topic, nil)
	c.entries[strings.Clone(topic)] = subs
	return subs
}
