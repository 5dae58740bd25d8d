package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/choiros/eventbus"
	"github.com/oklog/ulid/v2"
)

// Report is the outcome of one run. Durations are in nanoseconds in JSON.
type Report struct {
	Mode     string   `json:"mode"` // "load"
	Rate     int      `json:"rate"`
	Subs     int      `json:"subs"`
	Patterns []string `json:"patterns"`
	Topics   int      `json:"topics"`
	Payload  int      `json:"payload"`
	Store    string   `json:"store"`
	Async    bool     `json:"async"`

	Figures             // of the bus; its fields are at the top level in JSON
	Dropped      uint64 `json:"dropped"`      // Stats().Dropped of the bus
	Disconnected int    `json:"disconnected"` // subscriptions ended by ErrSlowConsumer

	Policies []PolicyReport `json:"policies"`

	// Heap in use (runtime/metrics heap objects + unused) and the live heap
	// after the last GC, at 10 s (0 if the run was shorter) and when
	// publishing ended. The live heap is 0 until the first GC.
	HeapInUseAt10s uint64 `json:"heap_inuse_10s,omitempty"`
	HeapLiveAt10s  uint64 `json:"heap_live_10s,omitempty"`
	HeapInUseEnd   uint64 `json:"heap_inuse_end"`
	HeapLiveEnd    uint64 `json:"heap_live_end"`

	// Heap allocations of the whole process while publishing, per published
	// event, and GC cycles. Busload's own publisher and readers allocate
	// nothing per event, so this is the bus's cost (plus the progress
	// lines and the runtime).
	AllocBytesPerEvent float64 `json:"alloc_bytes_per_event"`
	AllocsPerEvent     float64 `json:"allocs_per_event"`
	GCCycles           uint64  `json:"gc_cycles"`

	// With -baseline: the same workload through plain buffered channels
	// (see runBaseline), and the bus's figures divided by the baseline's;
	// once carrying the Event by value, as the bus's C() does, and once
	// carrying an 8-byte message (the publish time), the pointer-size
	// limit users compare a bus with.
	Baseline           *Figures `json:"baseline,omitempty"`
	BusOverBaseline    *Ratios  `json:"bus_over_baseline,omitempty"`
	BaselinePtr        *Figures `json:"baseline_ptr,omitempty"`
	BusOverBaselinePtr *Ratios  `json:"bus_over_baseline_ptr,omitempty"`
}

// Figures are the throughput and latency of one run, of the bus or of the
// baseline, measured the same way.
type Figures struct {
	Elapsed     time.Duration `json:"elapsed_ns"`      // publishing
	Drain       time.Duration `json:"drain_ns"`        // from the end of publishing to the last receipt
	Published   uint64        `json:"published"`       // events accepted by Publish/PublishAsync (or sent)
	PublishRate float64       `json:"publish_per_sec"` // Published / Elapsed

	Expected     uint64  `json:"expected"`          // deliveries a lossless bus makes
	Delivered    uint64  `json:"delivered"`         // events the subscribers read
	DeliveryRate float64 `json:"delivered_per_sec"` // Delivered / (Elapsed + Drain)

	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP95 time.Duration `json:"latency_p95_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`
}

// Ratios are the bus's figures divided by the baseline's (0 where the
// baseline's is 0): above 1 the bus is slower (latency) or faster
// (throughput, which is deliveries per second).
type Ratios struct {
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	Throughput float64 `json:"throughput"`
}

// ratios compares bus with base.
func ratios(bus, base Figures) Ratios {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	return Ratios{
		P50:        div(float64(bus.LatencyP50), float64(base.LatencyP50)),
		P99:        div(float64(bus.LatencyP99), float64(base.LatencyP99)),
		Throughput: div(bus.DeliveryRate, base.DeliveryRate),
	}
}

// PolicyReport sums the subscriptions of one overflow policy.
type PolicyReport struct {
	Policy        string `json:"policy"`
	Subscriptions int    `json:"subscriptions"`
	Expected      uint64 `json:"expected"`
	Delivered     uint64 `json:"delivered"` // read by the subscribers
	Dropped       uint64 `json:"dropped"`   // SubscriptionStats.Dropped
	Disconnected  int    `json:"disconnected"`
}

// subscriber is one subscription (or baseline channel) and what its reader
// measured.
type subscriber struct {
	c        <-chan eventbus.Event  // the mailbox its reader drains
	sub      *eventbus.Subscription // nil in the baseline
	policy   eventbus.Overflow
	topics   []int        // indexes of the topics its pattern matches
	readFn   func(*clock) // the baseline's reader, if not s.read
	hist     histogram
	received atomic.Uint64
	last     int64 // monotonic ns of the last receipt; written by the reader before it exits
}

