package eventbus

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/choiros/eventbus/internal/route"
)

const (
	// MaxTopicLen is the longest topic or pattern, in bytes.
	MaxTopicLen = 255
	// MaxPatternStars is the most '*' wildcards one pattern may hold.
	MaxPatternStars = 8
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
	return route.Match(p.key, topic)
}
