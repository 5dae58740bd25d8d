package otelbus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/choiros/eventbus"
)

// TestAddLatency puts the bus's buckets into the exported ones: those up
// to about a microsecond into the first, the last into +Inf.
func TestAddLatency(t *testing.T) {
	last := eventbus.HistogramBuckets - 1
	tests := []struct {
		name   string
		bucket int // of the bus's histogram
		want   int // of the exported one
	}{
		{"zero", 0, 0},
		{"a few ns", 5, 0},
		{"up to 1.023 µs", latencyFirst, 0},
		{"up to 2.047 µs", latencyFirst + 1, 1},
		{"up to 2^38-1 ns", last - 1, len(latencyBounds) - 1},
		{"beyond", last, len(latencyBounds)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dp := metricdata.HistogramDataPoint[float64]{BucketCounts: make([]uint64, len(latencyBounds)+1)}
			var h eventbus.Histogram
			h.Buckets[tt.bucket] = 3
			addLatency(&dp, time.Time{}, &h)
			want := make([]uint64, len(latencyBounds)+1)
			want[tt.want] = 3
			assert.Equal(t, want, dp.BucketCounts)
			assert.Equal(t, uint64(3), dp.Count)
		})
	}

	t.Run("two subscriptions", func(t *testing.T) {
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		dp := metricdata.HistogramDataPoint[float64]{StartTime: t0.Add(time.Hour), BucketCounts: make([]uint64, len(latencyBounds)+1)}
		a := eventbus.Histogram{Sum: 3 * time.Millisecond, Max: 2 * time.Millisecond}
		a.Buckets[21] = 2 // 1..2 ms
		addLatency(&dp, t0.Add(time.Hour), &a)
		b := eventbus.Histogram{Sum: 5 * time.Second, Max: 5 * time.Second}
		b.Buckets[33] = 1 // 4.3..8.6 s
		addLatency(&dp, t0, &b)
		addLatency(&dp, t0.Add(2*time.Hour), &eventbus.Histogram{}) // nothing yet: no maximum
		assert.Equal(t, uint64(3), dp.Count)
		assert.InDelta(t, 5.003, dp.Sum, 1e-9)
		maxv, ok := dp.Max.Value()
		assert.True(t, ok)
		assert.InDelta(t, 5.0, maxv, 1e-9)
		assert.Equal(t, t0, dp.StartTime, "the earliest subscription's")
		_, ok = dp.Min.Value()
		assert.False(t, ok, "the bus keeps no minimum")
	})
}
