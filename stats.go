package eventbus

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histBuckets is the number of buckets: the last holds everything from
// 2^38 ns (about 4.6 minutes) up.
const histBuckets = 40

// histogram counts durations in power-of-two nanosecond buckets, so
// observing allocates nothing and takes two atomic operations.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	max     atomic.Int64
}

func (h *histogram) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.buckets[min(bits.Len64(uint64(ns)), histBuckets-1)].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// summary returns the p50 and p99 bucket upper bounds and the maximum.
func (h *histogram) summary() (p50, p99, maxd time.Duration) {
	var counts [histBuckets]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0, 0, 0
	}
	maxd = time.Duration(h.max.Load())
	quantile := func(q float64) time.Duration {
		rank := uint64(q*float64(total-1)) + 1
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= rank {
				if i == 0 {
					return 0
				}
				return min(time.Duration(uint64(1)<<i-1), maxd)
			}
		}
		return maxd
	}
	return quantile(0.50), quantile(0.99), maxd
}