// newSubscribers returns the cfg.Subs subscribers of a run, without
// mailboxes: patterns and policies round-robin, and the topics each pattern
// matches.
func newSubscribers(cfg config, topics []string) []*subscriber {
	subs := make([]*subscriber, cfg.Subs)
	for i := range subs {
		pat := cfg.Patterns[i%len(cfg.Patterns)]
		s := &subscriber{policy: cfg.Overflow[i%len(cfg.Overflow)]}
		for t, topic := range topics {
			if eventbus.Match(pat, topic) {
				s.topics = append(s.topics, t)
			}
		}
		subs[i] = s
	}
	return subs
}

// read records the latency of every event in s.c until it is closed.
func (s *subscriber) read(clk *clock) {
	if s.readFn != nil {
		s.readFn(clk)
		return
	}
	recordAll(s, s.c, clk, func(e eventbus.Event) int64 { return sentAt(e.ID) })
}

// recordAll records into s the latency of every message of c until it is
// closed; at returns the publish time a message carries.
func recordAll[M any](s *subscriber, c <-chan M, clk *clock, at func(M) int64) {
	var last int64
	for m := range c {
		last = clk.now()
		s.hist.record(last - at(m))
		s.received.Add(1)
	}
	s.last = last
}

// expected returns the deliveries s gets from a lossless bus.
func (s *subscriber) expected(perTopic []uint64) uint64 {
	var exp uint64
	for _, t := range s.topics {
		exp += perTopic[t]
	}
	return exp
}

// startReaders starts a reader per subscriber; wait returns when every
// mailbox is closed and drained.
func startReaders(clk *clock, subs []*subscriber) (wait func()) {
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Go(func() { s.read(clk) })
	}
	return readers.Wait
}

// summarize computes the figures of a run from what its subscribers read.
func summarize(subs []*subscriber, perTopic []uint64, elapsed time.Duration, published uint64) Figures {
	f := Figures{Elapsed: elapsed, Published: published}
	if elapsed > 0 {
		f.PublishRate = float64(published) / elapsed.Seconds()
	}
	var m merged
	var lastRecv int64
	for _, s := range subs {
		m.add(&s.hist)
		lastRecv = max(lastRecv, s.last)
		f.Expected += s.expected(perTopic)
		f.Delivered += s.received.Load()
	}
	f.Drain = max(time.Duration(lastRecv)-elapsed, 0)
	if span := elapsed + f.Drain; span > 0 {
		f.DeliveryRate = float64(f.Delivered) / span.Seconds()
	}
	f.LatencyP50 = m.quantile(0.50)
	f.LatencyP95 = m.quantile(0.95)
	f.LatencyP99 = m.quantile(0.99)
	f.LatencyMax = time.Duration(m.max)
	return f
}

// clock is a monotonic clock shared by the publisher and the readers.
type clock struct {
	epoch   time.Time
	epochMs uint64 // epoch wall time in Unix ms
}

func newClock() clock {
	now := time.Now()
	return clock{epoch: now, epochMs: uint64(now.UnixMilli())}
}

// now returns nanoseconds since the epoch.
func (c *clock) now() int64 { return int64(time.Since(c.epoch)) }

// stamp makes an event ID carrying the publish time at (ns since the
// epoch): a ULID whose time is the wall-clock millisecond and whose entropy
// holds at and a counter.
func (c *clock) stamp(at int64, n uint64) ulid.ULID {
	var id ulid.ULID
	ms := c.epochMs + uint64(at)/1e6
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	binary.BigEndian.PutUint64(id[6:14], uint64(at))
	binary.BigEndian.PutUint16(id[14:16], uint16(n))
	return id
}

// sentAt returns the publish time stamp put in id.
func sentAt(id ulid.ULID) int64 { return int64(binary.BigEndian.Uint64(id[6:14])) }

// topicName returns topic i of the run.
func topicName(prefix string, i int) string { return prefix + "." + strconv.Itoa(i) }

