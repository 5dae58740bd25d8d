package natsbridge_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

func TestSubjectFor(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		pattern string
		subject string
		exact   bool
	}{
		{"everything", "eventbus", "*", "eventbus.>", true},
		{"below a prefix", "eventbus", "worker.*", "eventbus.worker.>", true},
		{"below a deeper prefix", "eventbus", "worker.task.*", "eventbus.worker.task.>", true},
		{"exact topic", "eventbus", "worker.task.done", "eventbus.worker.task.done", true},
		{"one segment", "eventbus", "worker", "eventbus.worker", true},
		{"star in the middle", "eventbus", "worker.*.complete", "eventbus.worker.>", false},
		{"question mark", "eventbus", "chat.room?", "eventbus.chat.>", false},
		{"leading star", "eventbus", "*.failed", "eventbus.>", false},
		{"star inside a segment", "eventbus", "worker.task*", "eventbus.worker.>", false},
		{"star inside the first segment", "eventbus", "work*", "eventbus.>", false},
		{"star then more literal segments", "eventbus", "a.b.c*.d.e", "eventbus.a.b.>", false},
		{"suffix star after a glob", "eventbus", "a.b?.*", "eventbus.a.>", false},
		{"gt segment is an invalid pattern", "eventbus", "alerts.>", "", false},
		{"gt segment before a star is an invalid pattern", "eventbus", "a.>.*", "", false},
		{"gt inside a segment is literal", "eventbus", "a.b>c", "eventbus.a.b>c", true},
		{"gt inside a segment, then star", "eventbus", "a.b>c.*", "eventbus.a.b>c.>", true},
		{"dotted prefix", "prod.bus", "worker.*", "prod.bus.worker.>", true},
		{"no prefix", "", "worker.*", "worker.>", true},
		{"no prefix, everything", "", "*", ">", true},
		{"invalid pattern", "eventbus", "a..b", "", false},
		{"empty pattern", "eventbus", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, exact := natsbridge.SubjectFor(tt.prefix, tt.pattern)
			assert.Equal(t, tt.subject, subject)
			assert.Equal(t, tt.exact, exact)
		})
	}
}

// Every topic a pattern matches lies under its subject: checked on a sample.
func TestSubjectForCovers(t *testing.T) {
	topics := []string{
		"worker", "worker.task", "worker.task.complete", "worker.1.2.complete",
		"chat.room1", "chat.roomA.x", "a.b.cx.d.e", "a.b.c.d.e", "x.failed", "a.b>c", "a.b>c.d",
	}
	patterns := []string{
		"*", "worker.*", "worker.*.complete", "chat.room?", "*.failed", "work*",
		"a.b.c*.d.e", "a.b>c", "a.b>c.*", "worker.task*",
	}
	for _, p := range patterns {
		subject, exact := natsbridge.SubjectFor("eventbus", p)
		for _, topic := range topics {
			s, err := natsbridge.Subject("eventbus", topic)
			require.NoError(t, err)
			under := natsMatch(subject, s)
			if eventbus.Match(p, topic) {
				assert.True(t, under, "pattern %q matches %q but subject %q does not cover %q", p, topic, subject, s)
			}
			if exact {
				assert.Equal(t, eventbus.Match(p, topic), under, "exact subject %q of %q on %q", subject, p, s)
			}
		}
	}
}

// natsMatch is NATS subject matching, for the filters this package makes.
func natsMatch(filter, subject string) bool {
	f, s := splitDots(filter), splitDots(subject)
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		subject string
		err     error
	}{
		{"plain", "worker.task.done", "eventbus.worker.task.done", nil},
		{"gt inside a segment", "cmp.a>b", "eventbus.cmp.a>b", nil},
		{"gt segment is an invalid topic", "alerts.>", "", eventbus.ErrInvalidTopic},
		{"gt first segment is an invalid topic", ">.x", "", eventbus.ErrInvalidTopic},
		{"invalid topic", "a..b", "", eventbus.ErrInvalidTopic},
		{"wildcard", "a.*", "", eventbus.ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, err := natsbridge.Subject("eventbus", tt.topic)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.subject, subject)
		})
	}
}
