package eventbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Overflow is what a subscription does when its mailbox is full and another
// event arrives for it.
type Overflow int

// The overflow policies. Only Block makes publishers wait.
const (
	// DropOldest discards the oldest waiting event to make room for the new
	// one and counts it in Dropped. Nobody waits. It is the default.
	DropOldest Overflow = iota
	// DropNewest discards the new event and counts it in Dropped.
	DropNewest
	// Block makes the bus wait for room, up to WithBlockTimeout (0: no
	// limit), then drop and count the event. While it waits, every publisher
	// waits too: use it only for consumers that always keep up. A Block
	// subscription's C holds its whole bound (up to 1,024 events), made
	// when it is: the loop hands events straight to C and, when C is full,
	// waits on C itself, as on a Go channel, where the other policies keep
	// a few events in C and the rest in a ring behind it.
	Block
	// Disconnect ends the subscription with ErrSlowConsumer.
	Disconnect
	// CatchUp stops live delivery to the subscription; a goroutine of its
	// own refills its mailbox from the store, from the last event it got,
	// then rejoins the live stream with no gap and no duplicate. Only events
	// published without persistence meanwhile are lost, and counted, and
	// events the store's retention removed before the subscription read
	// them, which are counted and reported at the rejoin. It needs a
	// store.
	CatchUp
)

// String returns the policy's name, such as "drop-oldest".
func (p Overflow) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	case Block:
		return "block"
	case Disconnect:
		return "disconnect"
	case CatchUp:
		return "catch-up"
	}
	return fmt.Sprintf("Overflow(%d)", int(p))
}

func (p Overflow) valid() bool { return p >= DropOldest && p <= CatchUp }

// Subscription is one subscriber's membership in the bus: a bounded mailbox
// and the patterns that fill it. Its methods are safe for concurrent use.
//
// A subscription ends when Close is called, the ctx given to Subscribe is
// done, the bus shuts down, or the Disconnect policy ends it. Then C is
// closed once the events waiting in the mailbox have been received (see C).
type Subscription struct {
	b         *Bus
	id        string
	name      string
	principal string
	overflow  Overflow
	blockWait time.Duration

	mb mailbox    // events waiting for the reader or the handler
	c  chan Event // what C returns: mb.out, or for Handle a channel that only closes

	pats atomic.Pointer[[]pattern] // current patterns; written under b.reg.mu

	done    chan struct{} // closed when the subscription ends
	endOnce sync.Once
	err     error // why it ended; written before done is closed
	mu      sync.Mutex
	stopCtx func() bool // stops the AfterFunc of the Subscribe ctx; guarded by mu

	dl delivery // the loop's state for it; only a holder of loop.mu touches it

	group *queueGroup // WithQueueGroup; nil for none. Set before it is registered.
	owed  owedSeqs    // queue group member: what its catch-up goroutine delivers
	work  work        // Handle: retries, dead letters, acknowledgements

	dur     *durable // Durable; nil for none
	durLeft sync.Once

	closeHandleC sync.Once // Handle: c is closed once

	delivered  atomic.Uint64
	dropped    atomic.Uint64
	isLagging  atomic.Bool
	latency    histogram  // taken by the loop to mailbox (Subscribe) or to handler start (Handle)
	runtimeHst *histogram // handler run time (Handle only; nil for Subscribe)

	site    string                          // where it was made, "file.go:123"
	created time.Time                       // when
	mw      []func(HandlerFunc) HandlerFunc // its own middleware (Handle)
	run     *running                        // the handler's current call (Handle only)

	countsBlock bool // counted in b.blockSubs until it ends; set before it is shared
}

// C returns the mailbox's channel. It holds the first few waiting events
// (12 at most; under Block, the whole bound up to 1,024); the rest of the
// backlog, up to the subscription's bound, waits behind it and moves in as
// the reader receives, so a receive that does not wait may find C empty
// while events still wait behind it (Stats().Pending counts them all).
// After the subscription ends, C is closed once every waiting event has
// been received, or once the reader has left one unreceived for 200ms (the
// rest are then dropped and counted). For a subscription made by Handle,
// events go to the handler and C only closes.
func (s *Subscription) C() <-chan Event { return s.c }