// payload returns a valid JSON value of exactly n bytes (a string), or nil
// (published as null) for n == 0.
func payload(n int) []byte {
	switch n {
	case 0:
		return nil
	case 1:
		return []byte("0")
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	b[0], b[n-1] = '"', '"'
	return b
}

// allocSample reads the cumulative heap allocations and GC cycles.
type allocSample struct{ bytes, objects, cycles uint64 }

func readAllocs() allocSample {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/allocs:objects"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	var a allocSample
	for i, dst := range []*uint64{&a.bytes, &a.objects, &a.cycles} {
		if s[i].Value.Kind() == metrics.KindUint64 {
			*dst = s[i].Value.Uint64()
		}
	}
	return a
}

// heapSample reads heap in use and live heap without stopping the world.
func heapSample() (inuse, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

// openStore returns the bus option for cfg.Store and a func closing a store
// the run opened.
func openStore(spec string) (eventbus.Option, func() error, error) {
	noop := func() error { return nil }
	switch {
	case spec == "none":
		return eventbus.WithStore(nil), noop, nil
	case spec == "memory":
		return nil, noop, nil // the bus default: a MemoryStore it owns
	case strings.HasPrefix(spec, "sqlite:"):
		st, err := openSQLite(strings.TrimPrefix(spec, "sqlite:"))
		if err != nil {
			return nil, nil, fmt.Errorf("busload: %w", err)
		}
		return eventbus.WithStore(st), st.Close, nil
	}
	return nil, nil, fmt.Errorf("busload: unknown store %q", spec)
}

// run publishes for cfg.Duration, shuts the bus down and reports; with
// cfg.Baseline it then runs the same workload through plain channels (see
// runBaseline) and adds its figures. Progress lines go to w every
// cfg.Progress. If ctx ends early, publishing stops and the report covers
// what was published; a baseline is run only if ctx was still live after
// the bus run.
func run(ctx context.Context, cfg config, w io.Writer) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	rep, err := runBus(ctx, cfg, w)
	if err != nil || !cfg.Baseline || ctx.Err() != nil {
		return rep, err
	}
	base, err := runBaseline(ctx, cfg, w, "busload: baseline",
		func(e eventbus.Event) eventbus.Event { return e }, func(e eventbus.Event) int64 { return sentAt(e.ID) })
	if err != nil {
		return rep, err
	}
	r := ratios(rep.Figures, base)
	rep.Baseline, rep.BusOverBaseline = &base, &r
	if ctx.Err() != nil {
		return rep, nil
	}
	ptr, err := runBaseline(ctx, cfg, w, "busload: baseline-ptr",
		func(e eventbus.Event) int64 { return sentAt(e.ID) }, func(at int64) int64 { return at })
	if err != nil {
		return rep, err
	}
	rp := ratios(rep.Figures, ptr)
	rep.BaselinePtr, rep.BusOverBaselinePtr = &ptr, &rp
	return rep, nil
}

// topicNames returns the topics of a run.
func topicNames(cfg config) []string {
	topics := make([]string, cfg.Topics)
	for i := range topics {
		topics[i] = topicName(cfg.Prefix, i)
	}
	return topics
}

// startProgress starts the progress lines of a run, prefixed with label, if
// cfg.Progress > 0; stop ends them and waits (it may be called again).
// dropped and at10 may be nil.
func startProgress(w io.Writer, label string, cfg config, clk *clock, subs []*subscriber, published *atomic.Uint64,
	dropped func() uint64, at10 func(inuse, live uint64)) (stop func()) {
	if cfg.Progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() { reportProgress(w, label, cfg, clk, subs, published, dropped, done, at10) })
	return sync.OnceFunc(func() {
		close(done)
		progress.Wait()
	})
}

