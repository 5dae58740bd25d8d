package eventbus_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

var topicCases = []struct {
	name  string
	topic string
	valid bool
}{
	{"one segment", "worker", true},
	{"three segments", "worker.task.complete", true},
	{"digits and symbols", "chat.room-1.user_2:x", true},
	{"unicode", "chat.salle.café", true},
	{"max length", strings.Repeat("a", 255), true},
	{"empty", "", false},
	{"too long", strings.Repeat("a", 256), false},
	{"empty middle segment", "a..b", false},
	{"leading dot", ".a", false},
	{"trailing dot", "a.", false},
	{"star", "a.*", false},
	{"question mark", "a.b?", false},
	{"backslash", `a\b`, false},
	{"space", "a b", false},
	{"tab", "a\tb", false},
	{"newline", "a\nb", false},
	{"control", "a\x00b", false},
	{"invalid utf8", "a.\xff", false},
	{"unicode space", "a\u00a0b", false},
	{"NATS wildcard segment", "orders.>", false},
	{"MQTT wildcard segment", "orders.#", false},
	{"NATS wildcard alone", ">", false},
	{"MQTT wildcard in the middle", "a.#.b", false},
	{"angle bracket inside a segment", "a.>b.c#", true},
	{"double angle bracket", "a.>>", true},
	{"hash segment of two", "a.##", true},
}

func TestValidateTopic(t *testing.T) {
	for _, tt := range topicCases {
		t.Run(tt.name, func(t *testing.T) {
			err := eventbus.ValidateTopic(tt.topic)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrInvalidTopic)
		})
	}
}

func TestValidateTopicMessage(t *testing.T) {
	tests := []struct {
		name, topic, want string
	}{
		{"empty segment", "a..b", `eventbus: invalid topic "a..b": empty segment`},
		{"NATS wildcard", "orders.>", `eventbus: invalid topic "orders.>": ">" is a NATS wildcard, not a topic segment`},
		{"MQTT wildcard", "orders.#.x", `eventbus: invalid topic "orders.#.x": "#" is an MQTT wildcard, not a topic segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.EqualError(t, eventbus.ValidateTopic(tt.topic), tt.want)
		})
	}
}

// TestValidatePatternMessage: a NATS or MQTT wildcard segment is refused
// with a hint naming the pattern that does what the user meant.
func TestValidatePatternMessage(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{"NATS tail", "orders.>", `eventbus: invalid pattern "orders.>": ">" is a NATS wildcard; here "orders.*" matches every topic below orders`},
		{"MQTT tail", "orders.eu.#", `eventbus: invalid pattern "orders.eu.#": "#" is an MQTT wildcard; here "orders.eu.*" matches every topic below orders.eu`},
		{"NATS alone", ">", `eventbus: invalid pattern ">": ">" is a NATS wildcard; here "*" matches every topic`},
		{"MQTT alone", "#", `eventbus: invalid pattern "#": "#" is an MQTT wildcard; here "*" matches every topic`},
		{"NATS in the middle", "a.>.b", `eventbus: invalid pattern "a.>.b": ">" is a NATS wildcard; here '*' matches any run of characters, dots included, as in "a.*.b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := eventbus.ValidatePattern(tt.pattern)
			require.ErrorIs(t, err, eventbus.ErrInvalidPattern)
			require.EqualError(t, err, tt.want)
		})
	}
}

// TestSubscribeNATSWildcard: the report, a NATS-style subscription
// that succeeded and never received, is now refused.
func TestSubscribeNATSWildcard(t *testing.T) {
	b := newBus(t)
	for _, p := range []string{"orders.>", "orders.#"} {
		_, err := b.Subscribe(t.Context(), p)
		require.ErrorIs(t, err, eventbus.ErrInvalidPattern, p)
	}
	require.ErrorIs(t, b.Publish(t.Context(), ev("orders.>")), eventbus.ErrInvalidTopic)
}

var patternCases = []struct {
	name    string
	pattern string
	valid   bool
}{
	{"all", "*", true},
	{"exact", "worker.task", true},
	{"prefix", "worker.*", true},
	{"middle glob", "worker.*.complete", true},
	{"suffix glob", "*.failed", true},
	{"one char", "chat.room?", true},
	{"eight stars", "*.*.*.*.*.*.*.*", true},
	{"nine stars", "*.*.*.*.*.*.*.*.*", false},
	{"empty", "", false},
	{"too long", strings.Repeat("a", 256), false},
	{"empty segment", "a..*", false},
	{"trailing dot", "a.*.", false},
	{"whitespace", "a .*", false},
	{"backslash", `a\*`, false},
	{"invalid utf8", "\xfe.*", false},
	{"NATS tail wildcard", "orders.>", false},
	{"MQTT tail wildcard", "orders.#", false},
	{"NATS wildcard alone", ">", false},
	{"MQTT wildcard alone", "#", false},
	{"NATS wildcard in the middle", "a.>.b", false},
	{"angle bracket inside a segment", "a.>*", true},
	{"hash inside a segment", "#a.*", true},
}

