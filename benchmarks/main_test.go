package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testLimits = limits{stall: 5 * time.Second, deadline: 30 * time.Second}

func TestWorkloads(t *testing.T) {
	ws := workloads()
	require.Len(t, ws, 3)
	tests := []struct {
		name     string
		w        *workload
		events   int
		subs     int
		topics   int
		expected int64
	}{
		{name: "W1", w: ws[0], events: 1000, subs: 1, topics: 1, expected: 1000},
		{name: "W2", w: ws[1], events: 1000, subs: 100, topics: 1, expected: 100 * 1000},
		// Per 1,000 events (one per topic): 5 pattern subscribers per topic,
		// plus one exact subscriber on every 20th topic.
		{name: "W3", w: ws[2], events: 1000, subs: 100, topics: 1000, expected: 5*1000 + 50},
		{name: "W3 partial round", w: ws[2], events: 1500, subs: 100, topics: 1000, expected: 5*1500 + 50 + 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Len(t, tt.w.subs, tt.subs)
			assert.Len(t, tt.w.topics, tt.topics)
			var sum int64
			for _, n := range tt.w.expected(tt.events) {
				sum += n
			}
			assert.Equal(t, tt.expected, sum)
		})
	}
	var wild int
	for _, s := range ws[2].subs {
		if s.wildcard() {
			wild++
			assert.Len(t, s.topics, 100, s.pattern)
		} else {
			assert.Len(t, s.topics, 1, s.pattern)
		}
	}
	assert.Equal(t, 50, wild)
}

func TestMQTTNames(t *testing.T) {
	tests := []struct{ in, filter, topic string }{
		{in: "bench.w1", filter: "bench/w1", topic: "bench/w1"},
		{in: "t.3.*", filter: "t/3/+"},
		{in: "t.3.17", filter: "t/3/17", topic: "t/3/17"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.filter, mqttFilter(tt.in))
			if tt.topic != "" {
				assert.Equal(t, tt.topic, mqttTopic(tt.in))
			}
		})
	}
}

// TestImplementations runs every implementation on every workload it takes
// part in, small, and checks each subscriber got exactly its count.
func TestImplementations(t *testing.T) {
	for _, w := range workloads() {
		for _, im := range implementations() {
			if !im.runs(w) {
				continue
			}
			t.Run(w.name+"/"+im.name, func(t *testing.T) {
				n := w.eventsFor(2000)
				res := measure(im, w, n, testLimits, func() {}, func() {})
				require.NoError(t, res.err)
				assert.False(t, res.lossy, "lossy: %d of %d", res.received, res.expected)
				assert.Equal(t, res.expected, res.received)
				assert.Zero(t, res.extra)
				assert.Positive(t, res.rate())
			})
		}
	}
}

func TestMeasureReportsLoss(t *testing.T) {
	// A target that drops every other event is reported lossy, not waited
	// on until the deadline.
	w := workloads()[0]
	im := impl{name: "lossy", setup: func(w *workload, f *fixture, c *counters) (target, error) {
		return &halfTarget{c: c}, nil
	}}
	start := time.Now()
	res := measure(im, w, 100, limits{stall: 100 * time.Millisecond, deadline: 10 * time.Second}, func() {}, func() {})
	require.NoError(t, res.err)
	assert.True(t, res.lossy)
	assert.Equal(t, int64(50), res.received)
	assert.Equal(t, int64(100), res.expected)
	assert.Less(t, time.Since(start), 5*time.Second)
}

type halfTarget struct {
	c *counters
	n int
}

func (h *halfTarget) publish(int) error {
	if h.n++; h.n%2 == 0 {
		h.c.hit(0)
	}
	return nil
}
func (h *halfTarget) flush() error { return nil }
func (h *halfTarget) close() error { return nil }
