package natsbridge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/choiros/eventbus"
)

// SubjectFor returns the NATS subject that covers pattern under prefix, and
// whether it covers exactly the topics the pattern matches (exact) or more
// of them, so that what arrives on it must be filtered with eventbus.Match.
// An empty prefix means none. The table:
//
//	pattern              subject (prefix "eventbus")    exact
//	*                    eventbus.>                     yes
//	worker.*             eventbus.worker.>              yes
//	worker.task.done     eventbus.worker.task.done      yes
//	worker.*.complete    eventbus.worker.>              no
//	chat.room?           eventbus.chat.>                no
//	*.failed             eventbus.>                     no
//
// In eventbus patterns '*' crosses dots, so "a.*" matches every topic
// strictly below "a" at any depth, which is what NATS's "a.>" matches. Other
// globs have no NATS form: their subject is the literal segments before the
// first segment holding a wildcard, followed by ">". A segment that is
// exactly ">" counts as a wildcard segment too, because NATS reads it as one.
// SubjectFor returns "" and false for an invalid pattern.
func SubjectFor(prefix, pattern string) (subject string, exact bool) {
	if eventbus.ValidatePattern(pattern) != nil {
		return "", false
	}
	rel, exact := relSubject(pattern)
	return join(prefix, rel), exact
}

// relSubject maps a valid pattern to its covering subject without a prefix.
func relSubject(pattern string) (string, bool) {
	if pattern == "*" {
		return ">", true
	}
	if head, ok := strings.CutSuffix(pattern, ".*"); ok && literal(head) {
		return head + ".>", true
	}
	if literal(pattern) {
		return pattern, true
	}
	// The literal segments before the first one that holds a wildcard (or
	// is ">"), then ">". The characters of those segments and their dots are
	// literal in the pattern, so every topic it matches starts with them.
	end := 0
	for end < len(pattern) {
		seg, _, _ := strings.Cut(pattern[end:], ".")
		if !literal(seg) {
			break
		}
		end += len(seg) + 1
	}
	return pattern[:end] + ">", false
}

// literal reports whether every segment of s is taken literally by NATS:
// no eventbus wildcard and no segment that is exactly ">".
func literal(s string) bool {
	return !strings.ContainsAny(s, "*?") && !hasGTSegment(s)
}

// hasGTSegment reports whether a segment of s is exactly ">".
func hasGTSegment(s string) bool {
	for rest := s; ; {
		i := strings.IndexByte(rest, '>')
		if i < 0 {
			return false
		}
		if (i == 0 || rest[i-1] == '.') && (i == len(rest)-1 || rest[i+1] == '.') {
			return true
		}
		rest = rest[i+1:]
	}
}

// Subject returns the NATS subject that an event on topic is exported to:
// prefix, a dot, and the topic ("eventbus.worker.task.done"); an empty prefix
// means none. The error wraps eventbus.ErrInvalidTopic for an invalid topic,
// or ErrNoSubject for a topic with a segment that is exactly ">".
func Subject(prefix, topic string) (string, error) {
	if err := eventbus.ValidateTopic(topic); err != nil {
		return "", err
	}
	return subjectOf(prefix, topic)
}

// subjectOf is Subject for a topic known to be valid.
func subjectOf(prefix, topic string) (string, error) {
	if hasGTSegment(topic) {
		return "", fmt.Errorf("%w: %q has a segment \">\"", ErrNoSubject, topic)
	}
	return join(prefix, topic), nil
}

func join(prefix, rel string) string {
	if prefix == "" {
		return rel
	}
	return prefix + "." + rel
}

// covers reports whether the NATS subject filter covers every subject that
// sub matches. Both are filters of the shapes this package makes: literal
// tokens, optionally ending in ">".
func covers(filter, sub string) bool {
	if filter == sub || filter == ">" {
		return true
	}
	head, ok := strings.CutSuffix(filter, ">")
	return ok && strings.HasSuffix(head, ".") && strings.HasPrefix(sub, head) && len(sub) > len(head)
}

// importSubjects maps import patterns to the fewest NATS subjects that cover
// them, dropping subjects covered by another so that no message arrives
// twice. exact[i] is true when some pattern maps exactly onto subjects[i],
// so nothing arriving on it needs a local filter.
func importSubjects(prefix string, patterns []string) (subjects []string, exact []bool) {
	type entry struct {
		subject string
		exact   bool
	}
	var all []entry
	for _, p := range patterns {
		s, ex := SubjectFor(prefix, p)
		if i := slices.IndexFunc(all, func(e entry) bool { return e.subject == s }); i >= 0 {
			all[i].exact = all[i].exact || ex
		} else {
			all = append(all, entry{s, ex})
		}
	}
	for i, e := range all {
		covered := false
		for j, o := range all {
			if i != j && o.subject != e.subject && covers(o.subject, e.subject) {
				covered = true
				break
			}
		}
		if !covered {
			subjects = append(subjects, e.subject)
			exact = append(exact, e.exact)
		}
	}
	return subjects, exact
}
