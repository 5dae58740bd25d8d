package eventbus_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

var withinCases = []struct {
	name    string
	pattern string
	allowed []string
	want    bool
}{
	{"exact in prefix", "a.b", []string{"a.*"}, true},
	{"exact equal", "a.b", []string{"a.b"}, true},
	{"exact outside", "a.b", []string{"a.c"}, false},
	{"parent not below", "a", []string{"a.*"}, false},
	{"deeper prefix", "public.a.*", []string{"public.*"}, true},
	{"one char below", "public.?", []string{"public.*"}, true},
	{"same prefix", "public.*", []string{"public.*"}, true},
	{"glob below", "public.*.x", []string{"public.*"}, true},
	{"star is everything", "*", []string{"public.*"}, false},
	{"question mark bypass", "s?cret.*", []string{"public.*"}, false},
	{"inner star bypass", "*ecret*", []string{"public.*"}, false},
	{"question mark crosses the dot", "public?x", []string{"public.*"}, false},
	{"wider prefix", "pub*", []string{"public.*"}, false},
	{"star allowed", "*", []string{"*"}, true},
	{"double star allowed", "a.*", []string{"**"}, true},
	{"anything in star", "s?cret.*", []string{"*"}, true},
	{"union covers", "a.*", []string{"a.b", "a.b.*", "a.?*"}, true},
	{"union of prefixes covers", "a.?", []string{"a.b", "a.c"}, false},
	{"star after dot needs a segment", "a.*", []string{"a.?*"}, true},
	{"star before dot needs a segment", "*.x", []string{"?*.x"}, true},
	{"nonempty suffix", "a*", []string{"a", "a?*"}, true},
	{"without the empty case", "a*", []string{"a?*"}, false},
	{"only wildcard segments are invalid", "a.?", []string{"a.x", "a.y*"}, false},
	{"suffix glob", "x.*.failed", []string{"*.failed"}, true},
	{"suffix glob outside", "x.*", []string{"*.failed"}, false},
	{"none allowed", "a", nil, false},
	{"invalid pattern", "a..b", []string{"*"}, false},
	{"NATS wildcard pattern", "a.>", []string{"*"}, false},
	{"invalid allowed ignored", "a.b", []string{"a..*", "a.b"}, true},
	{"only invalid allowed", "a.b", []string{"a..*"}, false},
	{"star not within a topic (shrunk by rapid)", "*", []string{"a"}, false},
	{"the same glob", "*a?b*", []string{"*a?b*"}, true},
	{"one or more characters", "a.*", []string{"a.?", "a.??*"}, true},
	{"two or more characters", "a.*", []string{"a.??*"}, false},
	{"unicode", "café.?", []string{"café.*"}, true},
	{"unicode outside", "caf?.x", []string{"café.*"}, false},
}

func TestPatternWithin(t *testing.T) {
	for _, tt := range withinCases {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, eventbus.PatternWithin(tt.pattern, tt.allowed...),
				"PatternWithin(%q, %q)", tt.pattern, tt.allowed)
			ok, witness := eventbus.WithinWitness(tt.pattern, tt.allowed...)
			require.Equal(t, tt.want, ok)
			if !ok && eventbus.ValidatePattern(tt.pattern) == nil {
				requireCounterexample(t, tt.pattern, tt.allowed, witness)
			}
		})
	}
}

// requireCounterexample checks that witness is a valid topic that pattern
// matches and none of allowed does.
func requireCounterexample(t require.TestingT, pattern string, allowed []string, witness string) {
	require.NoError(t, eventbus.ValidateTopic(witness), "witness %q", witness)
	require.True(t, eventbus.Match(pattern, witness), "%q does not match witness %q", pattern, witness)
	require.True(t, refMatch(pattern, witness))
	for _, a := range allowed {
		require.False(t, eventbus.Match(a, witness), "%q matches witness %q", a, witness)
		if eventbus.ValidatePattern(a) == nil {
			require.False(t, refMatch(a, witness))
		}
	}
}

// withinRunes are the characters the properties build patterns and topics
// from: a few letters, the dot, and the characters the topic rules single out.
const withinRunes = "abé.>#"

