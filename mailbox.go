package eventbus

import (
	"sync"
	"sync/atomic"
	"time"
)

// envelope is an accepted event with the time the loop accepted it, as
// mailboxes and the tail keep it.
type envelope struct {
	e  Event
	at int64 // b.clock() when the loop accepted it; 0 when unknown (replayed)
}

// outCap is the most events a Subscribe mailbox keeps in its channel; the
// rest of its backlog, up to its bound, waits in a ring that grows with it.
// An idle subscription costs this channel, not its bound.
const outCap = 12

// blockOutCap is the most events a Block subscription's channel keeps.
// The loop waits for a Block reader anyway: with its bound in the channel,
// it sends straight to C and, when C is full, waits on C itself, as the
// reader receives. Through the ring, every event of a reader that is
// behind would cost a hand-off to the pump and a wake-up of the pump per
// receive (in BenchmarkPublish, about 70 ns of CPU per event, and a third
// of the throughput). The few subscriptions the bus waits for pay for
// their channel up front.
const blockOutCap = 1024

// drainGrace is how long, after a subscription has ended, its pump waits
// for the reader to receive the next event still queued behind C before it
// gives up on the rest (counted as dropped) and closes C.
const drainGrace = 200 * time.Millisecond

// mailbox is a subscription's bounded queue: at most bound events wait in
// it, and its memory grows with what waits, not with bound.
//
// For Subscribe, events wait first in out, the channel C returns (at most
// outCap of them, or blockOutCap under Block), then in queue, a ring of
// envelopes that a pump goroutine moves into out as the reader makes room;
// the pump runs only while queue holds something (and pumpLinger after,
// for the next burst).
// For Handle there is no out: the handler runner takes envelopes from
// queue itself.
//
// Who does what: one sender at a time (the loop while the subscription is
// live, its catch-up goroutine while it lags; see Subscription) calls push,
// pushLocked, waitRoom, evictOldest and end. out has one sender at a time:
// that sender while queue is empty, else the pump. The receivers are the
// reader of C (Subscribe) or the runner (Handle).
type mailbox struct {
	out   chan Event    // Subscribe: the channel C returns; nil for Handle
	bound int           // the most events that may wait
	wake  chan struct{} // tells an idle runner (Handle) or pump (Subscribe) that events or the end wait; cap 1
	room  chan struct{} // tells a waiting sender that room was made; cap 1, made by the first wait

	mu      sync.Mutex
	queue   envRing
	pumping bool          // Subscribe: a pump goroutine owns out's sending
	sending bool          // the pump sends queue's oldest event without the lock: evict the next
	idle    bool          // the runner or the pump waits on wake
	ended   bool          // the sender is done: close out once queue is drained
	sealed  chan struct{} // closed by end: nothing more enters
	// linger is the pump's timer, made by its first run and kept for the
	// next, so a mailbox whose reader falls behind now and then does not
	// allocate one per backlog. Only the pump touches it, and it stops it
	// under mu as it leaves (see leave).
	linger *time.Timer

	// queued counts the envelopes in queue, the one the pump is sending
	// included until it is in out (so for a moment after the send, that
	// one counts twice: senders that find no room where they saw some
	// try again).
	queued atomic.Int64
	roomAt atomic.Int64 // 1 + the pending count a waiting sender waits for; 0 if none
}

// init makes a mailbox of bound events: a Handle one (no channel), or a
// Subscribe one whose channel holds outCap of them, or blockOutCap under
// the Block policy (block).
func (m *mailbox) init(bound int, handle, block bool) {
	m.bound = bound
	m.sealed = make(chan struct{})
	if handle {
		m.wake = make(chan struct{}, 1)
		return
	}
	// A Subscribe mailbox makes wake when it first needs a pump, and room
	// when a sender first waits: an idle subscription pays for neither.
	n := min(bound, outCap)
	if block {
		n = min(bound, blockOutCap)
	}
	m.out = make(chan Event, n)
}

// pending returns the number of events waiting.
func (m *mailbox) pending() int {
	n := int(m.queued.Load())
	if m.out != nil {
		n += len(m.out)
	}
	return n
}

// full reports whether no more events fit.
func (m *mailbox) full() bool { return m.pending() >= m.bound }