func TestValidatePattern(t *testing.T) {
	for _, tt := range patternCases {
		t.Run(tt.name, func(t *testing.T) {
			err := eventbus.ValidatePattern(tt.pattern)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrInvalidPattern)
		})
	}
}

var matchCases = []struct {
	pattern, topic string
	want           bool
}{
	{"*", "worker", true},
	{"*", "worker.task.complete", true},
	{"worker.*", "worker.task", true},
	{"worker.*", "worker.task.complete", true},
	{"worker.*", "worker", false},
	{"worker.*", "workers.task", false},
	{"worker.*", "chat.worker.task", false},
	{"worker.*.complete", "worker.task.complete", true},
	{"worker.*.complete", "worker.a.b.complete", true},
	{"worker.*.complete", "worker.task.failed", false},
	{"*.failed", "worker.failed", true},
	{"*.failed", "worker.task.failed", true},
	{"*.failed", "failed", false},
	{"chat.room?", "chat.room1", true},
	{"chat.room?", "chat.room12", false},
	{"chat.room?", "chat.room", false},
	{"chat.room?", "chat.roomé", true},
	{"worker.task", "worker.task", true},
	{"worker.task", "worker.tasks", false},
	{"w*r.t", "worker.t", true},
	{"a.*", "a..b", false}, // invalid topic
	{"a..*", "a.b", false}, // invalid pattern
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.pattern+" "+tt.topic, func(t *testing.T) {
			assert.Equal(t, tt.want, eventbus.Match(tt.pattern, tt.topic))
			e := eventbus.Event{Topic: tt.topic}
			assert.Equal(t, tt.want, e.MatchesTopic(tt.pattern))
		})
	}
}

// refMatch is the reference matcher: '*' matches any run of runes, '?'
// exactly one, by plain dynamic programming over runes.
func refMatch(pattern, topic string) bool {
	p, s := []rune(pattern), []rune(topic)
	// dp[j] reports whether p[:i] matches s[:j].
	dp := make([]bool, len(s)+1)
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

func segments(alphabet string, wild bool) *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		n := rapid.IntRange(1, 4).Draw(t, "segments")
		segs := make([]string, n)
		for i := range segs {
			chars := alphabet
			if wild {
				chars += "*?"
			}
			segs[i] = rapid.StringOfN(rapid.SampledFrom([]rune(chars)), 1, 3, -1).Draw(t, "segment")
		}
		return strings.Join(segs, ".")
	})
}

func TestMatchProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pattern := segments("abé", true).Draw(t, "pattern")
		topic := segments("abé", false).Draw(t, "topic")
		if eventbus.ValidatePattern(pattern) != nil {
			return
		}
		require.Equal(t, refMatch(pattern, topic), eventbus.Match(pattern, topic), "Match(%q, %q)", pattern, topic)
	})
}

func FuzzValidateTopic(f *testing.F) {
	for _, tt := range topicCases {
		f.Add(tt.topic)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		err := eventbus.ValidateTopic(topic)
		if err != nil {
			require.ErrorIs(t, err, eventbus.ErrInvalidTopic)
			return
		}
		require.True(t, utf8.ValidString(topic))
		require.LessOrEqual(t, len(topic), 255)
		require.NotContains(t, topic, "..")
		require.False(t, strings.ContainsAny(topic, "*?\\ \t\n"))
		for _, seg := range strings.Split(topic, ".") {
			require.NotContains(t, []string{">", "#"}, seg)
		}
		// Every valid topic is a valid pattern that matches itself.
		require.NoError(t, eventbus.ValidatePattern(topic))
		require.True(t, eventbus.Match(topic, topic))
		require.True(t, eventbus.Match("*", topic))
	})
}

func FuzzValidatePattern(f *testing.F) {
	for _, tt := range patternCases {
		f.Add(tt.pattern)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		err := eventbus.ValidatePattern(pattern)
		if err != nil {
			require.ErrorIs(t, err, eventbus.ErrInvalidPattern)
			return
		}
		require.LessOrEqual(t, strings.Count(pattern, "*"), eventbus.MaxPatternStars)
	})
}

func FuzzMatch(f *testing.F) {
	for _, tt := range matchCases {
		f.Add(tt.pattern, tt.topic)
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		got := eventbus.Match(pattern, topic)
		if eventbus.ValidatePattern(pattern) != nil || eventbus.ValidateTopic(topic) != nil {
			require.False(t, got)
			return
		}
		if len(pattern) <= 40 && len(topic) <= 40 {
			require.Equal(t, refMatch(pattern, topic), got)
		}
	})
}
