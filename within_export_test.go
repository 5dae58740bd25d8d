package eventbus

// WithinWitness exposes within: PatternWithin's answer and, when it is
// false because of one, a valid topic that pattern matches and none of
// allowed does.
func WithinWitness(pattern string, allowed ...string) (bool, string) {
	return within(pattern, allowed)
}
