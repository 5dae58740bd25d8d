package eventbus

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
	"unicode"
)

// PatternWithin reports whether every valid topic that pattern matches is
// matched by at least one of allowed, so that an Authorizer can decide on a
// subscription pattern by what it would receive, not by its text: "*",
// "s?cret.*" and "*ecret*" are not within "public.*", while "public.a.*",
// "public.?" and "public.x" are, and "a.*" is within "a.?", "a.??*".
// An invalid pattern is within nothing; invalid allowed patterns match
// nothing and are ignored. It is safe for concurrent use.
//
// The decision is exact language inclusion, made on automata: the glob
// pattern, the rules of a valid topic (non-empty segments, no segment that
// is exactly ">" or "#") and the union of allowed are run together over an
// alphabet of the literal characters of the patterns, '.', and one
// character standing for all others, looking for a topic that pattern
// matches and no allowed pattern does. It is sound: it never reports true
// when such a topic exists. It is complete except in two corners where it
// answers false to stay safe: it does not use the 255-byte limit on topics
// (a topic outside allowed that is only longer than that still counts
// against pattern), and it gives up, answering false, after a bounded
// amount of work (a few milliseconds), which patterns of a realistic size
// are far from needing.
func PatternWithin(pattern string, allowed ...string) bool {
	ok, _ := within(pattern, allowed)
	return ok
}

// withinBudget bounds the work of one PatternWithin call, counted in
// automaton states stepped by one character (a few nanoseconds each), so
// that no pattern a client sends can make the check expensive: it stays
// within a few milliseconds. Past it the answer is false. Patterns of a
// realistic size need a few hundred steps.
const withinBudget = 1 << 19

// Topic automaton states: at the start of a segment, after a segment that
// so far is exactly ">" or "#", inside any other segment (accepting), dead.
const (
	vSegStart uint8 = iota
	vForeign
	vInSeg
	vDead
)

// vStep is the topic automaton's transition.
func vStep(v uint8, r rune) uint8 {
	switch {
	case v == vDead:
		return vDead
	case r == '.':
		if v == vInSeg {
			return vSegStart
		}
		return vDead
	case v == vSegStart && (r == '>' || r == '#'):
		return vForeign
	}
	return vInSeg
}

// globNFA is a valid pattern as a nondeterministic automaton: state i means
// the first i tokens are matched; state len(toks) accepts.
type globNFA struct {
	toks []rune
	off  int // first word of this glob's state set in a withinNode's vector
	univ int // a state from which every suffix is accepted, or -1
	// reach[i] is the last state reachable from state i by letting '*'
	// match nothing: the states i..reach[i] are i's closure.
	reach []int
}

func newGlobNFA(p string, off int) globNFA {
	g := globNFA{toks: []rune(p), off: off, univ: -1}
	for i := len(g.toks) - 1; i >= 0 && g.toks[i] == '*'; i-- {
		g.univ = i
	}
	g.reach = make([]int, len(g.toks)+1)
	g.reach[len(g.toks)] = len(g.toks)
	for i := len(g.toks) - 1; i >= 0; i-- {
		g.reach[i] = i
		if g.toks[i] == '*' {
			g.reach[i] = g.reach[i+1]
		}
	}
	return g
}

// words is the length of the globNFA's state set in 64-bit words.
func (g *globNFA) words() int { return (len(g.toks) + 1 + 63) / 64 }

func bitHas(set []uint64, i int) bool { return set[i/64]&(1<<(i%64)) != 0 }
func bitAdd(set []uint64, i int)      { set[i/64] |= 1 << (i % 64) }

// enter adds state i and its closure to set.
func (g *globNFA) enter(set []uint64, i int) {
	for j := i; j <= g.reach[i]; j++ {
		bitAdd(set, j)
	}
}

