package route

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// model is the brute-force index: every subscriber's patterns, matched
// one by one.
type model map[int]map[string]bool

func (m model) route(topic string) []int {
	var out []int
	for s, ps := range m {
		for p := range ps {
			if refMatch(p, topic) {
				out = append(out, s)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func sorted(s []int) []int {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestIndexRoute(t *testing.T) {
	type sub struct {
		pattern string
		s       int
	}
	tests := []struct {
		name  string
		subs  []sub
		topic string
		want  []int
	}{
		{"empty index", nil, "a.b", nil},
		{"exact", []sub{{"a.b", 1}, {"a.c", 2}}, "a.b", []int{1}},
		{"all", []sub{{"*", 1}, {"x", 2}}, "a.b", []int{1}},
		{"below matches every depth", []sub{{"a.*", 1}, {"a.b.*", 2}}, "a.b.c", []int{1, 2}},
		{"below excludes the parent", []sub{{"a.*", 1}}, "a", nil},
		{"below excludes a longer name", []sub{{"a.*", 1}}, "ab.c", nil},
		{"glob by prefix", []sub{{"worker.*.done", 1}, {"worker.*.fail", 2}}, "worker.x.done", []int{1}},
		{"glob by suffix", []sub{{"*.failed", 1}, {"*.done", 2}}, "a.b.failed", []int{1}},
		{"glob by prefix and suffix", []sub{{"a*z", 1}}, "a.b.z", []int{1}},
		{"prefix and suffix may not overlap", []sub{{"ab*ba", 1}}, "aba", nil},
		{"residual glob", []sub{{"*b*", 1}, {"?*", 2}, {"*x*", 3}}, "a.b", []int{1, 2}},
		{"residual glob by a piece of its literal", []sub{{"*ab.*", 1}, {"*xyz*", 2}, {"?b.a*", 3}}, "ab.ab.a", []int{1, 3}},
		{"a piece starting past ASCII", []sub{{"*é.a*", 1}, {"*xé.*", 2}}, "bé.a", []int{1}},
		{"a piece the topic holds twice", []sub{{"*ab.*", 1}, {"*b.a*", 1}}, "ab.ab.ab", []int{1}},
		{"question mark is one rune", []sub{{"room?", 1}, {"room??", 2}}, "roomé", []int{1}},
		{"subscriber with several matching patterns once", []sub{{"a.b", 1}, {"a.*", 1}, {"*", 1}, {"*b", 1}, {"*b*", 1}}, "a.b", []int{1}},
		{"several subscribers of one pattern", []sub{{"a.*", 1}, {"a.*", 2}, {"a.*", 3}}, "a.b", []int{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{0, 8} {
				x := New[int](size)
				x.filterMin = size / 8 // the filter on (from 1 key) or off
				for _, s := range tt.subs {
					require.True(t, x.Add(s.pattern, s.s))
				}
				assert.Equal(t, tt.want, sorted(x.Route(tt.topic)), "Route, cache %d", size)
				assert.Equal(t, tt.want, sorted(x.Route(tt.topic)), "Route again, cache %d", size)
				assert.Equal(t, tt.want, sorted(x.Lookup(tt.topic, nil)), "Lookup, cache %d", size)
			}
		})
	}
}

func TestIndexAddRemove(t *testing.T) {
	x := New[int](16)
	assert.Empty(t, x.Route("a.b"))
	require.True(t, x.Add("a.*", 1))
	assert.False(t, x.Add("a.*", 1), "second Add of the same pattern")
	require.True(t, x.Add("a.b", 1))
	require.True(t, x.Add("a.*", 2))
	first := x.Route("a.b")
	assert.Equal(t, []int{1, 2}, sorted(first))
	snapshot := slices.Clone(first)

	assert.Equal(t, 3, x.Subscriptions())
	assert.Equal(t, 2, x.Subscribers())
	assert.Equal(t, 2, x.Patterns())
	assert.Equal(t, 2, x.Count("a.*"))
	assert.Equal(t, 1, x.Count("a.b"))
	assert.Equal(t, 0, x.Count("c"))
	got := map[string]int{}
	x.ForEachPattern(func(p string, n int) { got[p] = n })
	assert.Equal(t, map[string]int{"a.*": 2, "a.b": 1}, got)

	require.True(t, x.Remove("a.*", 1))
	assert.False(t, x.Remove("a.*", 1), "second Remove")
	assert.False(t, x.Remove("zz", 1), "Remove of an unknown pattern")
	assert.Equal(t, []int{1, 2}, sorted(x.Route("a.b")), "1 still has a.b")
	require.True(t, x.Remove("a.b", 1))
	assert.Equal(t, []int{2}, sorted(x.Route("a.b")))
	assert.Equal(t, snapshot, first, "a returned route is never modified")
	require.True(t, x.Remove("a.*", 2))
	assert.Empty(t, x.Route("a.b"))
	assert.Zero(t, x.Subscriptions())
	assert.Zero(t, x.Subscribers())
	assert.Zero(t, x.Patterns())
}

func TestIndexCacheBounded(t *testing.T) {
	x := New[int](64)
	x.Add("t.*", 1)
	for i := range 10_000 {
		for range 2 { // the second route caches it
			require.Equal(t, []int{1}, x.Route(fmt.Sprintf("t.%d", i)))
		}
		require.LessOrEqual(t, x.CacheLen(), 64)
	}
	require.Positive(t, x.CacheLen())
}

func TestIndexAdmitsOnSecondRoute(t *testing.T) {
	x := New[int](1024)
	x.Add("t.*", 1)
	require.Equal(t, []int{1}, x.Route("t.a"))
	require.Zero(t, x.CacheLen(), "a topic routed once is not cached")
	require.Equal(t, []int{1}, x.Route("t.a"))
	require.Equal(t, 1, x.CacheLen(), "routed again, it is")
	// Topics that alternate are cached too, whatever slots their hashes
	// take.
	for i := range 200 {
		for _, topic := range []string{fmt.Sprintf("t.x%d", i), fmt.Sprintf("t.y%d", i)} {
			x.Route(topic)
		}
		for _, topic := range []string{fmt.Sprintf("t.x%d", i), fmt.Sprintf("t.y%d", i)} {
			x.Route(topic)
		}
	}
	require.Equal(t, 401, x.CacheLen(), "every topic routed twice was cached")
}

func TestIndexInfixBucketShared(t *testing.T) {
	// Two residual globs whose 3-byte pieces fall in one bucket of
	// infixN: removing one leaves the other routed.
	pieces := map[uint32]string{}
	var a, b string
	for c0 := byte('a'); c0 <= 'z' && b == ""; c0++ {
		for c1 := byte('a'); c1 <= 'z' && b == ""; c1++ {
			for c2 := byte('a'); c2 <= 'z'; c2++ {
				p := string([]byte{c0, c1, c2})
				k := triBucket(triOf(p))
				if q, ok := pieces[k]; ok {
					a, b = q, p
					break
				}
				pieces[k] = p
			}
		}
	}
	require.NotEmpty(t, b, "no two pieces share a bucket")
	x := New[int](0)
	x.Add("*"+a+"*", 1)
	x.Add("*"+b+"*", 2)
	require.Equal(t, []int{1}, x.Route("x."+a+".y"))
	require.Equal(t, []int{2}, x.Route("x."+b+".y"))
	x.Remove("*"+a+"*", 1)
	require.Empty(t, x.Route("x."+a+".y"))
	require.Equal(t, []int{2}, x.Route("x."+b+".y"))
	x.Remove("*"+b+"*", 2)
	require.Empty(t, x.Route("x."+b+".y"))
	require.Zero(t, x.infixN.n[triBucket(triOf(b))])
	require.Zero(t, x.infixN.firstN[b[0]])
	require.False(t, x.infixN.starts(b[0]))
}

func TestRouteCachedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations differ under -race")
	}
	x := New[int](4096)
	x.Add("a.b", 1)
	x.Add("a.*", 2)
	x.Add("*b", 3)
	x.Add("*", 4)
	x.Add("*.?*", 5)
	x.Route("a.b")
	assert.Zero(t, testing.AllocsPerRun(100, func() { x.Route("a.b") }))
}

// patternGen draws valid patterns of every shape over a small alphabet, so
// that they often match the topics topicGen draws.
func patternGen() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		topic := topicGen().Draw(t, "base")
		switch rapid.IntRange(0, 5).Draw(t, "shape") {
		case 0:
			return topic // exact
		case 1:
			return "*"
		case 2:
			return topic + ".*" // below
		case 3: // residual
			return rapid.SampledFrom([]string{"*a*", "?*", "*?", "*é*", "*.*", "*a?*", "?",
				// residuals filed by a 3-byte piece of a literal run
				"*ab.*", "*a.b*", "?ab*", "*aba*", "*é.a*", "*b.a?*", "*a*b.b*", "?a.b.a?"}).Draw(t, "residual")
		}
		for {
			p := names("abé", true).Draw(t, "glob")
			if validName(p, true) {
				return p
			}
		}
	})
}

