package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/choiros/eventbus"
)

// Defaults of the firehose and sleeper modes, used when the flag is not
// given.
const (
	firehoseEvents = 1_000_000 // -events
	sleeperEvents  = 50_000    // -events
	sleeperSubs    = 10        // -subs: nine fast subscribers and the sleeper
)

// modeBus returns the options of a firehose or sleeper bus: the bus's
// defaults (DropOldest, a MemoryStore it owns, mailboxes of 1,000) except
// where -store, -overflow (its first policy) or -buffer was given; block
// makes the policy Block whatever -overflow says. It also returns the store
// and policy in words, and a func closing a store the run opened.
func modeBus(cfg config, block bool) (opts []eventbus.Option, store, policy string, closeStore func() error, err error) {
	opts = []eventbus.Option{eventbus.WithLogger(nil), eventbus.WithErrorHandler(func(error) {})}
	store, policy, closeStore = "memory (default)", "drop-oldest (default)", func() error { return nil }
	if cfg.Set["store"] {
		var opt eventbus.Option
		if opt, closeStore, err = openStore(cfg.Store); err != nil {
			return nil, "", "", nil, err
		}
		opts = append(opts, opt)
		store = cfg.Store
	}
	switch {
	case block:
		opts = append(opts, eventbus.WithOverflow(eventbus.Block))
		policy = eventbus.Block.String()
	case cfg.Set["overflow"]:
		opts = append(opts, eventbus.WithOverflow(cfg.Overflow[0]))
		policy = cfg.Overflow[0].String()
	}
	if cfg.Set["buffer"] {
		opts = append(opts, eventbus.WithBufferSize(cfg.Buffer))
	}
	return opts, store, policy, closeStore, nil
}

// mailboxBound is the subscriber mailbox size of the firehose and sleeper
// modes: -buffer if given, else the bus default.
func mailboxBound(cfg config) int {
	return withDefault(cfg, "buffer", cfg.Buffer, eventbus.DefaultBufferSize)
}

// reader counts what one subscriber (or channel) receives and when.
type reader struct {
	n           atomic.Uint64
	first, last atomic.Int64 // clock of the first and the last receipt
}

// readAll reads c until it is closed, calling each (unless nil) before
// counting an event. It reads the clock at the first receipt and then only
// when c is empty, before the receive that may wait (so the last receipt's
// time is exact), or after every readerClockEvery receipts: a clock read
// per event cost about 27 ns, which would slow every reader, the channel
// baseline's most of all, by the harness's own work.
func readAll[M any](r *reader, c <-chan M, clk *clock, each func()) {
	sinceClock := 0
	for range c {
		if each != nil {
			each()
		}
		n := r.n.Add(1)
		if sinceClock++; n == 1 || len(c) == 0 || sinceClock == readerClockEvery {
			now := clk.now()
			if n == 1 {
				r.first.Store(now)
			}
			r.last.Store(now)
			sinceClock = 0
		}
	}
}

// readerClockEvery bounds how many receipts readAll makes without reading
// the clock.
const readerClockEvery = 256

