package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/choiros/eventbus"
)

// The firehose (F1) and sleeper (S1) workloads measure what a publisher
// that outruns its subscribers costs them: how many deliveries are lost,
// whether the loss is counted, and how long the subscribers that keep up
// take. Unlike W1–W3 they accept loss, so they have their own runner and
// tables.

// dropCounter is a target that counts what it drops per subscriber (the
// eventbus Subscription's Stats().Dropped, nats.go's Dropped()).
type dropCounter interface {
	dropped(i int) (n int64, ok bool)
}

// lossyConfig is what the flags set for F1 and S1.
type lossyConfig struct {
	firehose int           // events in F1
	sleeper  int           // events in S1
	subs     int           // subscribers in S1, the sleeper included
	sleep    time.Duration // the sleeper's sleep per event
}

// firehoseWorkload is F1: one publisher, one subscriber reading as fast as
// it can.
func firehoseWorkload() *workload {
	return newWorkload("F1", "firehose: a loop of publishes to 1 subscriber reading as fast as it can",
		[]string{"bench.f1"}, []string{"bench.f1"}, 1)
}

// sleeperWorkload is S1 with n subscribers of one topic; the runner makes
// the last one sleep.
func sleeperWorkload(n int) *workload {
	pats := make([]string, n)
	for i := range pats {
		pats[i] = "bench.s1"
	}
	return newWorkload("S1", fmt.Sprintf("sleeper: a loop of publishes to %d subscribers of one topic, one of which sleeps per event", n),
		[]string{"bench.s1"}, pats, 1)
}

// firehoseImpls are the implementations F1 runs: the channel baselines,
// eventbus in its default configuration, with CatchUp, and lossless
// (Block), and the peers.
func firehoseImpls() []impl {
	return []impl{
		channelBaseline(),
		channelPointerBaseline(),
		channel40Baseline(),
		eventbusConfigured("eventbus default config",
			"PublishAsync; New() defaults: DropOldest, MemoryStore (10,000 newest), mailbox 1,000"),
		eventbusConfigured("eventbus CatchUp",
			"PublishAsync; CatchUp, MemoryStore (10,000 newest), mailbox 1,000", eventbus.WithOverflow(eventbus.CatchUp)),
		eventbusImpl("eventbus PublishAsync", true, false, nil),
		cskrPubsub(),
		asaskevichEventBus(),
		watermillGoChannel(),
		mochiInline(),
		natsEmbedded(),
	}
}

// sleeperImpls are the implementations S1 runs: those that do not make
// everyone wait for the sleeper (a blocking fan-out or a synchronous
// callback takes events × sleep by construction).
func sleeperImpls() []impl {
	return []impl{
		eventbusConfigured("eventbus default config",
			"PublishAsync; New() defaults: DropOldest, MemoryStore (10,000 newest), mailbox 1,000"),
		eventbusConfigured("eventbus CatchUp",
			"PublishAsync; CatchUp, MemoryStore (10,000 newest), mailbox 1,000", eventbus.WithOverflow(eventbus.CatchUp)),
		natsEmbedded(),
	}
}

// lossyResult is one F1 or S1 run. "Fast" subscribers are all but the
// sleeper (all of them in F1).
type lossyResult struct {
	published    int
	expected     int64         // deliveries to the fast subscribers if nothing is lost
	received     int64         // deliveries to the fast subscribers
	dropped      int64         // drops the implementation counted for them
	droppedKnown bool          // whether it counts them
	finish       time.Duration // first publish to the last delivery to a fast subscriber
	sleeper      *sleeperCounts
	notes        string
	err          error
}

// lost returns the fast subscribers' lost deliveries.
func (r lossyResult) lost() int64 { return r.expected - r.received }

// rate returns the fast subscribers' deliveries per second.
func (r lossyResult) rate() float64 {
	if r.finish <= 0 {
		return 0
	}
	return float64(r.received) / r.finish.Seconds()
}

// sleeperCounts is what the sleeper got and what was counted for it.
type sleeperCounts struct {
	received, missed, dropped int64
	droppedKnown              bool
}

