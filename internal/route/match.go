package route

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether topic matches pattern: '*' matches any run of
// characters, dots included, and '?' exactly one character (one UTF-8
// rune, as in github.com/tidwall/match). It agrees with match.Match for
// valid UTF-8 inputs without backslashes, which is what the bus validates.
//
// Match costs O(len(pattern)×len(topic)) steps at most, with no recursion
// and no complexity limit: the literal text before the first '*' must match
// at the start of topic, the text after the last '*' at its end, and every
// run between two stars is matched at its leftmost place in what remains.
// Leftmost is always right: a '*' can absorb whatever the run skipped, and
// matching a run earlier leaves more topic for the runs after it. This is
// the classic greedy matcher that remembers the last '*' and resumes one
// character further on a mismatch, done one run at a time.
func Match(pattern, topic string) bool {
	first := strings.IndexByte(pattern, '*')
	if first < 0 {
		return matchHead(pattern, topic) == len(topic)
	}
	last := strings.LastIndexByte(pattern, '*')
	topic, ok := trimEnds(pattern[:first], pattern[last+1:], topic)
	if !ok {
		return false
	}
	var mid string
	if first < last {
		mid = pattern[first+1 : last]
	}
	ascii := -1 // whether topic is ASCII: 1 or 0 once known
	for mid != "" {
		var run string
		if i := strings.IndexByte(mid, '*'); i >= 0 {
			run, mid = mid[:i], mid[i+1:]
		} else {
			run, mid = mid, ""
		}
		if run == "" {
			continue
		}
		end := find(run, strings.IndexByte(run, '?') >= 0, topic, &ascii)
		if end < 0 {
			return false
		}
		topic = topic[end:]
	}
	return true
}

// glob is a valid pattern split at its stars, to match many topics
// without parsing it each time: g.match(topic) == Match(pattern, topic).
type glob struct {
	star       bool   // the pattern has a '*'
	head, tail string // the text before the first '*' (all of it if none) and after the last
	runs       []run  // the non-empty runs between stars
}

// run is a run of a pattern between two stars.
type run struct {
	s string
	q bool // s holds a '?'
}

// compile splits a valid pattern at its stars.
func compile(pattern string) glob {
	first := strings.IndexByte(pattern, '*')
	if first < 0 {
		return glob{head: pattern}
	}
	last := strings.LastIndexByte(pattern, '*')
	g := glob{star: true, head: pattern[:first], tail: pattern[last+1:]}
	if first < last {
		for r := range strings.SplitSeq(pattern[first+1:last], "*") {
			if r != "" {
				g.runs = append(g.runs, run{r, strings.IndexByte(r, '?') >= 0})
			}
		}
	}
	return g
}

// match reports whether topic matches the pattern g was compiled from.
func (g *glob) match(topic string) bool {
	if !g.star {
		return matchHead(g.head, topic) == len(topic)
	}
	topic, ok := trimEnds(g.head, g.tail, topic)
	if !ok {
		return false
	}
	ascii := -1
	for _, r := range g.runs {
		end := find(r.s, r.q, topic, &ascii)
		if end < 0 {
			return false
		}
		topic = topic[end:]
	}
	return true
}

// trimEnds matches head at the start of topic and tail at the end of what
// is left, and returns what is between them.
func trimEnds(head, tail, topic string) (string, bool) {
	n := matchHead(head, topic)
	if n < 0 {
		return "", false
	}
	topic = topic[n:]
	n = matchTail(tail, topic)
	if n < 0 {
		return "", false
	}
	return topic[:len(topic)-n], true
}

// find finds the leftmost place in s where run (no '*', not empty; q says
// whether it holds a '?') matches and returns the offset just past it, or
// -1. *ascii caches whether s is ASCII (-1: not known yet).
func find(run string, q bool, s string, ascii *int) int {
	if !q {
		// A literal run is valid UTF-8 starting at a rune, so a byte
		// match is a rune match.
		if end := strings.Index(s, run); end >= 0 {
			return end + len(run)
		}
		return -1
	}
	if *ascii < 0 {
		*ascii = isASCII(s)
	}
	if *ascii == 1 {
		return findMasked(run, s)
	}
	return findRun(run, s)
}