// rateOver returns n per second over d (0 if d is not positive).
func rateOver(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// FirehoseLeg is one firehose run: one publisher, one subscriber reading
// as fast as it can. Durations are in nanoseconds in JSON.
type FirehoseLeg struct {
	Name        string        `json:"name"`
	Published   uint64        `json:"published"`
	Delivered   uint64        `json:"delivered"`         // events the reader received
	Lost        uint64        `json:"lost"`              // Published − Delivered
	Dropped     uint64        `json:"dropped"`           // the subscription's Stats().Dropped (0 for the channel)
	PublishTime time.Duration `json:"publish_ns"`        // the publishing loop
	Elapsed     time.Duration `json:"elapsed_ns"`        // first publish to the last receipt
	Throughput  float64       `json:"delivered_per_sec"` // Delivered / Elapsed
	ReaderRate  float64       `json:"reader_per_sec"`    // Delivered / (last receipt − first receipt)
}

func (l *FirehoseLeg) finish(r *reader, start int64) {
	l.Delivered = r.n.Load()
	l.Lost = l.Published - min(l.Delivered, l.Published)
	l.Elapsed = time.Duration(r.last.Load() - start)
	l.Throughput = rateOver(l.Delivered, l.Elapsed)
	l.ReaderRate = rateOver(l.Delivered, time.Duration(r.last.Load()-r.first.Load()))
}

// FirehoseReport is the outcome of -mode firehose.
type FirehoseReport struct {
	Mode     string `json:"mode"` // "firehose"
	Events   int    `json:"events"`
	Store    string `json:"store"`
	Overflow string `json:"overflow"`
	Buffer   int    `json:"buffer"`

	Bus     FirehoseLeg `json:"bus"`     // PublishAsync, the configured (default) policy
	Block   FirehoseLeg `json:"block"`   // the same under Block
	Channel FirehoseLeg `json:"channel"` // a chan *Event of the same size, blocking sends

	BusOverChannel   float64 `json:"bus_over_channel"`       // throughput
	BlockOverChannel float64 `json:"block_over_channel"`     // throughput
	ReaderOverBlock  float64 `json:"reader_rate_over_block"` // Bus.ReaderRate / Block.ReaderRate
	DroppedExact     bool    `json:"dropped_exact"`          // Bus.Dropped == Bus.Lost
}

// runFirehose is -mode firehose: a loop of PublishAsync of cfg.Events
// events to one subscriber reading as fast as it can, on a bus in the
// default configuration (or as -store, -overflow and -buffer say), then
// the same under Block, then the same number of pointer-size messages
// through a channel of the same size.
func runFirehose(ctx context.Context, cfg config, w io.Writer) (*FirehoseReport, error) {
	events := cfg.Events
	if events == 0 {
		events = firehoseEvents
	}
	rep := &FirehoseReport{Mode: "firehose", Events: events, Buffer: mailboxBound(cfg)}
	for _, block := range []bool{false, true} {
		opts, store, policy, closeStore, err := modeBus(cfg, block)
		if err != nil {
			return nil, err
		}
		leg, err := firehoseBus(ctx, cfg, opts, events, "bus "+policy)
		if cerr := closeStore(); cerr != nil && err == nil {
			err = fmt.Errorf("busload: closing store: %w", cerr)
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "busload: firehose: %s: %d of %d delivered, %.0f/s\n", leg.Name, leg.Delivered, leg.Published, leg.Throughput)
		if block {
			rep.Block = leg
		} else {
			rep.Bus, rep.Store, rep.Overflow = leg, store, policy
		}
	}
	rep.Channel = firehoseChannel(ctx, events, rep.Buffer)
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	rep.BusOverChannel = div(rep.Bus.Throughput, rep.Channel.Throughput)
	rep.BlockOverChannel = div(rep.Block.Throughput, rep.Channel.Throughput)
	rep.ReaderOverBlock = div(rep.Bus.ReaderRate, rep.Block.ReaderRate)
	rep.DroppedExact = rep.Bus.Dropped == rep.Bus.Lost
	return rep, nil
}

// firehoseBus runs one bus leg of the firehose.
func firehoseBus(ctx context.Context, cfg config, opts []eventbus.Option, events int, name string) (FirehoseLeg, error) {
	leg := FirehoseLeg{Name: name}
	bus, err := eventbus.New(opts...)
	if err != nil {
		return leg, fmt.Errorf("busload: %w", err)
	}
	defer bus.Close()
	topic := topicName(cfg.Prefix, 0)
	sub, err := bus.Subscribe(context.Background(), topic)
	if err != nil {
		return leg, fmt.Errorf("busload: %w", err)
	}
	clk := newClock()
	var r reader
	var wg sync.WaitGroup
	wg.Go(func() { readAll(&r, sub.C(), &clk, nil) })

	e := eventbus.Event{Type: eventbus.Custom("load"), Topic: topic, Payload: payload(cfg.Payload), Source: "busload"}
	pctx := context.WithoutCancel(ctx)
	start := clk.now()
	var pubErr error
	for i := range events {
		if i%256 == 0 && ctx.Err() != nil {
			break
		}
		if pubErr = bus.PublishAsync(pctx, e); pubErr != nil {
			break
		}
		leg.Published++
	}
	leg.PublishTime = time.Duration(clk.now() - start)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainWithin)
	defer cancel()
	shutErr := bus.Shutdown(dctx) // delivers what was accepted and closes C
	if shutErr != nil {
		_ = sub.Close()
	}
	wg.Wait()
	leg.finish(&r, start)
	leg.Dropped = sub.Stats().Dropped
	switch {
	case pubErr != nil:
		return leg, fmt.Errorf("busload: publish: %w", pubErr)
	case shutErr != nil:
		return leg, fmt.Errorf("busload: draining the bus: %w", shutErr)
	}
	return leg, nil
}