// step writes to next (zeroed) the states reached from set on r, closed.
func (g *globNFA) step(set, next []uint64, r rune) {
	for w, word := range set {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			if i == len(g.toks) {
				continue
			}
			switch t := g.toks[i]; {
			case t == '*':
				g.enter(next, i)
			case t == '?' || t == r:
				g.enter(next, i+1)
			}
		}
	}
}

func (g *globNFA) accepts(set []uint64) bool { return bitHas(set, len(g.toks)) }

func (g *globNFA) universal(set []uint64) bool { return g.univ >= 0 && bitHas(set, g.univ) }

func (g *globNFA) empty(set []uint64) bool {
	for _, w := range set {
		if w != 0 {
			return false
		}
	}
	return true
}

// matches reports whether g matches s, rune by rune.
func (g *globNFA) matches(s string) bool {
	set := make([]uint64, g.words())
	next := make([]uint64, g.words())
	g.enter(set, 0)
	for _, r := range s {
		clear(next)
		g.step(set, next, r)
		set, next = next, set
		if g.empty(set) {
			return false
		}
	}
	return g.accepts(set)
}

// withinNode is one state of the search: the state set of every globNFA
// (pattern first, then allowed) and the topic automaton's state, with the
// rune that led to it from its parent, to spell a counterexample.
type withinNode struct {
	sets   []uint64
	v      uint8
	parent int
	r      rune
}

// within decides PatternWithin. When it finds a valid topic that pattern
// matches and no allowed pattern does, it returns false and that topic.
func within(pattern string, allowed []string) (bool, string) {
	if checkName(pattern, true) != "" {
		return false, ""
	}
	// The common case first: every topic pattern matches starts with
	// "prefix." and, being valid, has a segment after it.
	lit := pattern
	if i := strings.IndexAny(pattern, "*?"); i >= 0 {
		lit = pattern[:i]
	}
	for _, a := range allowed {
		if a == pattern {
			return true, ""
		}
		if prefix, ok := strings.CutSuffix(a, "*"); ok && strings.HasSuffix(prefix, ".") &&
			strings.HasPrefix(lit, prefix) && checkName(a, true) == "" && !strings.ContainsAny(prefix, "*?") {
			return true, ""
		}
	}
	globs := []globNFA{newGlobNFA(pattern, 0)}
	words := globs[0].words()
	seen := map[string]bool{}
	for _, a := range allowed {
		if seen[a] || checkName(a, true) != "" {
			continue
		}
		if a == "*" {
			return true, ""
		}
		if !literalsAgree(pattern, a) {
			continue // it matches no topic pattern matches
		}
		seen[a] = true
		g := newGlobNFA(a, words)
		words += g.words()
		globs = append(globs, g)
	}
	if checkName(pattern, false) == "" { // an exact topic
		if withinMatches(globs[1:], pattern) {
			return true, ""
		}
		return false, pattern
	}
	alphabet := withinAlphabet(globs)
	// A quick probe for the common denial: pattern with its wildcards
	// filled by a character no pattern names, often matched by no allowed.
	other := string(alphabet[len(alphabet)-1])
	for _, star := range []string{other, ""} {
		probe := strings.NewReplacer("*", star, "?", other).Replace(pattern)
		if checkName(probe, false) == "" && !withinMatches(globs[1:], probe) {
			return false, probe
		}
	}

	start := withinNode{sets: make([]uint64, words), v: vSegStart, parent: -1}
	for i := range globs {
		g := &globs[i]
		g.enter(start.sets[g.off:g.off+g.words()], 0)
	}
	for i := range globs[1:] {
		if g := &globs[1+i]; g.universal(start.sets[g.off : g.off+g.words()]) {
			return true, "" // "**" and the like
		}
	}
	key := make([]byte, 1+8*words)
	visited := map[string]bool{}
	mark := func(n *withinNode) bool {
		key[0] = n.v
		for i, w := range n.sets {
			binary.LittleEndian.PutUint64(key[1+8*i:], w)
		}
		if visited[string(key)] {
			return false
		}
		visited[string(key)] = true
		return true
	}
	mark(&start)
	queue := []withinNode{start}
	states := 0 // of all the globs
	for i := range globs {
		states += len(globs[i].toks) + 1
	}
	work := 0
	scratch := make([]uint64, words)
	for head := 0; head < len(queue); head++ {
		n := queue[head]
		if n.v == vInSeg && globs[0].accepts(n.sets[:globs[0].words()]) && !withinAccepts(globs[1:], n.sets) {
			return false, spellWitness(queue, head)
		}
		if work += len(alphabet) * states; work > withinBudget {
			return false, ""
		}
		for _, r := range alphabet {
			clear(scratch)
			next := withinNode{sets: scratch, v: vStep(n.v, r), parent: head, r: r}
			if next.v == vDead || !withinAdvance(globs, n.sets, next.sets, r) || !mark(&next) {
				continue
			}
			next.sets = slices.Clone(scratch)
			queue = append(queue, next)
		}
	}
	return true, ""
}

