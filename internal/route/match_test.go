package route

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/match"
	"pgregory.net/rapid"
)

var matchCases = []struct {
	pattern, topic string
	want           bool
}{
	{"*", "a", true},
	{"*", "worker.task.complete", true},
	{"worker.*", "worker.task", true},
	{"worker.*", "worker.task.complete", true},
	{"worker.*", "worker", false},
	{"worker.*", "workers.task", false},
	{"worker.*.complete", "worker.task.complete", true},
	{"worker.*.complete", "worker.a.b.complete", true},
	{"worker.*.complete", "worker.complete", false},
	{"*.failed", "worker.task.failed", true},
	{"*.failed", "failed", false},
	{"chat.room?", "chat.room1", true},
	{"chat.room?", "chat.room12", false},
	{"chat.room?", "chat.room", false},
	{"chat.room?", "chat.roomé", true},   // '?' is one rune, not one byte
	{"chat.room??", "chat.roomé", false}, // é is two bytes but one rune
	{"?", "é", true},
	{"*?", "é", true},
	{"*??", "é", false},
	{"?*?", "éa", true},
	{"*é*", "aéb", true},
	{"*?b*", "éb", true},
	{"a*?", "aé", true},
	{"a*??", "aé", false},
	{"ab*ba", "aba", false}, // head and tail may not overlap
	{"ab*ba", "abba", true},
	{"a*a*a", "aaa", true},
	{"a*a*a", "aa", false},
	{"*a*b*c*", "xaybzc.d", true},
	{"*a*b*c*", "xcybza", false},
	{"*ab?d*", "abxabcd", true},
	{"w*r.t", "worker.t", true},
	{"worker.task", "worker.task", true},
	{"worker.task", "worker.tasks", false},
	{"worker.task", "worker.tas", false},
	{"*a*a*a*a*a*a*c*b", strings.Repeat("a", 255), false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.pattern+" "+tt.topic, func(t *testing.T) {
			assert.Equal(t, tt.want, Match(tt.pattern, tt.topic))
			assert.Equal(t, tt.want, match.Match(tt.topic, tt.pattern), "tidwall/match disagrees with the table")
			assert.Equal(t, tt.want, refMatch(tt.pattern, tt.topic), "refMatch disagrees with the table")
		})
	}
}

// refMatch is the reference matcher: '*' matches any run of runes, '?'
// exactly one, by plain dynamic programming over runes.
func refMatch(pattern, topic string) bool {
	p, s := []rune(pattern), []rune(topic)
	dp := make([]bool, len(s)+1) // dp[j]: p[:i] matches s[:j]
	dp[0] = true
	for i := range p {
		next := make([]bool, len(s)+1)
		switch p[i] {
		case '*':
			next[0] = dp[0]
			for j := 1; j <= len(s); j++ {
				next[j] = dp[j] || next[j-1]
			}
		case '?':
			for j := 1; j <= len(s); j++ {
				next[j] = dp[j-1]
			}
		default:
			for j := 1; j <= len(s); j++ {
				next[j] = dp[j-1] && s[j-1] == p[i]
			}
		}
		dp = next
	}
	return dp[len(s)]
}

// validName reports whether s is a valid topic, or with wild a valid
// pattern, as the bus defines them (SPEC §3).
func validName(s string, wild bool) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) || strings.Count(s, "*") > 8 {
		return false
	}
	for seg := range strings.SplitSeq(s, ".") {
		if seg == "" || seg == ">" || seg == "#" {
			return false
		}
		for _, r := range seg {
			if r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) ||
				(!wild && (r == '*' || r == '?')) {
				return false
			}
		}
	}
	return true
}

// names draws dot-separated names of 1–4 segments of 1–3 characters from
// alphabet, plus '*' and '?' if wild.
func names(alphabet string, wild bool) *rapid.Generator[string] {
	if wild {
		alphabet += "*?"
	}
	chars := []rune(alphabet)
	return rapid.Custom(func(t *rapid.T) string {
		n := rapid.IntRange(1, 4).Draw(t, "segments")
		segs := make([]string, n)
		for i := range segs {
			segs[i] = rapid.StringOfN(rapid.SampledFrom(chars), 1, 3, -1).Draw(t, "segment")
		}
		return strings.Join(segs, ".")
	})
}

func TestMatchProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pattern := names("abé", true).Draw(t, "pattern")
		topic := names("abé", false).Draw(t, "topic")
		if !validName(pattern, true) {
			t.Skip("invalid pattern")
		}
		want := refMatch(pattern, topic)
		require.Equal(t, want, Match(pattern, topic), "Match(%q, %q)", pattern, topic)
		g := compile(pattern)
		require.Equal(t, want, g.match(topic), "compile(%q).match(%q)", pattern, topic)
		require.Equal(t, want, match.Match(topic, pattern), "tidwall Match(%q, %q)", topic, pattern)
	})
}

// TestFindMaskedProperty checks the word-at-a-time search of ASCII topics
// against the rune-at-a-time one, with runs long enough to span words.
func TestFindMaskedProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		run := rapid.StringOfN(rapid.SampledFrom([]rune("ab?")), 1, 40, -1).Draw(t, "run")
		s := rapid.StringOfN(rapid.SampledFrom([]rune("ab")), 0, 90, -1).Draw(t, "s")
		require.Equal(t, findRun(run, s), findMasked(run, s), "run %q in %q", run, s)
	})
}

func FuzzMatch(f *testing.F) {
	for _, tt := range matchCases {
		f.Add(tt.pattern, tt.topic)
	}
	as := strings.Repeat("a", 255)
	f.Add("*"+strings.Repeat("aaaa?", 20)+"aab*", as)
	f.Add("*"+strings.Repeat("a?", 12)+"*b?"+strings.Repeat("a", 9)+"*", strings.Repeat("ab", 100))
	f.Add("*"+strings.Repeat("?", 80)+"b*", strings.Repeat("é", 127))
	f.Add("?*?*?", "ü.€.𝄞")
	f.Add("*€?", "a€€")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		if !validName(pattern, true) || !validName(topic, false) {
			t.Skip()
		}
		got := Match(pattern, topic)
		g := compile(pattern)
		require.Equal(t, got, g.match(topic), "compile(%q).match(%q)", pattern, topic)
		// tidwall/match is exponential on some inputs: trust it only
		// where it finishes within its own limit.
		if want, stopped := match.MatchLimit(topic, pattern, 200); !stopped {
			require.Equal(t, want, got, "tidwall Match(%q, %q)", topic, pattern)
		}
		if len(pattern) <= 64 && len(topic) <= 64 {
			require.Equal(t, refMatch(pattern, topic), got, "refMatch(%q, %q)", pattern, topic)
		}
	})
}