// firehoseChannel is the firehose's baseline: events pointer-size messages
// (a *Event) sent through a buffered channel of size bound to one reader,
// blocking while it is full.
func firehoseChannel(ctx context.Context, events, bound int) FirehoseLeg {
	leg := FirehoseLeg{Name: "channel (*Event, blocking)"}
	c := make(chan *eventbus.Event, bound)
	clk := newClock()
	var r reader
	var wg sync.WaitGroup
	wg.Go(func() { readAll(&r, c, &clk, nil) })
	e := &eventbus.Event{Type: eventbus.Custom("load"), Topic: "load.0", Source: "busload"}
	start := clk.now()
	for i := range events {
		if i%256 == 0 && ctx.Err() != nil {
			break
		}
		c <- e
		leg.Published++
	}
	leg.PublishTime = time.Duration(clk.now() - start)
	close(c)
	wg.Wait()
	leg.finish(&r, start)
	return leg
}

// writeText prints the firehose report for people.
func (r *FirehoseReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "busload firehose: %d events, PublishAsync in a loop, one subscriber reading as fast as it can; store %s, policy %s, mailbox %d\n",
		r.Events, r.Store, r.Overflow, r.Buffer)
	for _, l := range []FirehoseLeg{r.Bus, r.Block, r.Channel} {
		fmt.Fprintf(w, "%-28s delivered %d of %d (%.2f%%), lost %d, dropped %d; %.0f delivered/s, reader %.0f/s; publishing %v, last receipt %v\n",
			l.Name, l.Delivered, l.Published, 100*float64(l.Delivered)/float64(max(l.Published, 1)), l.Lost, l.Dropped,
			l.Throughput, l.ReaderRate, l.PublishTime.Round(time.Millisecond), l.Elapsed.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "ratios                       bus/channel %.2fx, block/channel %.2fx (delivered/s); bus reader/block reader %.2fx; dropped == lost: %v\n",
		r.BusOverChannel, r.BlockOverChannel, r.ReaderOverBlock, r.DroppedExact)
}

// SleeperLeg is one sleeper run. Durations are in nanoseconds in JSON.
type SleeperLeg struct {
	Published   uint64        `json:"published"`
	PublishTime time.Duration `json:"publish_ns"`
	// The fast subscribers, summed.
	FastSubs      int    `json:"fast_subs"`
	FastExpected  uint64 `json:"fast_expected"`
	FastDelivered uint64 `json:"fast_delivered"`
	FastLost      uint64 `json:"fast_lost"`    // FastExpected − FastDelivered
	FastDropped   uint64 `json:"fast_dropped"` // their Stats().Dropped
	// FastFinish runs from the first publish to the last receipt of the
	// last fast subscriber to finish.
	FastFinish time.Duration `json:"fast_finish_ns"`
	// FastSettled: every fast subscription had received or dropped every
	// event within -drain of the end of publishing.
	FastSettled bool `json:"fast_settled"`
	// The sleeper, in the run that has one.
	Sleeper *SleeperCounts `json:"sleeper,omitempty"`
}

