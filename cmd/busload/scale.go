package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/choiros/eventbus"
)

// Scale mode defaults, used when the flag is not given.
const (
	scaleSubs   = 10_000 // -subs
	scaleEvents = 10_000 // -events: publishes per latency measurement
	hotTopics   = 100    // repeated topics are hot.0 … hot.99
)

// ScaleReport is the outcome of -mode scale. Durations are in nanoseconds
// in JSON.
type ScaleReport struct {
	Mode    string `json:"mode"` // "scale"
	Subs    int    `json:"subs"`
	Churn   string `json:"churn"`    // pairs per second, "max" or "0"
	ChurnBy string `json:"churn_by"` // "subscription" (Subscribe+Close pairs) or "pattern" (Add+Remove pairs on one subscription)
	Events  int    `json:"events"`   // publishes of each kind per latency measurement
	Rate    int    `json:"rate"`     // publishes per second while measuring (0: back to back)
	Store   string `json:"store"`
	Buffer  int    `json:"buffer"` // mailbox bound of the idle subscriptions (0: the bus default)

	// Creating the Subs idle subscriptions, one Subscribe at a time.
	Create         time.Duration `json:"create_ns"`
	SubscribeAvg   time.Duration `json:"subscribe_avg_ns"`
	SubscribeFirst time.Duration `json:"subscribe_first_1000_avg_ns"` // the first 1,000 (all if fewer)
	SubscribeLast  time.Duration `json:"subscribe_last_1000_avg_ns"`  // the last 1,000 (all if fewer)
	// Closing them, in the order they were made.
	UnsubscribeAvg   time.Duration `json:"unsubscribe_avg_ns"`
	UnsubscribeFirst time.Duration `json:"unsubscribe_first_1000_avg_ns"` // with (nearly) all present

	// Memory the idle subscriptions hold, after a GC, per subscription:
	// runtime.MemStats HeapInuse and StackInuse, and goroutines.
	HeapPerSub       float64 `json:"heap_per_sub_bytes"`
	StackPerSub      float64 `json:"stack_per_sub_bytes"`
	GoroutinesPerSub float64 `json:"goroutines_per_sub"`

	// Publish latency (synchronous Publish, one at a time) with no
	// subscription, then with the Subs present and churn running.
	NoSubs   PublishLatency `json:"no_subs"`
	WithSubs PublishLatency `json:"with_subs"`
	// WithSubs divided by NoSubs.
	FirstSeenRatio LatencyRatio `json:"first_seen_ratio"`
	RepeatedRatio  LatencyRatio `json:"repeated_ratio"`

	// Churn while WithSubs was measured: pairs made (see ChurnBy), their
	// rate and their average cost.
	ChurnPairs uint64        `json:"churn_pairs"`
	ChurnRate  float64       `json:"churn_per_sec"`
	ChurnAvg   time.Duration `json:"churn_pair_avg_ns"`
}

// PublishLatency is the latency of Publish to topics seen for the first
// time (fresh.<phase>.<i>) and to topics published before (hot.<i%100>).
type PublishLatency struct {
	FirstSeen Percentiles `json:"first_seen"`
	Repeated  Percentiles `json:"repeated"`
}