// ID returns the subscription's bus-unique ID.
func (s *Subscription) ID() string { return s.id }

// Name returns the name given with WithName, or "".
func (s *Subscription) Name() string { return s.name }

// Patterns returns a copy of the subscription's current patterns.
func (s *Subscription) Patterns() []string {
	ps := *s.pats.Load()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.src
	}
	return out
}

// Add subscribes to one more pattern. An event matching several patterns of
// one subscription is delivered once. Adding a pattern the subscription has
// already is a no-op. Errors wrap ErrInvalidPattern, ErrForbidden or
// ErrClosed (the subscription has ended).
func (s *Subscription) Add(pattern string) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	ctx := WithPrincipal(context.Background(), s.principal)
	if err := s.b.authorize(ctx, Access{Action: ActionSubscribe, Principal: s.principal, Pattern: pattern}); err != nil {
		return err
	}
	return s.b.changePatterns(s, pattern, true)
}

// Remove stops matching pattern. Events already in the mailbox stay there.
// Errors wrap ErrInvalidPattern (including a pattern the subscription does
// not have) or ErrClosed.
func (s *Subscription) Remove(pattern string) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	return s.b.changePatterns(s, pattern, false)
}

// Close ends the subscription and returns once nothing more enters its
// mailbox (see C for when C closes).
// Events already in C stay readable. Closing an ended subscription is a
// no-op. It returns nil.
func (s *Subscription) Close() error {
	s.end(ErrClosed)
	<-s.mb.sealed
	return nil
}

// Err reports why the subscription ended: nil while it is active, ErrClosed
// after Close or Shutdown, ErrSlowConsumer after a Disconnect, or the error
// of the ctx given to Subscribe.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Done returns a channel closed when the subscription ends (before its
// mailbox has been drained).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// SubscriptionStats describes one subscription at a moment.
type SubscriptionStats struct {
	Delivered uint64 // events put into the mailbox
	Dropped   uint64 // events lost to the overflow policy
	Pending   int    // events waiting in the mailbox
	Lagging   bool   // catching up from the store (CatchUp, FromSeq, Since)
	Buffer    int    // the mailbox's bound
	Site      string // where the subscription was made, "file.go:123"
	// StalledFor is how long the handler has been running its current
	// event, when that is longer than the bus's stall timeout; else 0.
	StalledFor time.Duration

	// Handle: events done with (the handler returned nil, or failed its
	// last attempt), handler runs repeated by WithRetry, and events
	// published to the WithDeadLetter topic.
	Acked, Retried, DeadLettered uint64
	// Cursor is a Durable subscription's cursor (see Durable): every event
	// up to it that the consumer matches is acknowledged.
	Cursor uint64

	// Delivery latency, from the bus goroutine taking the event (when it
	// gets its Seq) to the event entering the mailbox (Subscribe) or the
	// handler starting (Handle), as the upper bounds of power-of-two
	// buckets.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	// Latency is the histogram these summarise, with its sum.
	Latency Histogram
	// Handler run time (Handle only), likewise.
	HandlerP50, HandlerP99, HandlerMax time.Duration
}

// Stats returns the subscription's counters.
func (s *Subscription) Stats() SubscriptionStats {
	st := SubscriptionStats{
		Delivered: s.delivered.Load(),
		Dropped:   s.dropped.Load(),
		Lagging:   s.isLagging.Load(),
		Buffer:    s.mb.bound,
		Site:      s.site,
	}
	st.StalledFor = s.stalledFor()
	st.Pending = s.pending()
	st.Acked, st.Retried, st.DeadLettered = s.work.acked.Load(), s.work.retried.Load(), s.work.deadLettered.Load()
	if s.dur != nil {
		st.Cursor = s.dur.cursorNow()
	}
	st.Latency = s.latency.snapshot()
	st.LatencyP50, st.LatencyP99, st.LatencyMax = st.Latency.summary()
	if s.runtimeHst != nil {
		h := s.runtimeHst.snapshot()
		st.HandlerP50, st.HandlerP99, st.HandlerMax = h.summary()
	}
	return st
}

