package main

import (
	"fmt"
	"strings"

	"github.com/choiros/eventbus"
)

// sub is one subscriber of a workload.
type sub struct {
	pattern string // in eventbus syntax: an exact topic or "prefix.*"
	topics  []int  // indexes of the workload topics the pattern matches
}

// wildcard reports whether the pattern is "prefix.*".
func (s sub) wildcard() bool { return strings.HasSuffix(s.pattern, ".*") }

// workload is a set of topics, published round-robin, and subscribers.
type workload struct {
	name   string
	desc   string
	topics []string
	subs   []sub
	// eventsDiv divides -events to give the events this workload publishes,
	// so the fan-out workloads make a comparable number of deliveries.
	eventsDiv int
}

// newWorkload fills in which topics each pattern matches.
func newWorkload(name, desc string, topics, patterns []string, eventsDiv int) *workload {
	w := &workload{name: name, desc: desc, topics: topics, eventsDiv: eventsDiv}
	for _, p := range patterns {
		s := sub{pattern: p}
		for i, t := range topics {
			if eventbus.Match(p, t) {
				s.topics = append(s.topics, i)
			}
		}
		w.subs = append(w.subs, s)
	}
	return w
}

// workloads returns W1–W3.
func workloads() []*workload {
	w1 := newWorkload("W1", "1 publisher → 1 subscriber, exact topic",
		[]string{"bench.w1"}, []string{"bench.w1"}, 1)

	var p2 []string
	for range 100 {
		p2 = append(p2, "bench.w2")
	}
	w2 := newWorkload("W2", "1 → 100 subscribers, one topic",
		[]string{"bench.w2"}, p2, 10)

	// 1,000 topics t.<g>.<i> (10 groups × 100); 50 subscribers on exact
	// topics (every 20th topic) and 50 on t.<g>.* (5 per group).
	var topics []string
	for g := range 10 {
		for i := range 100 {
			topics = append(topics, fmt.Sprintf("t.%d.%d", g, i))
		}
	}
	var p3 []string
	for j := range 50 {
		p3 = append(p3, topics[j*20])
		p3 = append(p3, fmt.Sprintf("t.%d.*", j%10))
	}
	w3 := newWorkload("W3", "1,000 topics, 50 exact + 50 `t.<g>.*` subscribers",
		topics, p3, 2)
	return []*workload{w1, w2, w3}
}

// eventsFor returns how many events w publishes when -events is n.
func (w *workload) eventsFor(n int) int { return max(n/w.eventsDiv, 1) }

// perTopic returns how many of n round-robin events land on each topic.
func (w *workload) perTopic(n int) []int64 {
	counts := make([]int64, len(w.topics))
	full, rest := n/len(w.topics), n%len(w.topics)
	for i := range counts {
		counts[i] = int64(full)
		if i < rest {
			counts[i]++
		}
	}
	return counts
}

// expected returns, for n events, how many each subscriber must receive.
func (w *workload) expected(n int) []int64 {
	per := w.perTopic(n)
	want := make([]int64, len(w.subs))
	for i, s := range w.subs {
		for _, t := range s.topics {
			want[i] += per[t]
		}
	}
	return want
}

// routes returns, per topic, the subscribers it reaches.
func (w *workload) routes() [][]int {
	r := make([][]int, len(w.topics))
	for i, s := range w.subs {
		for _, t := range s.topics {
			r[t] = append(r[t], i)
		}
	}
	return r
}

// mqttFilter converts an eventbus pattern to an MQTT filter: dots become
// slashes and a final "*" becomes "+" (one level, which is all the
// workloads' topics have below the prefix).
func mqttFilter(p string) string {
	p = strings.ReplaceAll(p, ".", "/")
	if strings.HasSuffix(p, "/*") {
		p = strings.TrimSuffix(p, "*") + "+"
	}
	return p
}

// mqttTopic converts an eventbus topic to an MQTT topic name.
func mqttTopic(t string) string { return strings.ReplaceAll(t, ".", "/") }