func topicGen() *rapid.Generator[string] { return names("abé", false) }

// indexMachine is a rapid state machine comparing an Index with the model.
type indexMachine struct {
	x      *Index[int]
	m      model
	topics []string // routed before, so probably cached
}

func (sm *indexMachine) Add(t *rapid.T) {
	s := rapid.IntRange(0, 5).Draw(t, "sub")
	p := patternGen().Draw(t, "pattern")
	want := !sm.m[s][p]
	require.Equal(t, want, sm.x.Add(p, s), "Add(%q, %d)", p, s)
	if sm.m[s] == nil {
		sm.m[s] = map[string]bool{}
	}
	sm.m[s][p] = true
}

func (sm *indexMachine) Remove(t *rapid.T) {
	if len(sm.m) == 0 {
		t.Skip("nothing to remove")
	}
	s := rapid.SampledFrom(sortedKeys(sm.m)).Draw(t, "sub")
	p := rapid.SampledFrom(sortedKeys(sm.m[s])).Draw(t, "pattern")
	require.True(t, sm.x.Remove(p, s), "Remove(%q, %d)", p, s)
	delete(sm.m[s], p)
	if len(sm.m[s]) == 0 {
		delete(sm.m, s)
	}
}

func (sm *indexMachine) RemoveAbsent(t *rapid.T) {
	s := rapid.IntRange(0, 5).Draw(t, "sub")
	p := patternGen().Draw(t, "pattern")
	if sm.m[s][p] {
		t.Skip("present")
	}
	require.False(t, sm.x.Remove(p, s), "Remove(%q, %d)", p, s)
}

