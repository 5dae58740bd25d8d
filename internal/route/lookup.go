package route

import (
	"hash/maphash"
	"slices"
)

// Lookup appends to dst the subscribers an event on topic reaches, each
// once, without using or filling the route cache. It only reads the index:
// calls of Lookup, Count, Patterns, Subscribers, Subscriptions and
// ForEachPattern may run at the same time as each other (under a read
// lock, say), but not with Add, Remove or Route.
func (x *Index[S]) Lookup(topic string, dst []S) []S { return x.lookup(topic, 0, dst) }

// lookup is Lookup, given the maphash of topic under x.seed if the caller
// has it (0 if not).
func (x *Index[S]) lookup(topic string, h uint64, dst []S) []S {
	start := len(dst)
	dst = x.collect(topic, h, bytesOf(topic), dst)
	if x.multi > 0 && len(dst)-start > 1 {
		n := len(unique(dst[start:]))
		clear(dst[start+n:])
		dst = dst[:start+n]
	}
	return dst
}

// unique moves the distinct elements of buf to its front, in their order,
// and returns them.
func unique[S comparable](buf []S) []S {
	out := buf[:0]
	if len(buf) <= 32 {
	next:
		for _, s := range buf {
			for _, t := range out {
				if s == t {
					continue next
				}
			}
			out = append(out, s)
		}
		return out
	}
	seen := make(map[S]struct{}, len(buf))
	for _, s := range buf {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// resolve computes the route of topic as a new slice, with counts if some
// subscriber has several patterns; h is as for lookup.
func (x *Index[S]) resolve(topic string, h uint64, has byteSet) ([]S, []int32) {
	buf := x.collect(topic, h, has, x.scratch[:0])
	defer func() {
		clear(buf)
		x.scratch = buf[:0]
	}()
	if len(buf) == 0 {
		return nil, nil
	}
	if x.multi == 0 || len(buf) == 1 {
		return slices.Clone(buf), nil
	}
	return x.dedup(buf)
}

// dedup returns the distinct subscribers of buf in a new slice, and how
// many times each occurs (nil if once each).
func (x *Index[S]) dedup(buf []S) ([]S, []int32) {
	out := make([]S, 0, len(buf))
	var counts []int32
	if x.counts == nil {
		x.counts = make(map[S]int32)
	}
	repeated := false
	for _, s := range buf {
		if x.counts[s]++; x.counts[s] == 1 {
			out = append(out, s)
		} else {
			repeated = true
		}
	}
	if repeated {
		counts = make([]int32, len(out))
		for i, s := range out {
			counts[i] = x.counts[s]
		}
	}
	clear(x.counts)
	return out, counts
}

// collect appends to dst the subscribers of every pattern matching topic,
// a subscriber once per matching pattern; h is the maphash of topic, or 0
// if the caller does not have it. With the filter on, the exact and below
// maps are looked up only for the keys it may hold.
func (x *Index[S]) collect(topic string, h uint64, has byteSet, dst []S) []S {
	filtered := x.filter.on()
	if filtered && h == 0 {
		h = maphash.String(x.seed, topic)
	}
	if !filtered || x.filter.mayHave(h) {
		if p := x.pats[topic]; p != nil && p.kind == kindExact {
			dst = p.subs.appendTo(dst)
		}
	}
	if x.all != nil {
		dst = x.all.subs.appendTo(dst)
	}
	if len(x.below) > 0 {
		for i := 1; i < len(topic); i++ {
			if topic[i] == '.' {
				// The filter files "k.*" by "k.".
				if filtered && !x.filter.mayHave(maphash.String(x.seed, topic[:i+1])) {
					continue
				}
				if p := x.below[topic[:i]]; p != nil {
					dst = p.subs.appendTo(dst)
				}
			}
		}
	}
	globs := func(list *[]*pat[S]) {
		for _, p := range *list {
			if p.matches(topic, has) {
				dst = p.subs.appendTo(dst)
			}
		}
	}
	x.prefixes.prefixesOf(topic, false, globs)
	x.suffixes.prefixesOf(topic, true, globs)
	globs(&x.residual)
	if len(x.infix) > 0 && x.infixN.meets(has) {
		// Each glob is filed under one piece; a piece the topic holds
		// twice must not bring its globs twice.
		var seen [8]*[]*pat[S] // the lists met so far; more past eight
		var more []*[]*pat[S]
		nseen := 0
	pieces:
		for i := 0; i+2 < len(topic); i++ {
			if !x.infixN.starts(topic[i]) {
				continue
			}
			key := triOf(topic[i:])
			if x.infixN.n[triBucket(key)] == 0 {
				continue
			}
			list := x.infix[key]
			if list == nil {
				continue
			}
			for _, l := range seen[:nseen] {
				if l == list {
					continue pieces
				}
			}
			for _, l := range more {
				if l == list {
					continue pieces
				}
			}
			if nseen < len(seen) {
				seen[nseen] = list
				nseen++
			} else {
				more = append(more, list)
			}
			globs(list)
		}
	}
	return dst
}
