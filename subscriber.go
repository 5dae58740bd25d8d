package eventbus

import (
	"context"
	"fmt"
	"math/bits"
	"runtime/debug"
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
	// waits too: use it only for consumers that always keep up.
	Block
	// Disconnect ends the subscription with ErrSlowConsumer.
	Disconnect
	// CatchUp stops live delivery to the subscription; a goroutine of its
	// own refills its mailbox from the store, from the last event it got,
	// then rejoins the live stream with no gap and no duplicate. Only events
	// published without persistence meanwhile are lost, and counted, and
	// events the store's retention removed before the subscription read
	// them, which are counted and reported at the hand-over. It needs a
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
// closed; events already in it stay readable.
type Subscription struct {
	b         *Bus
	id        string
	name      string
	principal string
	overflow  Overflow
	blockWait time.Duration

	ch  chan Event    // the mailbox of a Subscribe subscription; for Handle, closed only
	hch chan envelope // the mailbox of a Handle subscription

	pats atomic.Pointer[[]pattern] // current patterns; written under b.subMu

	done     chan struct{} // closed when the subscription ends
	endOnce  sync.Once
	err      error // why it ended; written before done is closed
	mu       sync.Mutex
	stopCtx  func() bool   // stops the AfterFunc of the Subscribe ctx; guarded by mu
	closed   chan struct{} // closed once the mailbox is closed
	closeMbx sync.Once

	// Owned by the bus loop (whoever holds Bus.run).
	lagging     bool // the catch-up goroutine is the mailbox's sender
	lag         lagCount
	ended       bool    // the loop has seen the end
	lastSeq     uint64  // the highest Seq given to the mailbox, or skipped over
	run         []int32 // fanoutRun's scratch: the events of a run this one gets
	overflowing bool    // in a drop episode (reported once per episode)

	delivered  atomic.Uint64
	dropped    atomic.Uint64
	isLagging  atomic.Bool
	latency    histogram // taken by the loop to mailbox (Subscribe) or to handler start (Handle)
	runtimeHst histogram // handler run time (Handle)
}

// lagCount is the loop's account of one lagging episode: the persisted,
// matching events with Seq above mark that the loop skipped because the
// catch-up goroutine is to deliver them (owed), and those the loop handed
// over itself. At the hand-over, what the goroutine reports it delivered
// above mark settles the account; the rest was lost (past the store's
// retention) and is counted as dropped.
type lagCount struct {
	counting bool
	mark     uint64
	since    time.Time // Since: only events stamped at or after it are replayed
	owed     uint64
	handed   uint64
}

// wants reports whether the catch-up goroutine would deliver e (its Since
// filter); matching patterns is checked apart.
func (l *lagCount) wants(e *Event) bool {
	return l.since.IsZero() || !e.Timestamp.Before(l.since)
}

// envelope carries an event to a handler with its acceptance time, so the
// handler runner can measure delivery latency.
type envelope struct {
	e  Event
	at int64 // b.clock() at acceptance; 0 when unknown (replayed)
}

// C returns the mailbox. It is closed when the subscription ends. For a
// subscription made by Handle, events go to the handler and C only closes.
func (s *Subscription) C() <-chan Event { return s.ch }

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

// Close ends the subscription and returns once its mailbox is closed.
// Events already in C stay readable. Closing an ended subscription is a
// no-op. It returns nil.
func (s *Subscription) Close() error {
	s.end(ErrClosed)
	<-s.closed
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

	// Delivery latency, from the bus goroutine taking the event (when it
	// gets its Seq) to the event entering the mailbox (Subscribe) or the
	// handler starting (Handle), as the upper bounds of power-of-two
	// buckets.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	// Handler run time (Handle only), likewise.
	HandlerP50, HandlerP99, HandlerMax time.Duration
}

// Stats returns the subscription's counters.
func (s *Subscription) Stats() SubscriptionStats {
	st := SubscriptionStats{
		Delivered: s.delivered.Load(),
		Dropped:   s.dropped.Load(),
		Lagging:   s.isLagging.Load(),
	}
	st.Pending = s.pending()
	st.LatencyP50, st.LatencyP99, st.LatencyMax = s.latency.summary()
	st.HandlerP50, st.HandlerP99, st.HandlerMax = s.runtimeHst.summary()
	return st
}

// pending and capacity measure the mailbox.
func (s *Subscription) pending() int {
	if s.hch != nil {
		return len(s.hch)
	}
	return len(s.ch)
}

func (s *Subscription) capacity() int {
	if s.hch != nil {
		return cap(s.hch)
	}
	return cap(s.ch)
}

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
	s.b.detach(s)
	if !s.b.in.control(control{kind: ctlEnd, sub: s}) {
		// The loop has stopped: nobody sends any more unless a catch-up
		// goroutine does, and that one closes the mailbox when it sees done.
		if !s.lagging {
			s.closeMailbox()
		}
	}
}

// closeMailbox closes the mailbox. Only the current sender calls it.
func (s *Subscription) closeMailbox() {
	s.closeMbx.Do(func() {
		if s.hch != nil {
			close(s.hch)
		}
		close(s.ch)
		close(s.closed)
	})
}