// runBus is the bus run of run.
func runBus(ctx context.Context, cfg config, w io.Writer) (rep Report, err error) {
	storeOpt, closeStore, err := openStore(cfg.Store)
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := closeStore(); cerr != nil && err == nil {
			err = fmt.Errorf("busload: closing store: %w", cerr)
		}
	}()
	bus, err := eventbus.New(storeOpt, eventbus.WithBufferSize(cfg.Buffer), eventbus.WithLogger(nil))
	if err != nil {
		return rep, fmt.Errorf("busload: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = bus.Close()
		}
	}()

	topics := topicNames(cfg)
	subs := newSubscribers(cfg, topics)
	for i, s := range subs {
		pat := cfg.Patterns[i%len(cfg.Patterns)]
		s.sub, err = bus.Subscribe(context.Background(), pat,
			eventbus.WithOverflow(s.policy), eventbus.WithName("busload-"+strconv.Itoa(i)))
		if err != nil {
			return rep, fmt.Errorf("busload: subscriber %d (%s, %s): %w", i, pat, s.policy, err)
		}
		s.c = s.sub.C()
	}

	clk := newClock()
	waitReaders := startReaders(&clk, subs)

	// Progress lines, until the drain is over.
	var published atomic.Uint64
	var heap10 [2]uint64 // written by the progress goroutine, read after it stops
	stopProgress := startProgress(w, "busload:", cfg, &clk, subs, &published,
		func() uint64 { return bus.Stats().Dropped },
		func(inuse, live uint64) { heap10 = [2]uint64{inuse, live} })
	defer stopProgress()

	// Publish. ctx only stops the loop between events: a Publish cut short
	// by ctx could still deliver an event that would not be counted.
	pctx := context.WithoutCancel(ctx)
	pub := bus.Publish
	if cfg.Async {
		pub = bus.PublishAsync
	}
	send := func(_ int, e eventbus.Event) error { return pub(pctx, e) }
	perTopic := make([]uint64, len(topics))
	allocStart := readAllocs()
	pubErr := publish(ctx, cfg, &clk, topics, perTopic, &published, send)
	elapsed := time.Duration(clk.now())
	allocEnd := readAllocs()
	inuseEnd, liveEnd := heapSample()

	// Drain: Shutdown delivers what was accepted and closes every mailbox.
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainWithin)
	defer cancel()
	shutErr := bus.Shutdown(dctx)
	closed = true
	if shutErr != nil {
		// Shutdown finishes in the background; wait so nothing outlives run.
		_ = bus.Close()
	}
	waitReaders()
	stopProgress()
	if pubErr != nil {
		return rep, pubErr
	}
	if shutErr != nil {
		return rep, fmt.Errorf("busload: draining the bus: %w", shutErr)
	}

	rep = Report{
		Mode: "load", Rate: cfg.Rate, Subs: cfg.Subs, Patterns: cfg.Patterns, Topics: cfg.Topics,
		Payload: cfg.Payload, Store: cfg.Store, Async: cfg.Async,
		Figures:      summarize(subs, perTopic, elapsed, published.Load()),
		HeapInUseEnd: inuseEnd, HeapLiveEnd: liveEnd,
	}
	rep.HeapInUseAt10s, rep.HeapLiveAt10s = heap10[0], heap10[1]
	if rep.HeapInUseAt10s == 0 && elapsed >= cfg.HeapAt {
		// The progress tick at 10 s lost the race with the end of a
		// 10-second run: the end sample is the 10 s sample.
		rep.HeapInUseAt10s, rep.HeapLiveAt10s = inuseEnd, liveEnd
	}
	rep.GCCycles = allocEnd.cycles - allocStart.cycles
	if rep.Published > 0 {
		rep.AllocBytesPerEvent = float64(allocEnd.bytes-allocStart.bytes) / float64(rep.Published)
		rep.AllocsPerEvent = float64(allocEnd.objects-allocStart.objects) / float64(rep.Published)
	}
	policyIndex := map[eventbus.Overflow]int{}
	for _, s := range subs {
		i, ok := policyIndex[s.policy]
		if !ok {
			i = len(rep.Policies)
			policyIndex[s.policy] = i
			rep.Policies = append(rep.Policies, PolicyReport{Policy: s.policy.String()})
		}
		pr := &rep.Policies[i]
		pr.Subscriptions++
		pr.Expected += s.expected(perTopic)
		pr.Delivered += s.received.Load()
		pr.Dropped += s.sub.Stats().Dropped
		if errors.Is(s.sub.Err(), eventbus.ErrSlowConsumer) {
			pr.Disconnected++
			rep.Disconnected++
		}
	}
	rep.Dropped = bus.Stats().Dropped
	return rep, nil
}