func (sm *indexMachine) RouteNew(t *rapid.T) {
	topic := topicGen().Draw(t, "topic")
	sm.route(t, topic)
	sm.topics = append(sm.topics, topic)
}

func (sm *indexMachine) RouteAgain(t *rapid.T) {
	if len(sm.topics) == 0 {
		t.Skip("no topic yet")
	}
	sm.route(t, rapid.SampledFrom(sm.topics).Draw(t, "topic"))
}

func (sm *indexMachine) route(t *rapid.T, topic string) {
	want := sm.m.route(topic)
	got := sm.x.Route(topic)
	require.Equal(t, want, sorted(got), "Route(%q)", topic)
	require.Equal(t, want, sorted(sm.x.Lookup(topic, nil)), "Lookup(%q)", topic)
}

func (sm *indexMachine) Check(t *rapid.T) {
	n, pats := 0, map[string]int{}
	for _, ps := range sm.m {
		n += len(ps)
		for p := range ps {
			pats[p]++
		}
	}
	require.Equal(t, n, sm.x.Subscriptions())
	require.Equal(t, len(sm.m), sm.x.Subscribers())
	require.Equal(t, len(pats), sm.x.Patterns())
	got := map[string]int{}
	sm.x.ForEachPattern(func(p string, n int) { got[p] = n })
	require.Equal(t, pats, got)
	for topic, e := range sm.x.cache {
		// At most one removed subscriber stays reachable past the route.
		require.Contains(t, []int{0, 1}, e.seen-len(e.subs), "%q: seen %d, route %d", topic, e.seen, len(e.subs))
		require.LessOrEqual(t, e.seen, cap(e.subs))
		require.True(t, e.counts == nil || len(e.counts) == len(e.subs), "%q: counts and route differ in length", topic)
	}
}

