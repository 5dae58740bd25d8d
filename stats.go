package eventbus

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histBuckets is the number of buckets: the last holds everything from
// 2^38 ns (about 4.6 minutes) up.
const histBuckets = 40

// HistogramBuckets is the number of buckets of a Histogram.
const HistogramBuckets = histBuckets

// Histogram is a snapshot of a duration histogram the bus keeps, such as a
// subscription's delivery latency (SubscriptionStats.Latency), counted
// since the subscription was made. Its buckets are powers of two:
// Buckets[0] counts durations of 0, Buckets[i] those from 2^(i-1) ns up to
// HistogramBound(i) = 2^i-1 ns, and the last bucket everything from
// 2^38 ns (about 4.6 minutes) up. The fields are read one at a time while
// the bus goes on counting, and the bus adds to Sum once per run of
// deliveries, so a snapshot may count an event in Buckets and not yet in
// Sum; each only grows.
type Histogram struct {
	Buckets [HistogramBuckets]uint64
	Sum     time.Duration // of the durations counted
	Max     time.Duration // the longest
}

// Count returns the number of durations counted.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// HistogramBound returns the longest duration bucket i of a Histogram
// counts: 2^i-1 ns, or the longest time.Duration for the last bucket.
func HistogramBound(i int) time.Duration {
	if i >= HistogramBuckets-1 {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(uint64(1)<<i - 1)
}

// histogram counts durations in power-of-two nanosecond buckets, so
// observing allocates nothing and takes two atomic operations, and a third
// for the sum; the loop adds a run of deliveries' sum once, and a bucket
// once per stretch of the run with the same latency (countN).
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	sum     atomic.Int64
	max     atomic.Int64
}

// observe counts one observation of ns, the sum included.
func (h *histogram) observe(ns int64) {
	h.addSum(h.countN(ns, 1))
}

// countN counts k observations of ns in the buckets and the maximum, not
// in the sum, and returns what to add to the sum (k×ns).
func (h *histogram) countN(ns, k int64) int64 {
	if ns < 0 {
		ns = 0
	}
	h.buckets[min(bits.Len64(uint64(ns)), histBuckets-1)].Add(uint64(k))
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return ns * k
		}
	}
}

// addSum adds durations counted with countN to the sum.
func (h *histogram) addSum(ns int64) { h.sum.Add(ns) }

// snapshot copies the counts.
func (h *histogram) snapshot() Histogram {
	var s Histogram
	for i := range h.buckets {
		s.Buckets[i] = h.buckets[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	s.Max = time.Duration(h.max.Load())
	return s
}

// summary returns the p50 and p99 bucket upper bounds and the maximum.
func (h *Histogram) summary() (p50, p99, maxd time.Duration) {
	total := h.Count()
	if total == 0 {
		return 0, 0, 0
	}
	maxd = h.Max
	quantile := func(q float64) time.Duration {
		rank := uint64(q*float64(total-1)) + 1
		var seen uint64
		for i, c := range h.Buckets {
			if seen += c; seen >= rank {
				if i == 0 {
					return 0
				}
				return min(HistogramBound(i), maxd)
			}
		}
		return maxd
	}
	return quantile(0.50), quantile(0.99), maxd
}
