package eventbus

import "testing"

// FuzzPlainTopic holds the fast path of topic validation to the long one:
// whatever plainTopic accepts, checkNameSlow accepts too.
func FuzzPlainTopic(f *testing.F) {
	for _, s := range []string{"a", "worker.task", "a.b.c", ".a", "a.", "a..b", "a b", "a*", "caf\u00e9", "a\\b", "~!@#$%^&()_+-=[]{}|;':\",<>/", "a.>", "#", "a.#.b", "a.>b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || len(s) > MaxTopicLen || !plainTopic(s) {
			return
		}
		if reason := checkNameSlow(s, false); reason != "" {
			t.Fatalf("plainTopic accepts %q, which is invalid: %s", s, reason)
		}
	})
}