// measureLossy publishes events on w round-robin through im; subscriber
// slow (if >= 0) sleeps for sleep per event. Once publishing is over it
// waits until every fast subscriber has received or (as the
// implementation counts) dropped each of its events, or until their
// deliveries stop for lim.stall; then the sleeper stops sleeping and is
// waited for the same way. start and stop bracket the timed part.
func measureLossy(im impl, w *workload, events, slow int, sleep time.Duration, lim limits, start, stop func()) (res lossyResult) {
	res.published = events
	want := w.expected(events)
	f, err := newFixture(w)
	if err != nil {
		res.err = err
		return res
	}
	c := newCounters(want)
	c.track, c.slow, c.sleep = true, slow, sleep
	tg, err := im.setup(w, f, c)
	if err != nil {
		res.err = fmt.Errorf("%s setup: %w", im.name, err)
		return res
	}
	defer func() {
		if n, ok := tg.(noter); ok {
			res.notes = n.extraNotes()
		}
		if err := tg.close(); err != nil && res.err == nil {
			res.err = err
		}
	}()
	fast := make([]int, 0, len(want))
	for i := range want {
		if i != slow {
			fast = append(fast, i)
			res.expected += want[i]
		}
	}
	dc, counts := tg.(dropCounter)
	settled := func(subs []int) bool {
		for _, i := range subs {
			n := c.subs[i].n.Load()
			if counts {
				d, ok := dc.dropped(i)
				n += d
				if !ok {
					return false
				}
			}
			if n < want[i] {
				return false
			}
		}
		return true
	}
	total := func(subs []int) int64 {
		var n int64
		for _, i := range subs {
			n += c.subs[i].n.Load()
		}
		return n
	}

	deadline := time.NewTimer(lim.deadline)
	defer deadline.Stop()
	start()
	c.t0 = time.Now()
	pubDone := startPublisher(tg, w, events)
	select {
	case err := <-pubDone:
		if err != nil {
			stop()
			res.err = err
			return res
		}
	case <-deadline.C:
		stop()
		res.err = errors.New("deadline: publisher did not finish")
		c.hurry.Store(true)
		return res
	}
	timedOut := !waitSettled(settled, total, fast, lim.stall, deadline.C)
	stop()
	for _, i := range fast {
		res.finish = max(res.finish, time.Duration(c.subs[i].last.Load()))
	}
	res.received = total(fast)
	if counts {
		res.droppedKnown = true
		for _, i := range fast {
			d, ok := dc.dropped(i)
			res.dropped += d
			res.droppedKnown = res.droppedKnown && ok
		}
	}
	if slow >= 0 {
		c.hurry.Store(true)
		if !timedOut {
			waitSettled(settled, total, []int{slow}, lim.stall, deadline.C)
		}
		sc := &sleeperCounts{received: c.subs[slow].n.Load()}
		sc.missed = want[slow] - sc.received
		if counts {
			sc.dropped, sc.droppedKnown = dc.dropped(slow)
		}
		res.sleeper = sc
	}
	if timedOut {
		res.err = errors.New("deadline: deliveries still coming")
	}
	return res
}

// waitSettled waits until settled(subs), or until total(subs) has not
// changed for stall; it returns false if deadline fires first.
func waitSettled(settled func([]int) bool, total func([]int) int64, subs []int, stall time.Duration, deadline <-chan time.Time) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	last, lastChange := total(subs), time.Now()
	for !settled(subs) {
		select {
		case <-deadline:
			return false
		case <-tick.C:
		}
		if n := total(subs); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stall {
			return true
		}
	}
	return true
}

// lossyRow is one implementation's outcome in F1 or S1.
type lossyRow struct {
	im      impl
	with    lossyResult // F1, or S1 with the sleeper
	without lossyResult // S1 without the sleeper
}