// advance steps every globNFA on r from sets into next and reports whether the
// new node can still lead to a counterexample: the pattern is alive and no
// allowed pattern accepts every continuation.
func withinAdvance(globs []globNFA, sets, next []uint64, r rune) bool {
	for i := range globs {
		g := &globs[i]
		from, to := sets[g.off:g.off+g.words()], next[g.off:g.off+g.words()]
		g.step(from, to, r)
		if i == 0 && g.empty(to) || i > 0 && g.universal(to) {
			return false
		}
	}
	return true
}

// literalsAgree reports whether the literal prefixes of two patterns (up
// to the first wildcard) agree, one beginning the other, and likewise their
// literal suffixes; if not, no topic matches both.
func literalsAgree(p, q string) bool {
	pp, qp := p, q
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		pp = p[:i]
	}
	if i := strings.IndexAny(q, "*?"); i >= 0 {
		qp = q[:i]
	}
	ps, qs := p[strings.LastIndexAny(p, "*?")+1:], q[strings.LastIndexAny(q, "*?")+1:]
	return (strings.HasPrefix(pp, qp) || strings.HasPrefix(qp, pp)) &&
		(strings.HasSuffix(ps, qs) || strings.HasSuffix(qs, ps))
}

// withinMatches reports whether one of globs matches the topic.
func withinMatches(globs []globNFA, topic string) bool {
	for i := range globs {
		if globs[i].matches(topic) {
			return true
		}
	}
	return false
}

func withinAccepts(globs []globNFA, sets []uint64) bool {
	for i := range globs {
		g := &globs[i]
		if g.accepts(sets[g.off : g.off+g.words()]) {
			return true
		}
	}
	return false
}

// spell returns the topic that leads from the start node to queue[i].
func spellWitness(queue []withinNode, i int) string {
	var rs []rune
	for ; queue[i].parent >= 0; i = queue[i].parent {
		rs = append(rs, queue[i].r)
	}
	for a, b := 0, len(rs)-1; a < b; a, b = a+1, b-1 {
		rs[a], rs[b] = rs[b], rs[a]
	}
	s := string(rs)
	if len(s) > MaxTopicLen {
		return ""
	}
	return s
}

// withinAlphabet returns one rune for each class of topic characters the
// globs cannot tell apart: every literal of theirs, '.', '>' and '#' (which
// the topic rules single out), and one character none of them names.
func withinAlphabet(globs []globNFA) []rune {
	lit := map[rune]bool{'.': true, '>': true, '#': true}
	alphabet := []rune{'.', '>', '#'}
	for _, g := range globs {
		for _, r := range g.toks {
			if r != '*' && r != '?' && !lit[r] {
				lit[r] = true
				alphabet = append(alphabet, r)
			}
		}
	}
	for r := rune('x'); ; r++ {
		if r >= 0x7f && r < 0xa1 {
			continue
		}
		if !lit[r] && r != '*' && r != '?' && r != '\\' && unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return append(alphabet, r)
		}
	}
}