func sortedKeys[K interface{ ~int | ~string }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestIndexModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.SampledFrom([]int{0, 1, 4, 4096}).Draw(t, "cacheSize")
		sm := &indexMachine{x: New[int](size), m: model{}}
		// 0: every change is logged; 2: some are; 32: as in use.
		sm.x.eagerMax = rapid.SampledFrom([]int{0, 2, eagerMax}).Draw(t, "eagerMax")
		// 0: the key filter always on; 4: on and off; as in use: off.
		sm.x.filterMin = rapid.SampledFrom([]int{0, 4, filterMin}).Draw(t, "filterMin")
		// Which entries eviction picks is part of the input.
		sm.x.rand = rapid.Uint64Min(1).Draw(t, "evictSeed")
		t.Repeat(rapid.StateMachineActions(sm))
	})
}

// TestIndexSharedRoutes checks that routes returned earlier are never
// modified by later changes, with every pattern shape.
func TestIndexSharedRoutes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := New[int](rapid.SampledFrom([]int{1, 4, 4096}).Draw(t, "cacheSize"))
		type held struct {
			route, copy []int
		}
		var routes []held
		for range rapid.IntRange(1, 50).Draw(t, "steps") {
			s := rapid.IntRange(0, 3).Draw(t, "sub")
			p := patternGen().Draw(t, "pattern")
			if !x.Add(p, s) {
				x.Remove(p, s)
			}
			r := x.Route(topicGen().Draw(t, "topic"))
			require.Equal(t, len(r), cap(r), "a route is capped, so appending to it cannot write into the index")
			routes = append(routes, held{r, slices.Clone(r)})
		}
		for _, h := range routes {
			require.Equal(t, h.copy, h.route)
		}
	})
}

func TestRadixModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var r radix[int]
		m := map[string]int{}
		key := rapid.StringOfN(rapid.SampledFrom([]rune("abc")), 1, 5, -1)
		for i := range rapid.IntRange(1, 100).Draw(t, "steps") {
			k := key.Draw(t, "key")
			if rapid.Bool().Draw(t, "delete") {
				_, ok := m[k]
				require.Equal(t, ok, r.del(k))
				delete(m, k)
			} else {
				*r.slot(k) = i
				m[k] = i
			}
			q := key.Draw(t, "query")
			var got, want []int
			r.prefixesOf(q, false, func(v *int) { got = append(got, *v) })
			for k, v := range m {
				if strings.HasPrefix(q, k) {
					want = append(want, v)
				}
			}
			require.ElementsMatch(t, want, got, "prefixesOf(%q)", q)
			got, want = nil, nil
			r.prefixesOf(q, true, func(v *int) { got = append(got, *v) })
			for k, v := range m {
				if strings.HasSuffix(q, reverse(k)) {
					want = append(want, v)
				}
			}
			require.ElementsMatch(t, want, got, "prefixesOf(%q, rev)", q)
			got, want = nil, nil
			r.under(q, func(v *int) { got = append(got, *v) })
			for k, v := range m {
				if strings.HasPrefix(k, q) {
					want = append(want, v)
				}
			}
			require.ElementsMatch(t, want, got, "under(%q)", q)
			require.Equal(t, len(want), r.count(q), "count(%q)", q)
			require.Equal(t, len(m), r.count(""), "count of every key")
			for k, v := range m {
				require.Equal(t, v, *r.get(k))
			}
			require.Nil(t, r.get(q+"z"))
		}
	})
}