// Percentiles summarises latencies.
type Percentiles struct {
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// LatencyRatio is one Percentiles divided by another (0 where the divisor
// is 0).
type LatencyRatio struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

func latencyRatio(a, b Percentiles) LatencyRatio {
	div := func(x, y time.Duration) float64 {
		if y == 0 {
			return 0
		}
		return float64(x) / float64(y)
	}
	return LatencyRatio{P50: div(a.P50, b.P50), P99: div(a.P99, b.P99), Mean: div(a.Mean, b.Mean)}
}

// mixedPattern returns the i-th idle subscription's pattern: 40 % exact
// topics, 30 % "prefix.*", 29 % globs with a literal prefix and suffix
// ("g17.*.x17?"), 1 % residual globs with neither ("*.r17.*"). They are all
// different and none matches a topic busload publishes.
func mixedPattern(i int) string {
	switch r := i % 100; {
	case r < 40:
		return fmt.Sprintf("ent.%d.state", i)
	case r < 70:
		return fmt.Sprintf("sess%d.*", i)
	case r < 99:
		return fmt.Sprintf("g%d.*.x%d?", i, i)
	default:
		return fmt.Sprintf("*.r%d.*", i)
	}
}

// withDefault returns the flag's value if it was given, else def.
func withDefault(cfg config, flag string, value, def int) int {
	if cfg.Set[flag] {
		return value
	}
	return def
}

// runScale is -mode scale: it measures publish latency on an empty bus,
// creates cfg.Subs idle subscriptions of mixed shapes (timing each
// Subscribe and measuring the memory they hold), measures publish latency
// again while cfg.Churn subscribe+close pairs per second run beside it,
// and closes the subscriptions (timing each Close).
func runScale(ctx context.Context, cfg config, w io.Writer) (_ *ScaleReport, err error) {
	n := withDefault(cfg, "subs", cfg.Subs, scaleSubs)
	events := cfg.Events
	if events == 0 {
		events = scaleEvents
	}
	rep := &ScaleReport{Mode: "scale", Subs: n, Events: events, Rate: cfg.Rate, Store: cfg.Store, Churn: strconv.Itoa(cfg.Churn), ChurnBy: cfg.ChurnBy}
	if cfg.Churn == churnMax {
		rep.Churn = "max"
	}
	storeOpt, closeStore, err := openStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := closeStore(); cerr != nil && err == nil {
			err = fmt.Errorf("busload: closing store: %w", cerr)
		}
	}()
	opts := []eventbus.Option{storeOpt, eventbus.WithLogger(nil)}
	if cfg.Set["buffer"] {
		rep.Buffer = cfg.Buffer
		opts = append(opts, eventbus.WithBufferSize(cfg.Buffer))
	}
	bus, err := eventbus.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("busload: %w", err)
	}
	defer bus.Close()
	clk := newClock()

	if rep.NoSubs, err = publishLatency(ctx, bus, &clk, events, cfg.Rate, 0); err != nil {
		return nil, err
	}

	// Create the idle subscriptions.
	before, g0 := memNow()
	subs := make([]*eventbus.Subscription, 0, n)
	defer func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}()
	var times window
	nextProgress := clk.now() + int64(cfg.Progress)
	start := clk.now()
	for i := range n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := clk.now()
		s, err := bus.Subscribe(context.Background(), mixedPattern(i), eventbus.WithName("idle-"+strconv.Itoa(i)))
		t1 := clk.now()
		if err != nil {
			return nil, fmt.Errorf("busload: subscription %d (%s): %w", i, mixedPattern(i), err)
		}
		subs = append(subs, s)
		times.add(i, n, t1-t0)
		if cfg.Progress > 0 && t1 >= nextProgress {
			nextProgress = t1 + int64(cfg.Progress)
			fmt.Fprintf(w, "busload: scale: %d of %d subscriptions in %v, last one %v\n",
				i+1, n, time.Duration(t1-start).Round(time.Millisecond), time.Duration(t1-t0))
		}
	}
	rep.Create = time.Duration(clk.now() - start)
	rep.SubscribeAvg, rep.SubscribeFirst, rep.SubscribeLast = times.averages(n)
	after, g1 := memNow()
	rep.HeapPerSub = (float64(after.HeapInuse) - float64(before.HeapInuse)) / float64(n)
	rep.StackPerSub = (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)
	rep.GoroutinesPerSub = float64(g1-g0) / float64(n)

	// Publish latency with them present, and churn beside it.
	stopChurn, err := startChurn(bus, &clk, cfg.Churn, cfg.ChurnBy, n)
	if err != nil {
		return nil, err
	}
	rep.WithSubs, err = publishLatency(ctx, bus, &clk, events, cfg.Rate, 1)
	pairs, spent, elapsed, churnErr := stopChurn()
	if err != nil {
		return nil, err
	}
	if churnErr != nil {
		return nil, fmt.Errorf("busload: churn: %w", churnErr)
	}
	rep.FirstSeenRatio = latencyRatio(rep.WithSubs.FirstSeen, rep.NoSubs.FirstSeen)
	rep.RepeatedRatio = latencyRatio(rep.WithSubs.Repeated, rep.NoSubs.Repeated)
	rep.ChurnPairs = pairs
	if pairs > 0 {
		rep.ChurnAvg = spent / time.Duration(pairs)
		rep.ChurnRate = float64(pairs) / elapsed.Seconds()
	}

	// Close them, in the order they were made.
	var closes window
	for i, s := range subs {
		t0 := clk.now()
		if err := s.Close(); err != nil {
			return nil, fmt.Errorf("busload: closing subscription %d: %w", i, err)
		}
		closes.add(i, n, clk.now()-t0)
	}
	subs = nil
	rep.UnsubscribeAvg, rep.UnsubscribeFirst, _ = closes.averages(n)
	return rep, nil
}

// window sums durations over all of n operations, the first 1,000 and the
// last 1,000.
type window struct{ all, first, last int64 }