// pending and capacity measure the mailbox.
func (s *Subscription) pending() int  { return s.mb.pending() }
func (s *Subscription) capacity() int { return s.mb.bound }

// matches reports whether topic matches one of the current patterns.
func (s *Subscription) matches(topic string) bool {
	for _, p := range *s.pats.Load() {
		if p.matches(topic) {
			return true
		}
	}
	return false
}

// finish records why the subscription ended and signals done. It reports
// whether this call was the one that ended it.
func (s *Subscription) finish(err error) bool {
	first := false
	s.endOnce.Do(func() {
		s.err = err
		close(s.done)
		first = true
	})
	if first {
		if s.countsBlock {
			s.b.blockSubs.Add(-1)
		}
		if s.mb.out != nil {
			s.leaveDurable() // Subscribe; Handle leaves when its handler is done
		}
		s.mu.Lock()
		stop := s.stopCtx
		s.stopCtx = nil
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
	}
	return first
}

// end ends the subscription from any goroutine but the bus loop: it leaves
// the route table and asks the loop, or the catch-up goroutine, to close
// the mailbox.
func (s *Subscription) end(err error) {
	if !s.finish(err) {
		return
	}
	s.b.reg.remove(s)
	if !s.b.in.control(control{kind: ctlEnd, sub: s}) {
		// The loop has stopped: nobody sends any more unless a catch-up
		// goroutine does, and that one closes the mailbox when it sees done.
		if !s.isLagging.Load() {
			s.closeMailbox()
		}
	}
}

// closeMailbox ends the mailbox: nothing more enters, and C closes once
// what waits has been received. Only the current sender calls it.
func (s *Subscription) closeMailbox() {
	s.mb.end()
	if s.mb.out == nil {
		s.closeHandleC.Do(func() { close(s.c) })
	}
}

// trySend puts e into the mailbox if there is room, starting a pump when
// a backlog forms behind C; at is when the loop accepted it.
func (s *Subscription) trySend(e *Event, at int64) bool {
	ok, start := s.mb.push(e, at)
	if start {
		s.startPump()
	}
	return ok
}

// startPump starts the goroutine that moves the backlog into C (see
// mailbox.pumpRun). The mailbox owns it, and it stops by itself: when the
// backlog has been received, or, once the subscription has ended, when
// the reader has left an event unreceived for drainGrace. Shutdown does
// not wait for it, so that a reader can drain C after Shutdown returns.
func (s *Subscription) startPump() {
	go func() {
		if lost := s.mb.pumpRun(s.done); lost > 0 {
			s.dropped.Add(uint64(lost))
			s.b.dropped.Add(uint64(lost))
		}
	}()
}

// evictOldest takes the oldest event out of the mailbox, if any. Only the
// sender calls it.
func (s *Subscription) evictOldest() bool { return s.mb.evictOldest() }

// sendWait puts e into the mailbox, waiting for room until stop, abort or
// the subscription's end. It reports whether e was sent.
func (s *Subscription) sendWait(e *Event, at int64, stop <-chan time.Time, abort <-chan struct{}) bool {
	for {
		if s.trySend(e, at) {
			return true
		}
		if s.mb.backlogInOut() {
			// Only the reader can make room, and it tells nobody: wait
			// on C itself.
			select {
			case s.mb.out <- *e:
				return true
			case <-stop:
			case <-abort:
			case <-s.done:
			}
			return false
		}
		if !s.mb.waitRoom(s.mb.bound-1, stop, abort, s.done) {
			return false
		}
	}
}