// TestIndexLongLog overflows the change log of "*" and residual patterns,
// so that some cached topics replay it and others fall behind it.
func TestIndexLongLog(t *testing.T) {
	for _, p := range []string{"*", "*a*", "?*"} {
		t.Run(p, func(t *testing.T) {
			x := New[int](16)
			m := model{}
			topics := []string{"a", "b.a", "é", "b"}
			for _, topic := range topics {
				x.Route(topic)
			}
			for i := range 5 * maxLog {
				s := i % 7
				if m[s][p] {
					require.True(t, x.Remove(p, s))
					delete(m, s)
				} else {
					require.True(t, x.Add(p, s))
					m[s] = map[string]bool{p: true}
				}
				// The first topic is routed often, the others rarely.
				topic := topics[0]
				if i%(maxLog+3) == 0 {
					topic = topics[1+i%(len(topics)-1)]
				}
				require.Equal(t, m.route(topic), sorted(x.Route(topic)), "step %d: Route(%q)", i, topic)
			}
			for _, topic := range topics {
				require.Equal(t, m.route(topic), sorted(x.Route(topic)), "Route(%q)", topic)
			}
		})
	}
}

func TestSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s set[int]
		m := map[int]bool{}
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			v := rapid.IntRange(0, 40).Draw(t, "value")
			if rapid.Bool().Draw(t, "remove") {
				require.Equal(t, m[v], s.remove(v), "remove(%d)", v)
				delete(m, v)
			} else {
				require.Equal(t, !m[v], s.add(v), "add(%d)", v)
				m[v] = true
			}
			require.Equal(t, len(m), s.len())
			require.ElementsMatch(t, sortedKeys(m), s.appendTo(nil))
		}
	})
}

// TestIndexManySubscribers gives one pattern of each shape many
// subscribers, past the size where a pattern indexes its subscribers, and
// removes them in a scrambled order.
func TestIndexManySubscribers(t *testing.T) {
	for _, p := range []string{"a.b", "a.*", "*", "a*b", "*b", "*.*"} {
		t.Run(p, func(t *testing.T) {
			x := New[int](16)
			want := map[int]bool{}
			for s := range 100 {
				require.True(t, x.Add(p, s))
				want[s] = true
			}
			require.Equal(t, sortedKeys(want), sorted(x.Route("a.b")))
			for i := range 100 {
				s := i * 37 % 100
				require.True(t, x.Remove(p, s))
				delete(want, s)
				require.Equal(t, len(want), x.Count(p))
				if i%7 == 0 {
					require.Equal(t, sorted(sortedKeys(want)), sorted(x.Route("a.b")), "after removing %d", s)
				}
			}
			require.Empty(t, x.Route("a.b"))
			require.Zero(t, x.Patterns())
		})
	}
}

// TestIndexLookupDedup gives many subscribers several matching patterns
// each, past the size where Lookup de-duplicates with a map.
func TestIndexLookupDedup(t *testing.T) {
	for _, n := range []int{3, 40} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := New[int](0)
			var want []int
			for s := range n {
				x.Add("a.*", s)
				x.Add("*", s)
				x.Add("*b", s)
				want = append(want, s)
			}
			x.Add("z", -1)
			x.Add("*", -1)
			want = append([]int{-1}, want...)
			got := x.Lookup("a.b", []int{7})
			require.Equal(t, 7, got[0], "Lookup appends to dst")
			assert.Equal(t, want, sorted(got[1:]))
			assert.Equal(t, want, sorted(x.Route("a.b")))
		})
	}
}