const windowLen = 1000

func (w *window) add(i, n int, d int64) {
	w.all += d
	if i < windowLen {
		w.first += d
	}
	if i >= n-windowLen {
		w.last += d
	}
}

// averages returns the averages over all, the first and the last 1,000.
func (w *window) averages(n int) (all, first, last time.Duration) {
	if n == 0 {
		return 0, 0, 0
	}
	k := int64(min(n, windowLen))
	return time.Duration(w.all / int64(n)), time.Duration(w.first / k), time.Duration(w.last / k)
}

// memNow collects garbage and returns the memory statistics and the
// number of goroutines. It collects twice: what a sync.Pool holds (and
// whatever the pool's owner, such as a closed Bus, holds) lives on until
// the second collection after it was last used.
func memNow() (runtime.MemStats, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m, runtime.NumGoroutine()
}

// publishLatency times events synchronous Publishes to topics never
// published before (fresh.<phase>.<i>) and as many to hot.<i%100>
// (published once each beforehand, untimed), alternately, rate publishes
// per second in all (0: one after the other, as fast as they return).
func publishLatency(ctx context.Context, bus *eventbus.Bus, clk *clock, events, rate, phase int) (PublishLatency, error) {
	body := payload(100)
	fresh := make([]eventbus.Event, events)
	hot := make([]eventbus.Event, events)
	for i := range events {
		fresh[i] = eventbus.Event{Type: eventbus.Custom("load"), Topic: "fresh." + strconv.Itoa(phase) + "." + strconv.Itoa(i), Payload: body, Source: "busload"}
		hot[i] = fresh[i]
		hot[i].Topic = "hot." + strconv.Itoa(i%hotTopics)
	}
	for i := range min(events, hotTopics) {
		if err := bus.Publish(ctx, hot[i]); err != nil {
			return PublishLatency{}, fmt.Errorf("busload: publish: %w", err)
		}
	}
	var hf, hh histogram
	var sumF, sumH int64
	timed := func(e eventbus.Event, h *histogram, sum *int64) error {
		t0 := clk.now()
		if err := bus.Publish(ctx, e); err != nil {
			return fmt.Errorf("busload: publish: %w", err)
		}
		d := clk.now() - t0
		h.record(d)
		*sum += d
		return nil
	}
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(max(time.Millisecond, time.Second/time.Duration(rate)))
		defer tick.Stop()
	}
	start := clk.now()
	for i := 0; i < events; {
		owed := events
		if rate > 0 {
			owed = min(events, 1+int(float64(clk.now()-start)*float64(rate)/2e9))
		}
		for ; i < owed; i++ {
			if err := timed(fresh[i], &hf, &sumF); err != nil {
				return PublishLatency{}, err
			}
			if err := timed(hot[i], &hh, &sumH); err != nil {
				return PublishLatency{}, err
			}
		}
		if i < events && tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return PublishLatency{}, ctx.Err()
			}
		}
	}
	summary := func(h *histogram, sum int64) Percentiles {
		var m merged
		m.add(h)
		return Percentiles{P50: m.quantile(0.5), P99: m.quantile(0.99), Max: time.Duration(m.max),
			Mean: time.Duration(sum / int64(max(events, 1)))}
	}
	return PublishLatency{FirstSeen: summary(&hf, sumF), Repeated: summary(&hh, sumH)}, nil
}

