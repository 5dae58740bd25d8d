package eventbustest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/choiros/eventbus"
)

// A Matcher describes one expected event for [Expect] and [ExpectExactly].
// Its String is what a failure message calls it. The zero Matcher matches
// nothing.
type Matcher struct {
	desc  string
	match func(eventbus.Event) bool
}

// Match reports whether e is an event m describes.
func (m Matcher) Match(e eventbus.Event) bool { return m.match != nil && m.match(e) }

// String returns m's description, such as Type(worker_spawned).
func (m Matcher) String() string {
	if m.match == nil {
		return "Matcher{} (matches nothing)"
	}
	return m.desc
}

// Type matches an event of type t.
func Type(t eventbus.EventType) Matcher {
	return Matcher{desc: fmt.Sprintf("Type(%s)", t), match: func(e eventbus.Event) bool { return e.Type == t }}
}

// Topic matches an event whose topic matches pattern, as [eventbus.Match]
// does: "worker.task" only that topic, "worker.*" every topic below worker.
// An invalid pattern matches nothing, and its String says why.
func Topic(pattern string) Matcher {
	if err := eventbus.ValidatePattern(pattern); err != nil {
		return Matcher{desc: fmt.Sprintf("Topic(%q) (%v: matches nothing)", pattern, err), match: func(eventbus.Event) bool { return false }}
	}
	return Matcher{desc: fmt.Sprintf("Topic(%q)", pattern), match: func(e eventbus.Event) bool { return eventbus.Match(pattern, e.Topic) }}
}

// Payload matches an event whose payload f accepts. f gets the payload's
// bytes as published ("null" when it was nil) and must not keep or change
// them.
func Payload(f func(json.RawMessage) bool) Matcher {
	return Matcher{desc: "Payload(func)", match: func(e eventbus.Event) bool {
		p := e.Payload
		if p == nil {
			p = json.RawMessage("null")
		}
		return f(p)
	}}
}

// All matches an event that every one of ms matches, so that one event
// can be described by several properties: All(Type(t), Topic("a.*")). All()
// matches every event.
func All(ms ...Matcher) Matcher {
	descs := make([]string, len(ms))
	for i, m := range ms {
		descs[i] = m.String()
	}
	return Matcher{desc: "All(" + strings.Join(descs, ", ") + ")", match: func(e eventbus.Event) bool {
		for _, m := range ms {
			if !m.Match(e) {
				return false
			}
		}
		return true
	}}
}

// Func matches an event f accepts; desc names it in failure messages.
func Func(desc string, f func(eventbus.Event) bool) Matcher {
	return Matcher{desc: desc, match: f}
}
