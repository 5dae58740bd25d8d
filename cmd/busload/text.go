package main

// The text form of a report.

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// mib formats a byte count in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// writeText prints the report for people.
func (r Report) writeText(w io.Writer) {
	mode := "Publish"
	if r.Async {
		mode = "PublishAsync"
	}
	rate := strconv.Itoa(r.Rate) + " events/s"
	if r.Rate == 0 {
		rate = "max rate"
	}
	fmt.Fprintf(w, "busload: %v at %s, %d subscribers (%s), %d topic(s), %d-byte payload, store %s, %s\n",
		r.Elapsed.Round(time.Millisecond), rate, r.Subs, strings.Join(r.Patterns, ","), r.Topics, r.Payload, r.Store, mode)
	r.Figures.writeText(w, "")
	fmt.Fprintf(w, "dropped       %d", r.Dropped)
	for _, p := range r.Policies {
		fmt.Fprintf(w, "  [%s: %d subs, %d dropped, %d of %d delivered, %d disconnected]",
			p.Policy, p.Subscriptions, p.Dropped, p.Delivered, p.Expected, p.Disconnected)
	}
	fmt.Fprintln(w)
	at10 := "n/a (run < 10s)"
	if r.HeapInUseAt10s > 0 {
		at10 = fmt.Sprintf("%s (live %s)", mib(r.HeapInUseAt10s), mib(r.HeapLiveAt10s))
	}
	fmt.Fprintf(w, "heap in use   at 10s %s, at end %s (live %s)\n", at10, mib(r.HeapInUseEnd), mib(r.HeapLiveEnd))
	fmt.Fprintf(w, "allocations   %.1f B/event, %.2f allocs/event, %d GC cycles while publishing\n",
		r.AllocBytesPerEvent, r.AllocsPerEvent, r.GCCycles)
	if r.Baseline != nil {
		fmt.Fprintln(w, "baseline      same load through plain channels (a buffered channel and a reader per subscriber, blocking sends)")
		r.Baseline.writeText(w, "  ")
	}
	if b := r.BusOverBaseline; b != nil {
		fmt.Fprintf(w, "bus/baseline  p50 %.2fx  p99 %.2fx  throughput %.2fx (deliveries/s)\n", b.P50, b.P99, b.Throughput)
	}
	if r.BaselinePtr != nil {
		fmt.Fprintln(w, "baseline-ptr  the same, each channel carrying an 8-byte message (the publish time) instead of the 144-byte Event")
		r.BaselinePtr.writeText(w, "  ")
	}
	if b := r.BusOverBaselinePtr; b != nil {
		fmt.Fprintf(w, "bus/ptr       p50 %.2fx  p99 %.2fx  throughput %.2fx (deliveries/s)\n", b.P50, b.P99, b.Throughput)
	}
}

// writeText prints the published, delivered and latency lines, their
// labels indented by indent.
func (f Figures) writeText(w io.Writer, indent string) {
	fmt.Fprintf(w, "%-14s%d events, %.0f events/s\n", indent+"published", f.Published, f.PublishRate)
	pct := 100.0
	if f.Expected > 0 {
		pct = 100 * float64(f.Delivered) / float64(f.Expected)
	}
	fmt.Fprintf(w, "%-14s%d of %d expected (%.2f%%), %.0f deliveries/s, drained %v after publishing\n",
		indent+"delivered", f.Delivered, f.Expected, pct, f.DeliveryRate, f.Drain.Round(time.Microsecond))
	fmt.Fprintf(w, "%-14sp50 %v  p95 %v  p99 %v  max %v\n", indent+"latency", f.LatencyP50, f.LatencyP95, f.LatencyP99, f.LatencyMax)
}