// SleeperCounts is what the sleeping subscriber got and what its
// subscription counted.
type SleeperCounts struct {
	Delivered uint64 `json:"delivered"`
	Missed    uint64 `json:"missed"`  // Published − Delivered
	Dropped   uint64 `json:"dropped"` // its Stats().Dropped
	Exact     bool   `json:"exact"`   // Dropped == Missed
}

// SleeperReport is the outcome of -mode sleeper.
type SleeperReport struct {
	Mode     string        `json:"mode"` // "sleeper"
	Events   int           `json:"events"`
	Subs     int           `json:"subs"`
	Sleep    time.Duration `json:"sleep_ns"`
	Store    string        `json:"store"`
	Overflow string        `json:"overflow"`

	With    SleeperLeg `json:"with_sleeper"`
	Without SleeperLeg `json:"without_sleeper"`
	// FastFinishRatio is With.FastFinish / Without.FastFinish.
	FastFinishRatio float64 `json:"fast_finish_ratio"`
}

// runSleeper is -mode sleeper: cfg.Subs subscribers of one topic, one of
// which sleeps cfg.Sleep per event, and a loop of PublishAsync of
// cfg.Events events; then the same without the sleeper.
func runSleeper(ctx context.Context, cfg config, w io.Writer) (*SleeperReport, error) {
	events := cfg.Events
	if events == 0 {
		events = sleeperEvents
	}
	subs := withDefault(cfg, "subs", cfg.Subs, sleeperSubs)
	if subs < 2 {
		return nil, fmt.Errorf("busload: -mode sleeper needs -subs of at least 2")
	}
	rep := &SleeperReport{Mode: "sleeper", Events: events, Subs: subs, Sleep: cfg.Sleep}
	for _, withSleeper := range []bool{true, false} {
		opts, store, policy, closeStore, err := modeBus(cfg, false)
		if err != nil {
			return nil, err
		}
		rep.Store, rep.Overflow = store, policy
		leg, err := sleeperRun(ctx, cfg, opts, events, subs-1, withSleeper)
		if cerr := closeStore(); cerr != nil && err == nil {
			err = fmt.Errorf("busload: closing store: %w", cerr)
		}
		if err != nil {
			return nil, err
		}
		if withSleeper {
			rep.With = leg
		} else {
			rep.Without = leg
		}
		fmt.Fprintf(w, "busload: sleeper: with sleeper %v: fast ones got %d of %d in %v\n",
			withSleeper, leg.FastDelivered, leg.FastExpected, leg.FastFinish.Round(time.Millisecond))
	}
	if rep.Without.FastFinish > 0 {
		rep.FastFinishRatio = float64(rep.With.FastFinish) / float64(rep.Without.FastFinish)
	}
	return rep, nil
}

