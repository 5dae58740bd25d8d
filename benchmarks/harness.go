package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/choiros/eventbus"
)

// target is one implementation set up for one workload.
type target interface {
	// publish publishes the event of topic i.
	publish(i int) error
	// flush pushes out anything the publisher buffered (NATS); most do nothing.
	flush() error
	// close tears everything down and waits for the goroutines it started.
	close() error
}

// noter is a target with something to add to the notes of a run.
type noter interface{ extraNotes() string }

// impl is an implementation under test.
type impl struct {
	name  string
	notes string // its semantics, as the table states them
	// only restricts the implementation to these workloads; nil: all.
	only []string
	// setup subscribes w's subscribers; each delivery to subscriber i must
	// call c.hit(i).
	setup func(w *workload, f *fixture, c *counters) (target, error)
}

// runs reports whether im takes part in workload w.
func (im impl) runs(w *workload) bool {
	if im.only == nil {
		return true
	}
	for _, name := range im.only {
		if name == w.name {
			return true
		}
	}
	return false
}

// fixture is what every implementation publishes: per topic, the same
// prebuilt event (and its ~100-byte payload), made once.
type fixture struct {
	events  []eventbus.Event
	payload []byte
}

// payloadJSON is ~100 bytes of JSON.
var payloadJSON = []byte(`{"worker":"w-0042","task":"index","progress":0.5,"note":"a payload of about one hundred bytes."}`)

func newFixture(w *workload) (*fixture, error) {
	f := &fixture{payload: payloadJSON}
	for _, t := range w.topics {
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, t, payloadJSON, "bench")
		if err != nil {
			return nil, err
		}
		f.events = append(f.events, e)
	}
	return f, nil
}

// counter is one subscriber's delivery count, alone on its cache line.
type counter struct {
	n    atomic.Int64
	want int64
	last atomic.Int64 // ns since counters.t0 of the last delivery, if tracked
	_    [40]byte
}

// counters counts deliveries and closes done when every subscriber has
// received what it should.
type counters struct {
	subs      []counter
	remaining atomic.Int64
	done      chan struct{}

	// Set before the run by the firehose and sleeper workloads (lossy.go):
	// the time of each subscriber's last delivery is kept (track), and
	// subscriber slow sleeps for sleep before counting each delivery until
	// hurry is set (slow < 0: none).
	track bool
	t0    time.Time
	slow  int
	sleep time.Duration
	hurry atomic.Bool
}

func newCounters(want []int64) *counters {
	c := &counters{subs: make([]counter, len(want)), done: make(chan struct{}), slow: -1}
	var waiting int64
	for i, n := range want {
		c.subs[i].want = n
		if n > 0 {
			waiting++
		}
	}
	c.remaining.Store(waiting)
	if waiting == 0 {
		close(c.done)
	}
	return c
}

// hit counts one delivery to subscriber i.
func (c *counters) hit(i int) {
	if i == c.slow && !c.hurry.Load() {
		time.Sleep(c.sleep) // the slow consumer being simulated
	}
	s := &c.subs[i]
	n := s.n.Add(1)
	if c.track && (n == s.want || n%trackEvery == 0) {
		// Not at every delivery: a clock read (~27 ns) would slow every
		// reader by the harness's own work, the channel baselines' most.
		// A subscriber that loses events has its last time from at most
		// trackEvery-1 deliveries before its last one.
		s.last.Store(int64(time.Since(c.t0)))
	}
	if n == s.want && c.remaining.Add(-1) == 0 {
		close(c.done)
	}
}

// trackEvery is how often, in deliveries, hit records the time when
// tracking, besides at a subscriber's last expected delivery.
const trackEvery = 256

// total returns the deliveries so far.
func (c *counters) total() int64 {
	var n int64
	for i := range c.subs {
		n += c.subs[i].n.Load()
	}
	return n
}

// extra returns deliveries beyond what was expected (duplicates).
func (c *counters) extra() int64 {
	var n int64
	for i := range c.subs {
		n += max(c.subs[i].n.Load()-c.subs[i].want, 0)
	}
	return n
}

// result is one measured run.
type result struct {
	events    int
	expected  int64
	received  int64
	extra     int64
	elapsed   time.Duration // first publish to last expected delivery (or the last progress when lossy)
	lossy     bool          // fewer deliveries than expected when they stopped coming
	published bool          // the publisher finished
	notes     string        // from the target, if it is a noter
	err       error
}

// rate returns deliveries per second.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.received) / r.elapsed.Seconds()
}

// limits bound one run.
type limits struct {
	stall    time.Duration // no delivery for this long after publishing: lossy
	deadline time.Duration // the whole run
}

// startPublisher publishes events through tg round-robin over w's topics
// on a goroutine of its own, then flushes; the channel gets the first
// error, or nil when it is done.
func startPublisher(tg target, w *workload, events int) <-chan error {
	pubDone := make(chan error, 1)
	go func() {
		t, topics := 0, len(w.topics)
		for range events {
			if err := tg.publish(t); err != nil {
				pubDone <- err
				return
			}
			if t++; t == topics {
				t = 0
			}
		}
		pubDone <- tg.flush()
	}()
	return pubDone
}

// measure sets im up for w, publishes events round-robin and waits until
// every subscriber has its count, until deliveries stall, or until the
// deadline. start and stop bracket the timed part (for testing.B).
func measure(im impl, w *workload, events int, lim limits, start, stop func()) (res result) {
	res.events = events
	want := w.expected(events)
	for _, n := range want {
		res.expected += n
	}
	f, err := newFixture(w)
	if err != nil {
		res.err = err
		return res
	}
	c := newCounters(want)
	tg, err := im.setup(w, f, c)
	if err != nil {
		res.err = fmt.Errorf("%s setup: %w", im.name, err)
		return res
	}
	closed := false
	defer func() {
		if !closed {
			if err := tg.close(); err != nil && res.err == nil {
				res.err = err
			}
		}
		if n, ok := tg.(noter); ok {
			res.notes = n.extraNotes()
		}
	}()

	start()
	t0 := time.Now()
	pubDone := startPublisher(tg, w, events)

	deadline := time.NewTimer(lim.deadline)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastTotal int64
	lastChange := time.Now()
	pubFinished := false
	for {
		select {
		case <-c.done:
			res.elapsed = time.Since(t0)
			stop()
			if !pubFinished {
				res.err = <-pubDone // the last flush; deliveries are complete
			}
			res.published = true
			res.received = c.total()
			res.extra = c.extra()
			return res
		case err := <-pubDone:
			pubFinished = true
			pubDone = nil
			if err != nil {
				stop()
				res.err = err
				res.received = c.total()
				return res
			}
			lastChange = time.Now()
		case <-tick.C:
			if n := c.total(); n != lastTotal {
				lastTotal, lastChange = n, time.Now()
			} else if pubFinished && time.Since(lastChange) > lim.stall {
				stop()
				res.published = true
				res.lossy = true
				res.elapsed = lastChange.Sub(t0)
				res.received = n
				res.extra = c.extra()
				return res
			}
		case <-deadline.C:
			stop()
			res.elapsed = lim.deadline
			res.received = c.total()
			res.lossy = true
			res.published = pubFinished
			if !pubFinished {
				// Tear down to unblock the publisher, then give it a moment.
				closed = true
				cerr := tg.close()
				select {
				case <-pubDone:
				case <-time.After(5 * time.Second):
					cerr = errors.Join(cerr, errors.New("publisher still blocked after close"))
				}
				res.err = errors.Join(errors.New("deadline: publisher did not finish"), cerr)
			}
			return res
		}
	}
}