// TestIndexConcurrentReads runs the read-only methods at the same time,
// for the race detector.
func TestIndexConcurrentReads(t *testing.T) {
	x := New[int](16)
	for s := range 50 {
		x.Add("a.*", s)
		x.Add("*b", s)
		x.Add(fmt.Sprintf("a.%d", s), s)
	}
	want := x.Lookup("a.b", nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				assert.ElementsMatch(t, want, x.Lookup("a.b", nil))
				assert.Equal(t, 50, x.Count("a.*"))
				assert.Equal(t, 50, x.Subscribers())
				x.ForEachPattern(func(string, int) {})
			}
		})
	}
	wg.Wait()
}

// TestIndexLoggedThenApplied is a shrunk failure of TestIndexModel: a
// change is logged (many cached topics share its literal), then a later
// change of the same pattern is applied at once (fewer do by then); the
// cached topic must see the two in order.
func TestIndexLoggedThenApplied(t *testing.T) {
	x := New[int](16)
	for _, topic := range []string{"b.a", "b.b", "b.a.a"} {
		x.Route(topic)
	}
	x.eagerMax = 2 // three cached topics below b: logged
	require.True(t, x.Add("b.*", 0))
	x.eagerMax = eagerMax // applied at once
	require.True(t, x.Remove("b.*", 0))
	assert.Empty(t, x.Route("b.a"))
	require.True(t, x.Add("b.*", 0))
	assert.Equal(t, []int{0}, x.Route("b.b"))
}

// TestIndexReplayMemo toggles logged patterns over a cached topic, which
// replays them matching each pattern once (see entry.memo), and then
// replaces a pattern by another, which must be matched afresh.
func TestIndexReplayMemo(t *testing.T) {
	x := New[int](16)
	x.eagerMax = 0 // every change is logged
	for range 2 {
		x.Route("a.b") // the second route caches it
	}
	e := x.cache["a.b"]
	require.NotNil(t, e)
	m := model{}
	for i := range 3 * maxLog {
		p := []string{"*b", "*c", "*", "a.*", "*.*"}[i/7%5]
		s := i % 3
		if m[s][p] {
			require.True(t, x.Remove(p, s))
			delete(m[s], p)
		} else {
			require.True(t, x.Add(p, s))
			if m[s] == nil {
				m[s] = map[string]bool{}
			}
			m[s][p] = true
		}
		require.Equal(t, m.route("a.b"), sorted(x.Route("a.b")), "step %d: %s %d", i, p, s)
		// Routed after each change, the topic replays it.
		require.Same(t, x.log[len(x.log)-1].p, e.memo, "step %d: the pattern replayed last", i)
	}
	for s, ps := range m {
		for p := range ps {
			require.True(t, x.Remove(p, s))
		}
	}
	require.Empty(t, x.Route("a.b"))
	require.True(t, x.Add("*c", 1))
	require.True(t, x.Add("*.c", 2))
	require.Empty(t, x.Route("a.b"), "patterns after the memo's are matched")
}

// TestEntryToggle checks entry.toggle, add's shortcut, against add.
func TestEntryToggle(t *testing.T) {
	e := &entry[int]{subs: []int{1, 2, 3}, seen: 3}
	assert.False(t, e.toggle(2, -1), "2 is not last")
	assert.False(t, e.toggle(4, 1), "4 did not leave last")
	require.True(t, e.toggle(3, -1))
	assert.Equal(t, []int{1, 2}, e.subs)
	assert.Equal(t, 3, e.seen, "3 stays past the route")
	assert.False(t, e.toggle(2, -1), "a second shortening would hide 2 in the spare room")
	assert.False(t, e.toggle(4, 1), "4 is not the one that left")
	require.True(t, e.toggle(3, 1))
	assert.Equal(t, []int{1, 2, 3}, e.subs)
	e.add(1, 1) // 1 has two patterns now
	assert.False(t, e.toggle(3, -1), "with counts, add decides")
	e.add(3, -1)
	e.add(1, -1)
	e.add(1, -1)
	assert.Equal(t, []int{2}, e.subs)
}