// runLossy runs F1 and S1 (as loads selects) once per implementation.
func runLossy(cfg runConfig, lc lossyConfig, loads []string, log io.Writer) (f1, s1 []lossyRow) {
	has := func(name string) bool {
		for _, l := range loads {
			if l == name {
				return true
			}
		}
		return false
	}
	keep := func(im impl) bool {
		return cfg.only == "" || strings.HasPrefix(im.name, baselineName) || strings.Contains(im.name, cfg.only)
	}
	nop := func() {}
	if has("F1") {
		w := firehoseWorkload()
		for _, im := range firehoseImpls() {
			if !keep(im) {
				continue
			}
			r := measureLossy(im, w, lc.firehose, -1, 0, cfg.lim, nop, nop)
			fmt.Fprintf(log, "F1  %-38s %8d events %10d of %d delivered, %d counted drops %8.3fs %12.0f/s  %v\n",
				im.name, r.published, r.received, r.expected, r.dropped, r.finish.Seconds(), r.rate(), errText(r.err))
			f1 = append(f1, lossyRow{im: im, with: r})
		}
	}
	if has("S1") {
		with, without := sleeperWorkload(lc.subs), sleeperWorkload(lc.subs-1)
		for _, im := range sleeperImpls() {
			if !keep(im) {
				continue
			}
			row := lossyRow{im: im}
			row.with = measureLossy(im, with, lc.sleeper, lc.subs-1, lc.sleep, cfg.lim, nop, nop)
			row.without = measureLossy(im, without, lc.sleeper, -1, 0, cfg.lim, nop, nop)
			fmt.Fprintf(log, "S1  %-38s fast: %d of %d delivered in %.3fs (without the sleeper %d of %d in %.3fs)  %v\n",
				im.name, row.with.received, row.with.expected, row.with.finish.Seconds(),
				row.without.received, row.without.expected, row.without.finish.Seconds(), errText(errors.Join(row.with.err, row.without.err)))
			s1 = append(s1, row)
		}
	}
	return f1, s1
}

// errText is "ok" or the error.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

// droppedText formats counted drops, or says the implementation does not
// count them.
func droppedText(n int64, known bool) string {
	if !known {
		return "not counted"
	}
	return fmt.Sprint(n)
}

// writeLossyTables prints F1 and S1 as Markdown.
func writeLossyTables(w io.Writer, lc lossyConfig, f1, s1 []lossyRow) {
	if len(f1) > 0 {
		var ptr float64
		for _, r := range f1 {
			if r.im.name == pointerBaselineName {
				ptr = r.with.rate()
			}
		}
		fmt.Fprintf(w, "\n- F1: %s; %d events, one run each\n\n", firehoseWorkload().desc, lc.firehose)
		fmt.Fprintln(w, "| implementation | delivered | lost | counted drops | deliveries/s | ratio to `*Event` channel | semantics notes |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|")
		for _, r := range f1 {
			ratio := "—"
			if ptr > 0 {
				ratio = fmt.Sprintf("%.2f", r.with.rate()/ptr)
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s |\n", r.im.name, r.with.received, r.with.lost(),
				droppedText(r.with.dropped, r.with.droppedKnown), human(r.with.rate()), ratio, rowNotes(r.im, r.with))
		}
	}
	if len(s1) > 0 {
		fmt.Fprintf(w, "\n- S1: %s; %d events, the sleeper sleeps %v per event, one run each with the sleeper and one with only the %d fast subscribers\n\n",
			sleeperWorkload(lc.subs).desc, lc.sleeper, lc.sleep, lc.subs-1)
		fmt.Fprintln(w, "| implementation | fast: lost of expected | fast: counted drops | fast finish with sleeper | without | ratio | fast lost without sleeper | sleeper: received, missed, counted drops | notes |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|---|")
		for _, r := range s1 {
			ratio := "—"
			if r.without.finish > 0 {
				ratio = fmt.Sprintf("%.2f", float64(r.with.finish)/float64(r.without.finish))
			}
			sl := "—"
			if s := r.with.sleeper; s != nil {
				sl = fmt.Sprintf("%d, %d, %s", s.received, s.missed, droppedText(s.dropped, s.droppedKnown))
			}
			fmt.Fprintf(w, "| %s | %d of %d | %s | %v | %v | %s | %d | %s | %s |\n", r.im.name,
				r.with.lost(), r.with.expected, droppedText(r.with.dropped, r.with.droppedKnown),
				r.with.finish.Round(time.Millisecond), r.without.finish.Round(time.Millisecond), ratio, r.without.lost(), sl,
				rowNotes(r.im, r.with, r.without))
		}
	}
}

// rowNotes is the implementation's notes with its runs' errors and notes.
func rowNotes(im impl, runs ...lossyResult) string {
	notes := im.notes
	for _, r := range runs {
		if r.err != nil {
			notes = "**" + r.err.Error() + "**; " + notes
		}
		if r.notes != "" {
			notes += "; " + r.notes
		}
	}
	return strings.ReplaceAll(notes, "|", "\\|")
}