// push adds e if there is room and reports whether it did, and whether
// a Subscribe mailbox now needs a pump: the caller starts one (see
// Subscription.trySend).
func (m *mailbox) push(e *Event, at int64) (ok, startPump bool) {
	if m.full() {
		return false, false
	}
	if m.sendOut(e) {
		return true, false
	}
	m.mu.Lock()
	ok, startPump = m.pushLocked(e, at)
	m.mu.Unlock()
	return ok, startPump
}

// sendOut puts e straight into out if nothing waits behind it (then the
// sender owns out) and out has room.
func (m *mailbox) sendOut(e *Event) bool {
	if m.out == nil || m.queued.Load() != 0 {
		return false
	}
	select {
	case m.out <- *e:
		return true
	default:
		return false
	}
}

// pushLocked is push with m.mu held, so the loop can put a run of events
// into one mailbox under one lock.
func (m *mailbox) pushLocked(e *Event, at int64) (ok, startPump bool) {
	if m.full() {
		return false, false
	}
	if m.sendOut(e) {
		return true, false
	}
	m.queue.push(e, at)
	m.queued.Add(1)
	if m.out != nil && !m.pumping {
		m.pumping, startPump = true, true
		if m.wake == nil {
			m.wake = make(chan struct{}, 1) // before the pump starts: it reads it
		}
	}
	if m.idle {
		m.idle = false
		m.wake <- struct{}{}
	}
	return true, startPump
}

// waitRoom waits until at most target events wait, or until stop, abort
// or done, and reports whether that happened. Only the sender calls it,
// when not every waiting event is in out (see backlogInOut): then the
// pump or the runner makes the room and tells it (made).
func (m *mailbox) waitRoom(target int, stop <-chan time.Time, abort, done <-chan struct{}) bool {
	for !m.roomNow(target) {
		if m.backlogInOut() {
			// Nothing left behind out: only its reader makes room now,
			// and it tells nobody. The caller waits on out instead.
			return true
		}
		select {
		case <-m.room:
		case <-stop:
			return false
		case <-abort:
			return false
		case <-done:
			return false
		}
	}
	return true
}

// roomNow reports whether at most target events wait, and if not asks to
// be told when they do (see made).
func (m *mailbox) roomNow(target int) bool {
	if m.pending() <= target {
		return true
	}
	if m.room == nil {
		// Only senders write it, one at a time; the pump and the runner
		// read it after seeing roomAt, which is stored after it.
		m.room = make(chan struct{}, 1)
	}
	m.roomAt.Store(int64(target) + 1)
	if m.pending() <= target {
		m.roomAt.Store(0)
		return true
	}
	return false
}

// made tells a waiting sender when the room it waits for has been made,
// or when the pump has emptied queue (then only the reader of out can
// make more, and the sender must wait on out itself). The pump and the
// runner call it after taking events.
func (m *mailbox) made() {
	t := m.roomAt.Load()
	if t == 0 || (int64(m.pending()) >= t && m.queued.Load() > 0) {
		return
	}
	if m.roomAt.CompareAndSwap(t, 0) {
		select {
		case m.room <- struct{}{}:
		default:
		}
	}
}

// backlogInOut reports whether every waiting event is in out, so that
// only a receive from out can make room.
func (m *mailbox) backlogInOut() bool { return m.out != nil && m.queued.Load() == 0 }

// replaceOldestLocked discards the oldest event waiting in queue and puts
// e behind the rest, under one hold of m.mu (which the caller has), and
// reports whether it could: queue must hold something. This is DropOldest
// for a slow reader, without touching out.
func (m *mailbox) replaceOldestLocked(e *Event, at int64) bool {
	if !m.evictLocked() {
		return false
	}
	m.queue.push(e, at)
	m.queued.Add(1)
	return true
}

// evictLocked discards the oldest event in queue that the pump is not
// sending, and reports whether there was one. m.mu must be held.
func (m *mailbox) evictLocked() bool {
	switch {
	case !m.sending && m.queue.len() > 0:
		m.queue.dropFront()
	case m.sending && m.queue.len() > 1:
		head := m.queue.pop()
		m.queue.dropFront()
		m.queue.pushFront(head)
	default:
		return false
	}
	m.queued.Add(-1)
	return true
}