// startChurn starts a goroutine that subscribes a fresh pattern of mixed
// shape and closes it again (by churnSubscribe), or adds it to one
// subscription of its own and removes it again (by churnPattern), rate
// pairs per second (churnMax: as fast as it can; 0: none). stop ends it
// (closing that subscription) and returns the pairs made, the time spent
// in them, how long it ran, and the error that stopped it early, if any.
func startChurn(bus *eventbus.Bus, clk *clock, rate int, by string, first int) (stop func() (pairs uint64, spent, elapsed time.Duration, err error), err error) {
	if rate == 0 {
		return func() (uint64, time.Duration, time.Duration, error) { return 0, 0, 0, nil }, nil
	}
	// With -churn-by pattern, one subscription (matching no published
	// topic) adds and removes the patterns.
	var client *eventbus.Subscription
	if by == churnPattern {
		if client, err = bus.Subscribe(context.Background(), "busload.churn"); err != nil {
			return nil, fmt.Errorf("busload: churn: %w", err)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var pairs atomic.Uint64
	var spent int64
	var failed error
	start := clk.now()
	wg.Go(func() {
		pair := func() bool {
			t0 := clk.now()
			p := mixedPattern(first + int(pairs.Load()))
			var err error
			if client != nil {
				if err = client.Add(p); err == nil {
					err = client.Remove(p)
				}
			} else {
				var s *eventbus.Subscription
				if s, err = bus.Subscribe(context.Background(), p); err == nil {
					err = s.Close()
				}
			}
			if err != nil {
				failed = err
				return false
			}
			spent += clk.now() - t0
			pairs.Add(1)
			return true
		}
		if rate == churnMax {
			// At least one pair, however soon stop comes.
			for pair() {
				select {
				case <-done:
					return
				default:
				}
			}
			return
		}
		tick := time.NewTicker(max(time.Millisecond, time.Second/time.Duration(rate)))
		defer tick.Stop()
		for {
			owed := uint64(float64(clk.now()-start) * float64(rate) / 1e9)
			for pairs.Load() < owed {
				if !pair() {
					return
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() (uint64, time.Duration, time.Duration, error) {
		close(done)
		wg.Wait()
		if client != nil {
			if err := client.Close(); err != nil && failed == nil {
				failed = err
			}
		}
		return pairs.Load(), time.Duration(spent), time.Duration(clk.now() - start), failed
	}, nil
}

// writeText prints the scale report for people.
func (r *ScaleReport) writeText(w io.Writer) {
	bound := "default bound"
	if r.Buffer > 0 {
		bound = fmt.Sprintf("bound %d", r.Buffer)
	}
	pace := fmt.Sprintf("%d/s", r.Rate)
	if r.Rate == 0 {
		pace = "back to back"
	}
	fmt.Fprintf(w, "busload scale: %d idle subscriptions (40%% exact, 30%% prefix.*, 29%% globs like g17.*.x17?, 1%% like *.r17.*; %s), churn %s, %d publishes of each kind per measurement (%s), store %s\n",
		r.Subs, bound, r.Churn, r.Events, pace, r.Store)
	ratio := 0.0
	if r.SubscribeFirst > 0 {
		ratio = float64(r.SubscribeLast) / float64(r.SubscribeFirst)
	}
	fmt.Fprintf(w, "subscribe     %d in %v: avg %v, first 1000 avg %v, last 1000 avg %v (last/first %.2fx)\n",
		r.Subs, r.Create.Round(time.Millisecond), sig3(r.SubscribeAvg), sig3(r.SubscribeFirst), sig3(r.SubscribeLast), ratio)
	fmt.Fprintf(w, "unsubscribe   avg %v, first 1000 (with all present) avg %v\n", sig3(r.UnsubscribeAvg), sig3(r.UnsubscribeFirst))
	fmt.Fprintf(w, "memory        %.0f B/sub heap + %.0f B/sub stack = %.1f KiB/sub, %.3f goroutines/sub (MemStats HeapInuse, StackInuse after GC)\n",
		r.HeapPerSub, r.StackPerSub, (r.HeapPerSub+r.StackPerSub)/1024, r.GoroutinesPerSub)
	pl := func(label string, p PublishLatency) {
		fmt.Fprintf(w, "%-14sfirst-seen p50 %v p99 %v max %v mean %v; repeated p50 %v p99 %v max %v mean %v\n", label,
			sig3(p.FirstSeen.P50), sig3(p.FirstSeen.P99), sig3(p.FirstSeen.Max), sig3(p.FirstSeen.Mean),
			sig3(p.Repeated.P50), sig3(p.Repeated.P99), sig3(p.Repeated.Max), sig3(p.Repeated.Mean))
	}
	pl("publish, none", r.NoSubs)
	pl("publish, subs", r.WithSubs)
	fmt.Fprintf(w, "subs/none     first-seen p50 %.2fx p99 %.2fx mean %.2fx; repeated p50 %.2fx p99 %.2fx mean %.2fx\n",
		r.FirstSeenRatio.P50, r.FirstSeenRatio.P99, r.FirstSeenRatio.Mean, r.RepeatedRatio.P50, r.RepeatedRatio.P99, r.RepeatedRatio.Mean)
	what := "subscribe+close"
	if r.ChurnBy == churnPattern {
		what = "add+remove (one subscription)"
	}
	fmt.Fprintf(w, "churn         %d %s pairs while measuring, %.0f/s, avg %v per pair\n", r.ChurnPairs, what, r.ChurnRate, sig3(r.ChurnAvg))
}

// sig3 rounds d to three significant digits, for reading.
func sig3(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for v := d; v >= 1000 || v <= -1000; v /= 10 {
		unit *= 10
	}
	return d.Round(unit)
}
