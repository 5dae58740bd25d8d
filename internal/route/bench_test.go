package route

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/match"
)

// mixedPattern returns the i-th pattern of a mix of shapes: exact, below,
// a glob filed by its prefix and a glob filed by its suffix.
func mixedPattern(i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("svc%d.ent%d.ev", i%997, i)
	case 1:
		return fmt.Sprintf("svc%d.ent%d.*", i%997, i)
	case 2:
		return fmt.Sprintf("svc%d.ent%d.*.done?", i%997, i)
	}
	return fmt.Sprintf("*.ent%d.failed", i)
}

// warmTopics returns n topics of the mix's topic space, each matched by
// some of its patterns.
func warmTopics(n int) []string {
	topics := make([]string, n)
	for j := range topics {
		topics[j] = fmt.Sprintf("svc%d.ent%d.x.done1", j%997, j)
	}
	return topics
}

// newMixed returns an index with n mixed subscriptions (subscriber i has
// pattern i) and a full route cache.
func newMixed(n int) *Index[int] {
	x := New[int](4096)
	for i := range n {
		x.Add(mixedPattern(i), i)
	}
	for _, t := range warmTopics(4096) {
		x.Route(t)
	}
	return x
}

// BenchmarkAddRemove measures one Add and one Remove of a new subscription
// among n others, with a full route cache.
func BenchmarkAddRemove(b *testing.B) {
	pats := make([]string, 1024)
	for i := range pats {
		pats[i] = mixedPattern(200_000 + i)
	}
	for _, n := range []int{1_000, 20_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			x := newMixed(n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := pats[i%len(pats)]
				x.Add(p, -1)
				x.Remove(p, -1)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/change")
		})
	}
}

// BenchmarkSubscribe builds an index of n mixed subscriptions, with a full
// route cache of topics they match, and reports the cost of the first and
// the last 1,000 Adds.
func BenchmarkSubscribe(b *testing.B) {
	for _, n := range []int{1_000, 20_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			pats := make([]string, n)
			for i := range pats {
				pats[i] = mixedPattern(i)
			}
			topics := warmTopics(4096)
			var first, last, all time.Duration
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				x := New[int](4096)
				for _, t := range topics {
					x.Route(t)
				}
				b.StartTimer()
				start := time.Now()
				lastStart := start // n == 1,000: the last are the first
				for i, p := range pats {
					x.Add(p, i)
					switch i + 1 {
					case 1_000:
						first += time.Since(start)
					case n - 1_000:
						lastStart = time.Now()
					}
				}
				end := time.Now()
				last += end.Sub(lastStart)
				all += end.Sub(start)
			}
			b.ReportMetric(float64(first.Nanoseconds())/float64(1_000*b.N), "first1k-ns/add")
			b.ReportMetric(float64(last.Nanoseconds())/float64(1_000*b.N), "last1k-ns/add")
			b.ReportMetric(float64(last)/float64(first), "last/first")
			b.ReportMetric(float64(all.Nanoseconds())/float64(n*b.N), "ns/add")
			b.ReportMetric(float64(all.Nanoseconds())/1e6/float64(b.N), "ms/build")
		})
	}
}

// unrelated returns an index with n subscriptions of every shape but "*",
// none matching the topics of firstSeen.
func unrelated(n int) *Index[int] {
	x := New[int](4096)
	for i := range n {
		var p string
		switch i % 5 {
		case 0:
			p = fmt.Sprintf("svc%d.ent%d.ev", i%997, i)
		case 1:
			p = fmt.Sprintf("svc%d.ent%d.*", i%997, i)
		case 2:
			p = fmt.Sprintf("g%d.*.x%d?", i%3000, i)
		case 3:
			p = fmt.Sprintf("*.ent%d.failed", i)
		case 4:
			if i < 80 { // a short residual list, as the package doc expects
				p = fmt.Sprintf("*z%d*", i)
			} else {
				p = fmt.Sprintf("svc%d.*.h%d", i%997, i)
			}
		}
		x.Add(p, i)
	}
	return x
}