// fill returns a topic made from pattern by replacing each '*' with a run
// of 0–4 characters and each '?' with one, drawn from withinRunes and the
// characters of allowed.
func fill(t *rapid.T, pattern string, allowed []string) string {
	chars := []rune(withinRunes + "x" + strings.Join(allowed, ""))
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			for _, c := range rapid.SliceOfN(rapid.SampledFrom(chars), 0, 4).Draw(t, "star") {
				if c != '*' && c != '?' {
					b.WriteRune(c)
				}
			}
		case '?':
			c := rapid.SampledFrom(chars).Draw(t, "one")
			if c == '*' || c == '?' {
				c = 'x'
			}
			b.WriteRune(c)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestPatternWithinProperty: PatternWithin is sound (whenever it says
// true, topics made from pattern are matched by some allowed pattern) and
// exact (whenever it says false, it has found a valid topic that pattern
// matches and no allowed pattern does).
func TestPatternWithinProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pattern := segments("ab.>", true).Draw(t, "pattern")
		allowed := rapid.SliceOfN(segments("ab>", true), 1, 3).Draw(t, "allowed")
		if eventbus.ValidatePattern(pattern) != nil {
			require.False(t, eventbus.PatternWithin(pattern, allowed...))
			return
		}
		ok, witness := eventbus.WithinWitness(pattern, allowed...)
		if !ok {
			requireCounterexample(t, pattern, allowed, witness)
			return
		}
		for range 20 {
			topic := fill(t, pattern, allowed)
			if eventbus.ValidateTopic(topic) != nil {
				continue
			}
			require.True(t, refMatch(pattern, topic))
			covered := false
			for _, a := range allowed {
				if eventbus.ValidatePattern(a) == nil && refMatch(a, topic) {
					covered = true
				}
			}
			require.True(t, covered, "PatternWithin(%q, %q) but %q is matched by none", pattern, allowed, topic)
		}
	})
}

// TestPatternWithinExhaustive compares PatternWithin with brute force over
// every topic of up to 6 characters of a small alphabet, for patterns whose
// counterexamples, if any, are that short.
func TestPatternWithinExhaustive(t *testing.T) {
	var topics []string
	var grow func(prefix string)
	grow = func(prefix string) {
		if prefix != "" && eventbus.ValidateTopic(prefix) == nil {
			topics = append(topics, prefix)
		}
		if len(prefix) == 6 {
			return
		}
		for _, c := range "ab.>x" {
			grow(prefix + string(c))
		}
	}
	grow("")
	rapid.Check(t, func(t *rapid.T) {
		pattern := rapid.StringOfN(rapid.SampledFrom([]rune("ab.*?")), 1, 4, -1).Draw(t, "pattern")
		allowed := rapid.SliceOfN(rapid.StringOfN(rapid.SampledFrom([]rune("ab.*?")), 1, 4, -1), 1, 3).Draw(t, "allowed")
		if eventbus.ValidatePattern(pattern) != nil {
			return
		}
		for _, topic := range topics {
			if !eventbus.Match(pattern, topic) {
				continue
			}
			covered := false
			for _, a := range allowed {
				covered = covered || eventbus.Match(a, topic)
			}
			if !covered {
				require.False(t, eventbus.PatternWithin(pattern, allowed...), "%q is a counterexample", topic)
				return
			}
		}
	})
}

func FuzzPatternWithin(f *testing.F) {
	for _, tt := range withinCases {
		f.Add(tt.pattern, strings.Join(tt.allowed, " "))
	}
	f.Fuzz(func(t *testing.T, pattern, allowedList string) {
		allowed := strings.Fields(allowedList)
		ok, witness := eventbus.WithinWitness(pattern, allowed...)
		if eventbus.ValidatePattern(pattern) != nil {
			require.False(t, ok)
			return
		}
		if !ok && witness != "" {
			requireCounterexample(t, pattern, allowed, witness)
		}
		if ok {
			for _, a := range allowed {
				if a == pattern {
					return
				}
			}
			require.NotEmpty(t, allowed)
		}
		// A pattern is always within itself.
		require.True(t, eventbus.PatternWithin(pattern, pattern))
	})
}

func BenchmarkPatternWithin(b *testing.B) {
	allowed := []string{"public.*", "chat.*", "worker.*.progress"}
	for _, pattern := range []string{"public.news", "public.a.*", "*ecret*", "worker.build?.*.progress"} {
		b.Run("pattern="+pattern, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				eventbus.PatternWithin(pattern, allowed...)
			}
		})
	}
}