// sleeperRun runs fast subscribers (and a sleeper) of one topic while a
// loop of PublishAsync publishes events. Once publishing is over it waits
// (up to cfg.DrainWithin) until every fast subscription has received or
// dropped every event; then the sleeper stops sleeping and is waited for
// the same way, and the bus is shut down, which closes the mailboxes.
func sleeperRun(ctx context.Context, cfg config, opts []eventbus.Option, events, fast int, withSleeper bool) (SleeperLeg, error) {
	leg := SleeperLeg{FastSubs: fast}
	bus, err := eventbus.New(opts...)
	if err != nil {
		return leg, fmt.Errorf("busload: %w", err)
	}
	defer bus.Close()
	topic := topicName(cfg.Prefix, 0)
	clk := newClock()
	var wg sync.WaitGroup
	defer wg.Wait()
	n := fast
	if withSleeper {
		n++
	}
	subs := make([]*eventbus.Subscription, n)
	readers := make([]reader, n)
	hurry := make(chan struct{}) // closed when the sleeper may stop sleeping
	defer func() {
		select {
		case <-hurry:
		default:
			close(hurry)
		}
	}()
	sleep := func() {
		select {
		case <-hurry:
		default:
			time.Sleep(cfg.Sleep) // the slow consumer being simulated, not synchronisation
		}
	}
	for i := range subs {
		if subs[i], err = bus.Subscribe(context.Background(), topic); err != nil {
			return leg, fmt.Errorf("busload: %w", err)
		}
		var each func()
		if i == fast { // the last one is the sleeper
			each = sleep
		}
		wg.Go(func() { readAll(&readers[i], subs[i].C(), &clk, each) })
	}

	e := eventbus.Event{Type: eventbus.Custom("load"), Topic: topic, Payload: payload(cfg.Payload), Source: "busload"}
	pctx := context.WithoutCancel(ctx)
	start := clk.now()
	for i := range events {
		if i%256 == 0 && ctx.Err() != nil {
			break
		}
		if err := bus.PublishAsync(pctx, e); err != nil {
			return leg, fmt.Errorf("busload: publish: %w", err)
		}
		leg.Published++
	}
	leg.PublishTime = time.Duration(clk.now() - start)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainWithin)
	defer cancel()
	if err := bus.Flush(dctx); err != nil {
		return leg, fmt.Errorf("busload: flush: %w", err)
	}
	leg.FastSettled = settle(dctx, subs[:fast], readers[:fast], leg.Published)
	var lastFast int64
	for i := range fast {
		lastFast = max(lastFast, readers[i].last.Load())
	}
	leg.FastFinish = time.Duration(lastFast - start)
	if withSleeper {
		close(hurry)
		settle(dctx, subs[fast:], readers[fast:], leg.Published)
	}
	if err := bus.Shutdown(dctx); err != nil {
		return leg, fmt.Errorf("busload: draining the bus: %w", err)
	}
	wg.Wait()
	for i := range fast {
		leg.FastDelivered += readers[i].n.Load()
		leg.FastDropped += subs[i].Stats().Dropped
	}
	leg.FastExpected = leg.Published * uint64(fast)
	leg.FastLost = leg.FastExpected - min(leg.FastDelivered, leg.FastExpected)
	if withSleeper {
		got := readers[fast].n.Load()
		sc := &SleeperCounts{Delivered: got, Missed: leg.Published - min(got, leg.Published), Dropped: subs[fast].Stats().Dropped}
		sc.Exact = sc.Missed == sc.Dropped
		leg.Sleeper = sc
	}
	return leg, nil
}

// settle waits until every subscription in subs has received or dropped
// each of the published events, polling every millisecond, or until ctx
// ends; it reports whether they all did.
func settle(ctx context.Context, subs []*eventbus.Subscription, readers []reader, published uint64) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for i, s := range subs {
			if readers[i].n.Load()+s.Stats().Dropped < published {
				done = false
				break
			}
		}
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// writeText prints the sleeper report for people.
func (r *SleeperReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "busload sleeper: %d subscribers of one topic, one sleeping %v per event; %d events by PublishAsync in a loop; store %s, policy %s\n",
		r.Subs, r.Sleep, r.Events, r.Store, r.Overflow)
	for _, l := range []struct {
		name string
		leg  SleeperLeg
	}{{"with sleeper", r.With}, {"without", r.Without}} {
		fmt.Fprintf(w, "%-14s%d fast: delivered %d of %d, lost %d (dropped %d), finished in %v (settled %v); publishing %v\n",
			l.name, l.leg.FastSubs, l.leg.FastDelivered, l.leg.FastExpected, l.leg.FastLost, l.leg.FastDropped,
			l.leg.FastFinish.Round(time.Millisecond), l.leg.FastSettled, l.leg.PublishTime.Round(time.Millisecond))
	}
	if s := r.With.Sleeper; s != nil {
		fmt.Fprintf(w, "sleeper       delivered %d, missed %d, Stats().Dropped %d (exact: %v)\n", s.Delivered, s.Missed, s.Dropped, s.Exact)
	}
	fmt.Fprintf(w, "fast finish   with/without sleeper %.2fx\n", r.FastFinishRatio)
}