// trySend puts e into the mailbox if there is room.
func (s *Subscription) trySend(e *Event, at int64) bool {
	if s.hch != nil {
		select {
		case s.hch <- envelope{e: *e, at: at}:
			return true
		default:
			return false
		}
	}
	select {
	case s.ch <- *e:
		return true
	default:
		return false
	}
}

// evictOldest takes the oldest event out of the mailbox, if any. Only the
// sender calls it: the receiver can only make more room meanwhile.
func (s *Subscription) evictOldest() bool {
	if s.hch != nil {
		select {
		case <-s.hch:
			return true
		default:
			return false
		}
	}
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}

// sendWait puts e into the mailbox, waiting for room until stop or the
// subscription's end. It reports whether e was sent.
func (s *Subscription) sendWait(e *Event, at int64, stop <-chan time.Time, abort <-chan struct{}) bool {
	if s.hch != nil {
		select {
		case s.hch <- envelope{e: *e, at: at}:
			return true
		case <-stop:
		case <-abort:
		case <-s.done:
		}
		return false
	}
	select {
	case s.ch <- *e:
		return true
	case <-stop:
	case <-abort:
	case <-s.done:
	}
	return false
}

// runHandler is the goroutine of a Handle subscription: it calls h for each
// event in order, recovering errors and panics, until the mailbox closes.
// Its ctx is cancelled with ErrClosed when it returns, or earlier when the
// bus gives up waiting for handlers at Shutdown; events left then are
// dropped and counted.
func (b *Bus) runHandler(s *Subscription, base context.Context, h func(context.Context, Event) error) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(base))
	stop := context.AfterFunc(b.root, func() { cancel(ErrClosed) })
	defer func() {
		stop()
		cancel(ErrClosed)
	}()
	for env := range s.hch {
		if ctx.Err() != nil {
			s.dropped.Add(1)
			b.dropped.Add(1)
			continue
		}
		start := b.clock()
		if env.at != 0 {
			s.latency.observe(start - env.at)
		}
		err := callHandler(ctx, h, env.e)
		s.runtimeHst.observe(b.clock() - start)
		if err != nil {
			b.report(&EventError{ID: env.e.ID, Topic: env.e.Topic, Err: err})
		}
	}
}

// callHandler runs h, turning an error or a panic into an error wrapping
// ErrHandler.
func callHandler(ctx context.Context, h func(context.Context, Event) error, e Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %w", ErrHandler, &PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	if err := h(ctx, e); err != nil {
		return fmt.Errorf("%w: %w", ErrHandler, err)
	}
	return nil
}

// catchUpPage is how many events the catch-up goroutine reads per query.
const catchUpPage = 256

// catchUp is the goroutine that feeds a lagging subscription from the store,
// starting after cursor (and at since, if set), until the bus loop takes it
// back live. It is the mailbox's only sender while it runs. It counts the
// events it delivers above mark for the loop's lagCount.
func (b *Bus) catchUp(s *Subscription, cursor uint64, since time.Time, mark uint64) {
	var caught uint64 // events delivered above mark (see lagCount)
	var failing bool  // the store's last Query failed
	var backoff *time.Timer
	defer func() {
		if backoff != nil {
			backoff.Stop()
		}
	}()
	// wait pauses after a fruitless round so a stuck store is not polled hot.
	wait := func() bool {
		if backoff == nil {
			backoff = time.NewTimer(10 * time.Millisecond)
		} else {
			backoff.Reset(10 * time.Millisecond)
		}
		select {
		case <-backoff.C:
			return true
		case <-s.done:
			return false
		}
	}
	for {
		select {
		case <-s.done:
			s.closeMailbox()
			return
		default:
		}
		pats := *s.pats.Load()
		q := Query{Pattern: "*", Since: since, AfterSeq: cursor, Limit: catchUpPage}
		if len(pats) == 1 {
			q.Pattern = pats[0].src
		}
		events, err := b.store.Query(context.Background(), q)
		if err != nil {
			if !failing { // once per failure episode, not every retry
				b.report(fmt.Errorf("eventbus: catch-up of subscription %s: %w", s.id, err))
			}
			failing = true
			if !wait() {
				s.closeMailbox()
				return
			}
			continue
		}
		failing = false
		for i := range events {
			e := &events[i]
			if s.matches(e.Topic) {
				if !s.sendWait(e, 0, nil, nil) {
					s.closeMailbox()
					return
				}
				s.delivered.Add(1)
				b.delivered.Add(1)
				if e.Seq > mark {
					caught++
				}
			}
			cursor = e.Seq
		}
		if len(events) == catchUpPage {
			continue
		}
		r, ok := b.handover(s, cursor, caught)
		switch {
		case !ok || r.ended:
			s.finish(ErrClosed)
			s.closeMailbox()
			return
		case r.live:
			return
		}
		progressed := r.cursor > cursor
		cursor = r.cursor
		if !progressed && len(events) == 0 && !wait() {
			s.closeMailbox()
			return
		}
	}
}

// histogram counts durations in power-of-two nanosecond buckets, so
// observing allocates nothing and takes two atomic operations.
type histogram struct {
	buckets [64]atomic.Uint64
	max     atomic.Int64
}

func (h *histogram) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.buckets[bits.Len64(uint64(ns))].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// summary returns the p50 and p99 bucket upper bounds and the maximum.
func (h *histogram) summary() (p50, p99, maxd time.Duration) {
	var counts [64]uint64
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
