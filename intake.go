package eventbus

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// item is one entry of the intake: an event to publish, or a control
// request that the loop handles in order with the events around it.
type item struct {
	e       Event
	at      int64   // b.clock() at acceptance
	persist bool    // to be appended to the store
	w       *waiter // the synchronous publisher waiting for the result, if any
	ctl     *control
}

// waiter is how a synchronous Publish learns its result. The holder of
// loop.mu sets seq and err and marks the waiter done (finish); it sends on
// ch only if the publisher already waits there. So a publisher that took
// the loop's turn and processed its own event finds its result with no
// channel operation. Waiters are pooled per bus (so their channels belong
// to the bus's synctest bubble, if any), and an acknowledged publish
// allocates nothing; one abandoned by a cancelled ctx is left to the GC.
type waiter struct {
	seq   uint64
	err   error
	state atomic.Uint32 // waiterPending, then waiterWaiting and/or waiterDone
	ch    chan struct{} // capacity 1: finish's signal to a waiting publisher
}

const (
	waiterPending uint32 = iota // no result; the publisher does not wait on ch
	waiterWaiting               // the publisher waits on ch
	waiterDone                  // seq and err are set
)

func newWaiter() any { return &waiter{ch: make(chan struct{}, 1)} }

// finish gives the publisher its result.
func (w *waiter) finish(seq uint64, err error) {
	w.seq, w.err = seq, err
	if w.state.Swap(waiterDone) == waiterWaiting {
		w.ch <- struct{}{}
	}
}

// wait waits until finish has given the result (then seq and err hold
// it) and reports true, or reports false if ctx ends first; the waiter
// must then not be reused (finish may still send).
func (w *waiter) wait(ctx context.Context) bool {
	if w.state.Load() != waiterDone && w.state.CompareAndSwap(waiterPending, waiterWaiting) {
		select {
		case <-w.ch:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// reset makes a finished waiter ready for the pool.
func (w *waiter) reset() {
	w.err = nil
	w.state.Store(waiterPending)
}

type controlKind uint8

const (
	ctlEnd    controlKind = iota + 1 // a subscription ended: close its mailbox
	ctlFlush                         // close done when reached
	ctlRejoin                        // a catch-up goroutine asks to go live
	ctlReplay                        // a FromSeq/Since subscription starts its replay
)

type control struct {
	kind   controlKind
	sub    *Subscription
	cursor uint64
	caught uint64    // ctlRejoin: events the goroutine delivered above its mark
	since  time.Time // ctlReplay
	done   chan struct{}
	reply  chan rejoinReply
	replay *groupReplay // ctlRejoin: a group replay's reader asks, not sub's
}

// intake is the bus's queue of accepted events: a slice that publishers
// append to under a mutex and that the holder of loop.mu (the loop
// goroutine, or a publisher on its turn) swaps out whole, so one wake-up
// carries a whole batch. Events count against the capacity; control requests do not, so
// ending a subscription never waits for room.
type intake struct {
	mu       sync.Mutex
	items    []item
	events   int           // events (not controls) in items
	capacity int           // the most events items may hold
	closed   bool          // no new events
	stopped  bool          // the loop has exited: no new controls either
	sleeping bool          // the loop waits on wake
	left     bool          // a publisher left the rest of a batch to the loop goroutine
	wake     chan struct{} // capacity 1
	space    chan struct{} // closed when a batch is taken; nil if nobody waits
}

func newIntake(capacity int) *intake {
	return &intake{capacity: capacity, wake: make(chan struct{}, 1)}
}

// wakeLocked wakes the loop if it sleeps. q.mu must be held.
func (q *intake) wakeLocked() {
	if q.sleeping {
		q.sleeping = false
		q.wake <- struct{}{}
	}
}

// put appends an event, waiting (bounded by ctx) while the mailbox is full.
// w is the acknowledged publisher's waiter, or nil. wake says to wake the
// loop if it sleeps; a publisher that will try to take the loop's turn
// itself leaves it asleep.
func (q *intake) put(ctx context.Context, e *Event, persist bool, w *waiter, wake bool) error {
	q.mu.Lock()
	for !q.closed && q.events >= q.capacity {
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	// Grow, then fill the new slot in place: the event is copied once.
	n := len(q.items)
	q.items = slices.Grow(q.items, 1)[:n+1]
	q.items[n] = item{e: *e, persist: persist, w: w}
	q.events++
	if wake {
		q.wakeLocked()
	}
	q.mu.Unlock()
	return nil
}

// control appends a control request. It reports false if the loop has
// stopped and will never see it.
func (q *intake) control(c control) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return false
	}
	q.items = append(q.items, item{ctl: &c})
	q.wakeLocked()
	return true
}

// close refuses new events and wakes the loop to drain the rest.
func (q *intake) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.freeLocked()
	q.wakeLocked()
}

// isClosed reports whether new events are refused.
func (q *intake) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// depth returns the number of events waiting.
func (q *intake) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events
}

// wait is where the loop sleeps: it returns true once there is work (items
// or a left batch), and false once the intake is closed and
// drained; from then on control requests are refused.
func (q *intake) wait() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.left {
		if q.closed {
			q.stopped = true
			return false
		}
		q.sleeping = true
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	return true
}

// takeNow returns every item waiting (perhaps none), handing spare back as
// the next buffer. The caller holds loop.mu.
func (q *intake) takeNow(spare []item) []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = spare[:0]
	q.events = 0
	q.freeLocked()
	return items
}

// takeMore appends every item waiting to items.
func (q *intake) takeMore(items []item) []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return items
	}
	items = append(items, q.items...)
	clear(q.items)
	q.items = q.items[:0]
	q.events = 0
	q.freeLocked()
	return items
}

// freeLocked wakes the publishers waiting for room (see put): the items
// were taken, or the intake closed. q.mu must be held.
func (q *intake) freeLocked() {
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

// kick wakes the loop if work waits for it: a publisher that took the
// loop's turn calls it after letting go of loop.mu, for items that others
// put meanwhile without waking the loop.
func (q *intake) kick() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || q.left {
		q.wakeLocked()
	}
}

// leave records that a publisher left the rest of a batch to the loop
// goroutine. It is called under loop.mu, so the loop cannot miss it and
// stop.
func (q *intake) leave() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.left = true
}

// resumed records that the loop goroutine has taken up a left batch.
func (q *intake) resumed() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.left = false
}