// runBaseline runs the workload of cfg through plain Go channels instead of
// a bus: per subscriber a channel of cfg.Buffer messages and a reader
// goroutine, and a publisher that sends each event, as the message msg
// makes of it, to the channel of every subscriber whose pattern matches its
// topic (routes computed beforehand), blocking while one is full, so
// nothing is lost; at returns the publish time a message carries. Pacing,
// the time stamp (taken just before the first send, where the bus run
// takes it just before Publish), the readers, the histograms and the
// figures are the bus run's own code: the runs differ only in what carries
// the events. -overflow, -store and -async do not apply. Progress lines
// start with label.
func runBaseline[M any](ctx context.Context, cfg config, w io.Writer, label string,
	msg func(eventbus.Event) M, at func(M) int64) (Figures, error) {
	topics := topicNames(cfg)
	subs := newSubscribers(cfg, topics)
	chans := make([]chan M, len(subs))
	routes := make([][]chan<- M, len(topics))
	for i, s := range subs {
		c := make(chan M, cfg.Buffer)
		chans[i] = c
		s.readFn = func(clk *clock) { recordAll(s, c, clk, at) }
		for _, t := range s.topics {
			routes[t] = append(routes[t], chans[i])
		}
	}
	// Collect the bus run's garbage now rather than during the baseline.
	runtime.GC()

	clk := newClock()
	waitReaders := startReaders(&clk, subs)
	var published atomic.Uint64
	stopProgress := startProgress(w, label, cfg, &clk, subs, &published, nil, nil)
	defer stopProgress()

	send := func(t int, e eventbus.Event) error {
		m := msg(e)
		for _, c := range routes[t] {
			c <- m
		}
		return nil
	}
	perTopic := make([]uint64, len(topics))
	pubErr := publish(ctx, cfg, &clk, topics, perTopic, &published, send)
	elapsed := time.Duration(clk.now())
	for _, c := range chans {
		close(c)
	}
	waitReaders()
	stopProgress()
	if pubErr != nil {
		return Figures{}, pubErr
	}
	return summarize(subs, perTopic, elapsed, published.Load()), nil
}

// publish runs the publisher until cfg.Duration has passed or ctx ends,
// counting accepted events per topic and in total. send publishes event e
// on topic index t; the event's ID carries the time taken just before.
func publish(ctx context.Context, cfg config, clk *clock, topics []string, perTopic []uint64, published *atomic.Uint64,
	send func(t int, e eventbus.Event) error) error {
	body := payload(cfg.Payload)
	events := make([]eventbus.Event, len(topics))
	for i, topic := range topics {
		events[i] = eventbus.Event{Type: eventbus.Custom("load"), Topic: topic, Payload: body, Source: "busload"}
	}
	end := int64(cfg.Duration)
	var n uint64
	next := 0
	one := func() error {
		e := events[next]
		at := clk.now()
		e.ID = clk.stamp(at, n)
		if err := send(next, e); err != nil {
			return fmt.Errorf("busload: publish: %w", err)
		}
		perTopic[next]++
		n++
		published.Store(n)
		if next++; next == len(events) {
			next = 0
		}
		return nil
	}

	if cfg.Rate == 0 {
		for {
			if n%256 == 0 && (clk.now() >= end || ctx.Err() != nil) {
				return nil
			}
			if err := one(); err != nil {
				return err
			}
		}
	}

	total := uint64(cfg.Duration.Seconds() * float64(cfg.Rate))
	tick := max(time.Millisecond, time.Second/time.Duration(cfg.Rate))
	grace := max(tick, 100*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		now := clk.now()
		owed := min(uint64(float64(now)*float64(cfg.Rate)/1e9), total)
		for n < owed {
			// A publisher that fell behind stops at the end anyway (with
			// 100 ms of grace for the last batch): the shortfall shows in
			// the achieved rate.
			if n%64 == 0 && clk.now() > end+int64(grace) {
				return nil
			}
			if err := one(); err != nil {
				return err
			}
		}
		if n >= total || now >= end {
			return nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// reportProgress writes a line starting with label every cfg.Progress until
// done is closed, and calls at10 (unless nil) once with a heap sample when
// cfg.HeapAt has passed. dropped (nil: none) counts the events lost so far.
func reportProgress(w io.Writer, label string, cfg config, clk *clock, subs []*subscriber, published *atomic.Uint64,
	dropped func() uint64, done <-chan struct{}, at10 func(inuse, live uint64)) {
	t := time.NewTicker(cfg.Progress)
	defer t.Stop()
	var prevPub, prevRecv uint64
	prevAt := int64(0)
	heapTaken := false
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := clk.now()
		var m merged
		var recv uint64
		for _, s := range subs {
			m.add(&s.hist)
			recv += s.received.Load()
		}
		pub := published.Load()
		inuse, live := heapSample()
		if at10 != nil && !heapTaken && now >= int64(cfg.HeapAt) {
			heapTaken = true
			at10(inuse, live)
		}
		var drops uint64
		if dropped != nil {
			drops = dropped()
		}
		secs := float64(now-prevAt) / 1e9
		fmt.Fprintf(w, "%s %5.1fs  published %8.0f/s  delivered %9.0f/s  p99 %-9v  dropped %d  heap %s\n",
			label, float64(now)/1e9, float64(pub-prevPub)/secs, float64(recv-prevRecv)/secs,
			m.quantile(0.99), drops, mib(inuse))
		prevPub, prevRecv, prevAt = pub, recv, now
	}
}