// matchHead matches run, which has no '*', at the start of s and returns
// the number of bytes of s it covers, or -1.
func matchHead(run, s string) int {
	j := 0
	for i := 0; i < len(run); i++ {
		if j >= len(s) {
			return -1
		}
		if c := run[i]; c == '?' {
			j += runeLen(s, j)
		} else if c != s[j] {
			return -1
		} else {
			j++
		}
	}
	return j
}

// matchTail matches run, which has no '*', at the end of s and returns the
// number of bytes of s it covers, or -1.
func matchTail(run, s string) int {
	j := len(s)
	for i := len(run) - 1; i >= 0; i-- {
		if j <= 0 {
			return -1
		}
		if c := run[i]; c == '?' {
			_, size := utf8.DecodeLastRuneInString(s[:j])
			j -= size
		} else if c != s[j-1] {
			return -1
		} else {
			j--
		}
	}
	return len(s) - j
}

// findRun finds the leftmost place in s where run (no '*', not empty)
// matches and returns the offset just past it, or -1. It steps one rune at
// a time; findMasked is the same for an ASCII s, eight bytes at a time.
func findRun(run, s string) int {
	// A run needs at least one byte per pattern byte ('?' matches one to
	// four), so only places with len(run) bytes left can match.
	for i := 0; i <= len(s)-len(run); i += runeLen(s, i) {
		if n := matchHead(run, s[i:]); n >= 0 {
			return i + n
		}
	}
	return -1
}

// runeLen returns the length in bytes of the rune starting at s[i]. s is
// valid UTF-8; on invalid input the result is still between 1 and what is
// left of s, so nothing loops or panics.
func runeLen(s string, i int) int {
	c := s[i]
	if c < utf8.RuneSelf {
		return 1
	}
	n := int(leadLen[c])
	if n == 0 || i+n > len(s) {
		return 1
	}
	return n
}

// leadLen is the length of a UTF-8 sequence by its first byte, 0 where the
// byte cannot start one.
var leadLen = func() (t [256]uint8) {
	for c := 0xC2; c <= 0xDF; c++ {
		t[c] = 2
	}
	for c := 0xE0; c <= 0xEF; c++ {
		t[c] = 3
	}
	for c := 0xF0; c <= 0xF4; c++ {
		t[c] = 4
	}
	return t
}()

// isASCII returns 1 if s is all ASCII, else 0.
func isASCII(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return 0
		}
	}
	return 1
}

// findMasked is findRun for an ASCII s, where '?' matches exactly one
// byte: it compares eight bytes at a time, with the '?' bytes masked out.
// run is at most 255 bytes.
func findMasked(run, s string) int {
	n := len(run)
	if n < 8 {
		for i := 0; i+n <= len(s); i++ {
			if matchHead(run, s[i:]) >= 0 {
				return i + n
			}
		}
		return -1
	}
	// Words 0..n/8-1 of run, then the word of its last eight bytes.
	var lit, mask [33]uint64
	words := n / 8
	for w := range words {
		lit[w], mask[w] = maskedWord(run[8*w:])
	}
	lit[words], mask[words] = maskedWord(run[n-8:])
	for i := 0; i+n <= len(s); i++ {
		w := 0
		for w < words && load64(s[i+8*w:])&mask[w] == lit[w] {
			w++
		}
		if w == words && load64(s[i+n-8:])&mask[words] == lit[words] {
			return i + n
		}
	}
	return -1
}

// maskedWord returns the first eight bytes of run as a little-endian word
// with its '?' bytes zeroed, and the mask that zeroes them.
func maskedWord(run string) (lit, mask uint64) {
	for k := 7; k >= 0; k-- {
		lit, mask = lit<<8, mask<<8
		if run[k] != '?' {
			lit |= uint64(run[k])
			mask |= 0xFF
		}
	}
	return lit, mask
}

// load64 returns the first eight bytes of s as a little-endian word.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