// BenchmarkRouteFirstSeen routes topics never seen before (each one is
// matched and, routed once, not cached: see admit) on an index with no
// other subscriptions and on one with 100,000 unrelated subscriptions of
// every shape. The two alternate in batches of 64 routes, so that both see
// the same machine load: none-ns and 100k-ns are the costs per route, and
// ratio is their ratio.
func BenchmarkRouteFirstSeen(b *testing.B) {
	const nTopics = 1 << 16
	topics := make([]string, nTopics)
	for i := range topics {
		topics[i] = fmt.Sprintf("orders.%d.created", i)
	}
	xs := []*Index[int]{unrelated(0), unrelated(100_000)}
	var spent [2]time.Duration
	for _, x := range xs {
		x.Add("orders.*", -1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i+64 > nTopics {
			b.StopTimer()
			for _, x := range xs {
				x.dropCache() // every topic is first-seen again
			}
			i = 0
			b.StartTimer()
		}
		for k, x := range xs {
			start := time.Now()
			for _, t := range topics[i : i+64] {
				if len(x.Route(t)) != 1 {
					b.Fatal("wrong route")
				}
			}
			spent[k] += time.Since(start)
		}
		i += 64
	}
	none := float64(spent[0].Nanoseconds()) / float64(64*b.N)
	many := float64(spent[1].Nanoseconds()) / float64(64*b.N)
	b.ReportMetric(none, "none-ns/route")
	b.ReportMetric(many, "100k-ns/route")
	b.ReportMetric(many/none, "ratio")
}

// BenchmarkRouteCached routes cached topics on an index of 20,000 mixed
// subscriptions plus "*" and a residual glob, and, alternately in batches
// of 64, looks the same topics up in a plain map of 4,096 topics, the
// floor: index-ns and map-ns per lookup, ratio their ratio.
func BenchmarkRouteCached(b *testing.B) {
	topics := warmTopics(64)
	x := newMixed(20_000)
	x.Add("*", -1)
	x.Add("*x*", -2)
	m := make(map[string][]int, 4096)
	for _, t := range warmTopics(4096) {
		m[t] = []int{1}
	}
	for _, t := range topics {
		x.Route(t)
	}
	var spent [2]time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		for _, t := range topics {
			_ = x.Route(t)
		}
		mid := time.Now()
		for _, t := range topics {
			_ = m[t]
		}
		spent[0] += mid.Sub(start)
		spent[1] += time.Since(mid)
	}
	idx := float64(spent[0].Nanoseconds()) / float64(64*b.N)
	plain := float64(spent[1].Nanoseconds()) / float64(64*b.N)
	b.ReportMetric(idx, "index-ns")
	b.ReportMetric(plain, "map-ns")
	b.ReportMetric(idx/plain, "ratio")
}

// BenchmarkMatchWorst matches adversarial patterns against 255-byte topics.
func BenchmarkMatchWorst(b *testing.B) {
	as := strings.Repeat("a", 255)
	tests := []struct {
		name, pattern, topic string
	}{
		{"stars-ab", "*a*a*a*a*a*a*c*b", as},
		{"stars-a?", "*a*a*a*a*a*a*c*?", as},
		{"long-run", "*" + strings.Repeat("a", 240) + "b*", as},
		{"long-run-?", "*" + strings.Repeat("a?", 120) + "b*", as},
		{"runs-?", "*a?a*a?a*a?a*a?a*a?a*a?a*a?" + strings.Repeat("a", 200) + "b*", as},
		{"half-run-?", "*" + strings.Repeat("aaaa?", 20) + "aab*", as},
		{"multibyte-?", "*" + strings.Repeat("?", 80) + "b*", strings.Repeat("é", 127)},
		{"dots", "*.*.*.*.*.*.*.?b", strings.Repeat("a.", 127) + "a"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Match(tt.pattern, tt.topic)
			}
		})
		b.Run(tt.name+"/tidwall-limit256", func(b *testing.B) {
			for b.Loop() {
				_, _ = match.MatchLimit(tt.topic, tt.pattern, 256)
			}
		})
	}
}

// BenchmarkRouteChurn routes a fixed set of 64 cached topics on two equal
// indexes of 20,000 mixed subscriptions, alternately; on the second,
// another subscriber adds or removes one pattern before each round of 64
// routes. calm-ns is a route on the first, churn-ns a route on the second,
// change included (its cost spread over the round), and ratio their ratio;
// change-ns is the Add or Remove alone and route-ratio the ratio without
// it.
func BenchmarkRouteChurn(b *testing.B) {
	topics := warmTopics(64)
	for _, churn := range []string{"svc1.ent1.x.done1", "svc1.ent1.*", "svc1.*.x.*", "*.x.done1", "*a*a*a*a*a*a*c*?", "*", "svc*", "*1*"} {
		b.Run("churn="+churn, func(b *testing.B) {
			calm, churned := newMixed(20_000), newMixed(20_000)
			var spent [3]time.Duration
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				for _, t := range topics {
					_ = calm.Route(t)
				}
				mid := time.Now()
				if i%2 == 0 {
					churned.Add(churn, -1)
				} else {
					churned.Remove(churn, -1)
				}
				i++
				changed := time.Now()
				for _, t := range topics {
					_ = churned.Route(t)
				}
				spent[0] += mid.Sub(start)
				spent[1] += time.Since(mid)
				spent[2] += changed.Sub(mid)
			}
			c := float64(spent[0].Nanoseconds()) / float64(b.N*len(topics))
			d := float64(spent[1].Nanoseconds()) / float64(b.N*len(topics))
			ch := float64(spent[2].Nanoseconds()) / float64(b.N)
			b.ReportMetric(c, "calm-ns/route")
			b.ReportMetric(d, "churn-ns/route")
			b.ReportMetric(d/c, "ratio")
			b.ReportMetric(ch, "change-ns")
			b.ReportMetric((d-ch/float64(len(topics)))/c, "route-ratio")
		})
	}
}
