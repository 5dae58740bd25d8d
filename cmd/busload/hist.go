package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear: values below 64 ns have a bucket
// each; above that, every power of two is split into 64 buckets, so a
// bucket's width is at most 1/64 (1.6 %) of its values. Values above
// histMax land in the last bucket (the exact maximum is kept apart).
const (
	histSubBits = 6
	histSub     = 1 << histSubBits             // buckets per power of two
	histShifts  = 35                           // powers of two above histSub: up to ~2^41 ns (~36 min)
	histBuckets = histSub + histShifts*histSub // 2,304 buckets, 18 KiB per histogram
	histMax     = int64(1)<<(histShifts+histSubBits) - 1
)

// histIndex returns the bucket of v nanoseconds.
func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > histMax {
		v = histMax
	}
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	top := int(v >> shift) // in [histSub, 2*histSub)
	return histSub + shift*histSub + top - histSub
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i - histSub) / histSub
	top := int64((i-histSub)%histSub + histSub)
	return (top+1)<<shift - 1
}

// histogram records latencies from one goroutine while others read it.
// It never allocates after newHistogram.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

// record adds one latency of ns nanoseconds.
func (h *histogram) record(ns int64) {
	h.counts[histIndex(ns)].Add(1)
	if ns > h.max.Load() {
		h.max.Store(ns) // only the owning goroutine writes
	}
}

// merged is a snapshot of several histograms added together.
type merged struct {
	counts [histBuckets]uint64
	total  uint64
	max    int64
}

// add adds h's current counts to m.
func (m *merged) add(h *histogram) {
	for i := range h.counts {
		c := h.counts[i].Load()
		m.counts[i] += c
		m.total += c
	}
	m.max = max(m.max, h.max.Load())
}

// quantile returns the upper bound of the bucket holding quantile q
// (0 < q <= 1), capped at the exact maximum; 0 when nothing was recorded.
func (m *merged) quantile(q float64) time.Duration {
	if m.total == 0 {
		return 0
	}
	rank := uint64(q * float64(m.total))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range m.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), m.max))
		}
	}
	return time.Duration(m.max)
}
