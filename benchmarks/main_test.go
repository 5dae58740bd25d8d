package main

import (
	"strings"
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

func TestFirehose(t *testing.T) {
	w := firehoseWorkload()
	for _, im := range firehoseImpls() {
		t.Run(im.name, func(t *testing.T) {
			res := measureLossy(im, w, 5000, -1, 0, testLimits, func() {}, func() {})
			require.NoError(t, res.err)
			assert.Equal(t, 5000, res.published)
			assert.Equal(t, int64(5000), res.expected)
			assert.Equal(t, res.expected, res.received+res.lost())
			assert.Positive(t, res.finish)
			assert.Positive(t, res.rate())
			assert.Nil(t, res.sleeper)
			if res.droppedKnown {
				assert.LessOrEqual(t, res.dropped, res.lost(), "counted drops are lost deliveries")
			}
			if !strings.HasPrefix(im.name, "eventbus default") && !strings.HasPrefix(im.name, "eventbus CatchUp") {
				assert.Zero(t, res.lost(), "lossless implementations lose nothing")
			}
		})
	}
}

func TestSleeper(t *testing.T) {
	with, without := sleeperWorkload(4), sleeperWorkload(3)
	require.Len(t, with.subs, 4)
	for _, im := range sleeperImpls() {
		t.Run(im.name, func(t *testing.T) {
			res := measureLossy(im, with, 300, 3, 100*time.Microsecond, testLimits, func() {}, func() {})
			require.NoError(t, res.err)
			assert.Equal(t, int64(3*300), res.expected, "three fast subscribers")
			assert.Equal(t, res.expected, res.received+res.lost())
			assert.Positive(t, res.finish)
			require.NotNil(t, res.sleeper)
			assert.Equal(t, int64(300), res.sleeper.received+res.sleeper.missed)

			res = measureLossy(im, without, 300, -1, 0, testLimits, func() {}, func() {})
			require.NoError(t, res.err)
			assert.Equal(t, int64(3*300), res.expected)
			assert.Nil(t, res.sleeper)
		})
	}
}

func TestSleeperCounts(t *testing.T) {
	// A fake that delivers every event to every subscriber but the
	// sleeper gets only every other one, counting the rest as dropped:
	// the runner reports exactly that.
	im := impl{name: "fake", setup: func(w *workload, f *fixture, c *counters) (target, error) {
		return &skipTarget{c: c, subs: len(w.subs)}, nil
	}}
	res := measureLossy(im, sleeperWorkload(3), 100, 2, 0, testLimits, func() {}, func() {})
	require.NoError(t, res.err)
	assert.Equal(t, int64(200), res.expected)
	assert.Equal(t, int64(200), res.received)
	assert.Zero(t, res.lost())
	require.NotNil(t, res.sleeper)
	assert.Equal(t, sleeperCounts{received: 50, missed: 50, dropped: 50, droppedKnown: true}, *res.sleeper)
}

// skipTarget delivers synchronously; the last subscriber gets every other
// event and counts the others as dropped.
type skipTarget struct {
	c     *counters
	subs  int
	n     int
	drops int64
}

func (s *skipTarget) publish(int) error {
	s.n++
	for i := range s.subs {
		if i == s.subs-1 && s.n%2 == 0 {
			s.drops++
			continue
		}
		s.c.hit(i)
	}
	return nil
}
func (s *skipTarget) flush() error { return nil }
func (s *skipTarget) close() error { return nil }
func (s *skipTarget) dropped(i int) (int64, bool) {
	if i == s.subs-1 {
		return s.drops, true
	}
	return 0, true
}

func TestLossyTables(t *testing.T) {
	im := impl{name: "fake", notes: "a | b"}
	lc := lossyConfig{firehose: 10, sleeper: 10, subs: 3, sleep: time.Millisecond}
	f1 := []lossyRow{
		{im: impl{name: pointerBaselineName}, with: lossyResult{published: 10, expected: 10, received: 10, finish: time.Millisecond}},
		{im: im, with: lossyResult{published: 10, expected: 10, received: 4, dropped: 6, droppedKnown: true, finish: time.Millisecond}},
	}
	s1 := []lossyRow{{im: im,
		with:    lossyResult{expected: 20, received: 20, finish: 2 * time.Millisecond, sleeper: &sleeperCounts{received: 3, missed: 7, dropped: 7, droppedKnown: true}},
		without: lossyResult{expected: 20, received: 19, finish: time.Millisecond},
	}}
	var out strings.Builder
	writeLossyTables(&out, lc, f1, s1)
	for _, want := range []string{
		"| fake | 4 | 6 | 6 | 4 k | 0.40 | a \\| b |",
		"| fake | 0 of 20 | not counted | 2ms | 1ms | 2.00 | 1 | 3, 7, 7 | a \\| b |",
	} {
		assert.Contains(t, out.String(), want)
	}
}