// evictOldest takes the oldest waiting event out, if any, and reports
// whether it did. Only the sender calls it. It takes from queue when the
// backlog reaches there (never the event the pump is sending), so it does
// not contend with the reader of C; it receives from out only when nothing
// else waits behind it.
func (m *mailbox) evictOldest() bool {
	m.mu.Lock()
	evicted := m.evictLocked()
	m.mu.Unlock()
	if evicted || m.out == nil {
		return evicted
	}
	// Nothing behind out but what the pump is sending: the oldest are in
	// out itself.
	select {
	case <-m.out:
		return true
	default:
		return false
	}
}

// end records that nothing more will be pushed. A Subscribe mailbox with no
// backlog behind out closes out now; otherwise its pump closes it once the
// backlog is received (or given up, see drainGrace). A Handle mailbox
// wakes its runner to finish. Only the sender calls it, once.
func (m *mailbox) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return
	}
	m.ended = true
	close(m.sealed)
	if m.idle {
		m.idle = false
		m.wake <- struct{}{}
	}
	if m.out == nil {
		return
	}
	if !m.pumping {
		close(m.out)
	}
}

// take is the Handle runner's receive: it returns the oldest envelope,
// waiting for one, or false once the mailbox has ended and is empty. The
// event it returns no longer counts as waiting (nor can it be evicted):
// it is the one being handled.
func (m *mailbox) take() (envelope, bool) {
	m.mu.Lock()
	for m.queue.len() == 0 {
		if m.ended {
			m.mu.Unlock()
			return envelope{}, false
		}
		m.idle = true
		m.mu.Unlock()
		<-m.wake
		m.mu.Lock()
	}
	env := m.queue.pop()
	m.queued.Add(-1)
	m.mu.Unlock()
	m.made()
	return env, true
}

// pumpLinger is how long a pump whose backlog has drained waits for more
// before it stops and lets the ring's memory go.
const pumpLinger = 50 * time.Millisecond

// pumpRun moves queue into out while it holds something, then lingers
// for the next burst, then returns. It sends from queue in place: what
// fits in out without waiting, under m.mu; when out is full, the oldest
// event alone, without the lock, marked as in flight (sending) so that
// DropOldest leaves it be. After done (the subscription ended), it gives
// up when the reader has not received for drainGrace, and returns how
// many events it did not deliver. It closes out when it leaves an ended
// mailbox.
func (m *mailbox) pumpRun(done <-chan struct{}) int {
	var grace *time.Timer
	var graceC <-chan time.Time
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	m.mu.Lock()
	for {
		sent := false
	burst:
		for m.queue.len() > 0 {
			select {
			case m.out <- m.queue.front().e:
				m.queue.dropFront()
				m.queued.Add(-1)
				sent = true
			default:
				break burst
			}
		}
		if sent {
			m.made()
			if grace != nil {
				grace.Reset(drainGrace)
			}
		}
		if m.queue.len() == 0 {
			if !m.ended && done != nil {
				// Stay a while for the next burst, so a steady stream
				// does not start a goroutine and grow a ring per burst.
				m.idle = true
				m.mu.Unlock()
				if m.linger == nil {
					m.linger = time.NewTimer(pumpLinger)
				} else {
					m.linger.Reset(pumpLinger)
				}
				woken := false
				select {
				case <-m.wake:
					woken = true
				case <-done:
				case <-m.linger.C:
				}
				m.mu.Lock()
				m.idle = false
				if woken || m.queue.len() > 0 {
					continue
				}
			}
			m.leave()
			if m.ended {
				close(m.out)
			}
			m.mu.Unlock()
			return 0
		}
		// out is full: wait for the reader with the oldest event in hand.
		head := m.queue.front().e
		m.sending = true
		m.mu.Unlock()
		select {
		case m.out <- head:

			m.mu.Lock()
			m.sending = false
			m.queue.dropFront()
			m.queued.Add(-1)
			m.made()
			if grace != nil {
				grace.Reset(drainGrace)
			}
			continue
		case <-done:
			done = nil // ended: from now on the reader has drainGrace per event
			grace = time.NewTimer(drainGrace)
			graceC = grace.C
			m.mu.Lock()
			m.sending = false
			continue
		case <-graceC:
			// The reader may have made room as the timer fired (a
			// process paused for a while wakes to both): only a reader
			// that is still not receiving is given up on.
			select {
			case m.out <- head:
				grace.Reset(drainGrace)
				m.mu.Lock()
				m.sending = false
				m.queue.dropFront()
				m.queued.Add(-1)
				m.made()
				continue
			default:
			}
		}
		// Give up: what is left is lost.
		m.mu.Lock()
		m.sending = false
		rest := m.queue.len()
		m.queue.reset()
		m.queued.Add(-int64(rest))
		m.leave()
		if m.ended { // else end closes out
			close(m.out)
		}
		m.mu.Unlock()
		return rest
	}
}

// leave ends the pump's turn with queue empty: it lets the ring's buffer
// go and stops linger. The next pump may start once m.mu is let go, and it
// will use linger, so the timer is stopped here, under the lock, not as
// this pump's goroutine returns. m.mu must be held.
func (m *mailbox) leave() {
	m.queue.release()
	if m.linger != nil {
		m.linger.Stop()
	}
	m.pumping = false
}

// envRing is a FIFO of envelopes that grows with what it holds. Its
// buffer's length is a power of two, so positions wrap with a mask.
type envRing struct {
	buf        []envelope
	head, size int
}

func (r *envRing) len() int { return r.size }

func (r *envRing) push(e *Event, at int64) {
	if r.size == len(r.buf) {
		r.grow()
	}
	slot := &r.buf[(r.head+r.size)&(len(r.buf)-1)]
	slot.e, slot.at = *e, at
	r.size++
}

func (r *envRing) grow() {
	n := max(2*len(r.buf), ringMin) // a power of two
	buf := takeRingBuf(n)
	for i := range r.size {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	if len(r.buf) == ringMin { // the one size ringBufs keeps
		clear(r.buf)
		putRingBuf(r.buf)
	}
	r.buf, r.head = buf, 0
}

// front returns the oldest envelope; the ring must not be empty.
func (r *envRing) front() *envelope { return &r.buf[r.head] }

// dropFront discards the oldest envelope.
func (r *envRing) dropFront() {
	r.buf[r.head] = envelope{}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.size--
}

// pushFront puts env back before the oldest.
func (r *envRing) pushFront(env envelope) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1) & (len(r.buf) - 1)
	r.buf[r.head] = env
	r.size++
}

func (r *envRing) pop() envelope {
	env := r.buf[r.head]
	r.buf[r.head] = envelope{}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.size--
	return env
}

// reset empties the ring.
func (r *envRing) reset() {
	clear(r.buf)
	r.head, r.size = 0, 0
}

// release gives the buffer of an empty ring back, so a mailbox whose
// backlog has drained costs nothing for it. The pump calls it as it
// leaves, not on every drain, so a steady stream does not reallocate it.
func (r *envRing) release() {
	if r.size == 0 {
		putRingBuf(r.buf) // zero: every slot was emptied
		r.buf, r.head = nil, 0
	}
}

// ringMin is the size of a ring's first buffer, the one size that
// released rings give back to ringBufs.
const ringMin = 32

// ringBufs holds released ring buffers of ringMin envelopes, zeroed. Under
// a steady load, readers fall briefly behind all the time: a pump starts,
// drains a short backlog, lingers and leaves, and the next backlog takes
// its buffer from here instead of allocating one (before, that was most
// of what the bus allocated at 10,000 events/s to 100 subscribers).
var ringBufs sync.Pool

// takeRingBuf returns a zeroed buffer of n envelopes.
func takeRingBuf(n int) []envelope {
	if n == ringMin {
		if b, ok := ringBufs.Get().(*[ringMin]envelope); ok {
			return b[:]
		}
	}
	return make([]envelope, n)
}

// putRingBuf gives a buffer back if it is of ringMin envelopes; every
// envelope in it must be zero.
func putRingBuf(buf []envelope) {
	if len(buf) == ringMin {
		ringBufs.Put((*[ringMin]envelope)(buf))
	}
}
