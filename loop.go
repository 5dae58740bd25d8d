package eventbus

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// loop owns delivery: it takes batches from the intake, assigns Seq,
// appends to the store, routes, sends to every live subscription's
// mailbox, keeps the tail and the catch-up accounts, and acknowledges
// publishers. All of that state is in this type and in each
// Subscription's delivery field, and only a holder of mu touches it.
//
// mu is the loop's role: the loop goroutine (Bus.runLoop) holds it while
// it works, and so may an acknowledged publisher that finds it free and
// does the work itself rather than wait for the goroutine (see
// Bus.combine). Its methods say which they need.
type loop struct {
	mu sync.Mutex
	b  *Bus

	spare     []item          // an emptied batch, the intake's next buffer
	touched   []*Subscription // fanoutRun's scratch
	groups    []*queueGroup   // fanoutRun's scratch: queue groups with a choice for the event routed
	left      leftover        // a batch a publisher left to the loop goroutine
	seq       uint64          // last Seq assigned
	processed uint64          // last Seq fanned out
	fanned    atomic.Uint64   // processed, for durable cursors (see durable.advance)
	stored    uint64          // highest Seq appended to the store
	tail      tail
	toStore   []Event
	timer     *time.Timer // Block and pacing waits
	wall      time.Time   // the last wall clock reading (see now)
	wallAt    int64       // its b.clock()
	// shared has a bit for each of the last batches with acknowledged
	// publishers that more than one of them shared, newest lowest (gather).
	shared uint8
}

// turn says who is doing the loop's work.
type turn uint8

const (
	loopTurn      turn = iota // the loop goroutine: it may wait for Block mailboxes
	publisherTurn             // an acknowledged publisher: it never waits, it leaves the rest
)

// leftover is the part of a batch not yet fanned out, which a publisher
// leaves to the loop goroutine.
type leftover struct {
	items []item // the whole batch
	next  int    // the first item not fanned out
	perr  error  // the batch's persistence error
}

func newLoop(b *Bus, last uint64) *loop {
	l := &loop{b: b, seq: last, processed: last, stored: last, timer: time.NewTimer(time.Hour)}
	l.timer.Stop()
	l.fanned.Store(last)
	if b.store != nil {
		l.tail.init(last)
	}
	return l
}

// runLoop is the loop goroutine. It runs until Shutdown has closed the
// intake and everything queued has been processed, then ends every
// subscription.
func (b *Bus) runLoop() {
	l := b.loop
	defer close(b.loopDone)
	for b.in.wait() {
		l.mu.Lock()
		l.runBatch(loopTurn)
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runBatch(loopTurn) // a batch left as the intake closed
	l.timer.Stop()
	for _, s := range b.reg.takeAll() {
		l.end(s, ErrClosed)
	}
}

// runBatch processes a batch: first the rest of one a publisher left,
// else what the intake holds. l.mu must be held. A publisher leaves a
// leftover alone, and leaves its own batch where it would have to wait.
func (l *loop) runBatch(who turn) {
	if r := l.left; r.items != nil {
		if who == publisherTurn {
			return
		}
		l.left = leftover{}
		l.b.in.resumed()
		l.fanout(r.items[r.next:], r.perr, l.b.clock(), loopTurn)
		l.recycle(r.items)
		return
	}
	items := l.b.in.takeNow(l.spare)
	l.spare = nil
	if len(items) == 0 {
		l.recycle(items)
		return
	}
	if who == loopTurn && !l.b.combines {
		items = l.gather(items)
	}
	now, perr := l.accept(items)
	if next := l.fanout(items, perr, now, who); next < len(items) {
		l.left = leftover{items: items, next: next, perr: perr}
		l.b.in.leave()
		return
	}
	l.recycle(items)
}

// gather is group commit: before a transaction that several acknowledged
// publishers have lately shared, it lets the goroutines already runnable
// (often the publishers the last batch acknowledged, about to publish
// again) run and join it, so N publishers share one commit rather than
// split into cohorts that alternate. A lone acknowledged publisher does
// not pay for the yield (it would wait behind every runnable goroutine,
// subscribers' readers included). It returns the batch with what joined.
func (l *loop) gather(items []item) []item {
	n := acknowledged(items)
	if n == 0 {
		return items
	}
	if l.shared&3 != 0 {
		runtime.Gosched()
		items = l.b.in.takeMore(items)
		n = acknowledged(items)
	}
	l.shared <<= 1
	if n > 1 {
		l.shared |= 1
	}
	return items
}

// acknowledged counts the items of items whose publisher waits for them
// to be stored.
func acknowledged(items []item) int {
	n := 0
	for i := range items {
		if items[i].w != nil && items[i].persist {
			n++
		}
	}
	return n
}

// recycle keeps an emptied batch as the intake's next buffer.
func (l *loop) recycle(items []item) {
	clear(items)
	l.spare = items[:0]
}

// accept gives a batch's events their Seq (and a zero ID and Timestamp
// their values) and appends those to be persisted to the store. It returns
// b.clock() after that (read once per batch) and the store's error.
func (l *loop) accept(items []item) (now int64, perr error) {
	b := l.b
	l.toStore = l.toStore[:0]
	accepted := 0
	var (
		stamp time.Time // the batch's acceptance time
		ms    uint64    // its ULID timestamp
		at    int64     // its b.clock()
		ids   *idSource // locked while the batch takes IDs
	)
	for i := range items {
		it := &items[i]
		if it.ctl != nil {
			continue
		}
		if accepted == 0 {
			stamp, at = l.now()
			ms = ulid.Timestamp(stamp)
			stamp = stamp.UTC()
		}
		accepted++
		l.seq++
		e := &it.e
		e.Seq, it.at = l.seq, at
		if e.ID.IsZero() {
			if ids == nil {
				ids = lockIDs()
			}
			e.ID = ids.next(ms)
		}
		if e.Timestamp.IsZero() {
			e.Timestamp = stamp
		}
		if it.persist {
			l.toStore = append(l.toStore, *e)
		}
	}
	if ids != nil {
		ids.unlock()
	}
	b.published.Add(uint64(accepted))
	b.lastSeq.Store(l.seq)
	now = at
	if len(l.toStore) > 0 {
		if err := appendSafely(b.store, l.toStore); err != nil {
			perr = fmt.Errorf("%w: %w", ErrPersist, err)
		} else {
			b.persisted.Add(uint64(len(l.toStore)))
			l.stored = l.toStore[len(l.toStore)-1].Seq
		}
		clear(l.toStore)
		now = b.clock()
	}
	return now, perr
}

// now returns the time and b.clock() with one read of the monotonic clock,
// which costs half of time.Now here: the wall time is the last wall clock
// reading plus the monotonic time since. The wall clock is read again when
// that reading is a second old, so a stepped system clock shows in
// Timestamps within a second.
func (l *loop) now() (time.Time, int64) {
	at := l.b.clock()
	if l.wall.IsZero() || at-l.wallAt >= int64(time.Second) {
		l.wall = time.Now()
		l.wallAt = int64(l.wall.Sub(l.b.epoch))
		return l.wall, l.wallAt
	}
	return l.wall.Add(time.Duration(at - l.wallAt)), at
}

// appendSafely calls the store's Append, turning a panic into an error so
// that a broken store costs its events, not the bus.
func appendSafely(store Store, events []Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("store panicked: %v", v)
		}
	}()
	return store.Append(context.Background(), events)
}

// fanout hands each event of an accepted batch to its subscriptions,
// handles control requests where they stand and acknowledges synchronous
// publishers; now is b.clock() at its start. It returns len(items), or,
// on a publisher's turn, the index where it stopped because a mailbox had
// no room it would have to wait for: the items from there on are left.
func (l *loop) fanout(items []item, perr error, now int64, who turn) int {
	var n counts
	defer l.b.addCounts(&n)
	fresh := true // now was read for the first run
	for i := 0; i < len(items); {
		if c := items[i].ctl; c != nil {
			l.control(c)
			i++
			continue
		}
		end := i + 1
		for end < len(items) && end-i < maxRun && items[end].ctl == nil {
			end++
		}
		if !fresh {
			now = l.b.clock()
		}
		fresh = false
		done, ok := l.fanoutRun(items[i:end], perr, now, who, &n)
		if !ok {
			return i
		}
		i += done
	}
	return len(items)
}

// maxRun bounds a run of fanoutRun, and so the scratch it keeps per
// subscription (delivery.run).
const maxRun = 1024

// fanoutRun fans out a run of events with no control request among them.
// It collects, for each subscription they reach, the events it gets, then
// hands each subscription its events in a row, so a subscriber that waits
// is woken once per run rather than once per event; each mailbox still
// gets its events in Seq order. Then, in order, it records the events in
// the tail and acknowledges their publishers. On a publisher's turn, when
// some mailbox has no room for all its events, it does nothing and
// reports false. It returns how many events of run it fanned out: all,
// unless a queue group's members are all full, when it stops before the
// event that would overflow (see loop.groupsFull), so the members' room is
// looked at again rather than the event queued behind a full one.
func (l *loop) fanoutRun(run []item, perr error, now int64, who turn, n *counts) (int, bool) {
	b := l.b
	touched := l.touched[:0]
	b.reg.mu.Lock()
	grouped := len(b.reg.groups) > 0
	var (
		routes []*Subscription
		routed string // the topic of routes; "" is no topic
	)
	for i := range run {
		it := &run[i]
		if it.persist && perr != nil {
			continue // not delivered
		}
		if it.e.Topic != routed {
			// A run often holds one topic: the route found for the event
			// before holds (reg.mu is held), and comparing the topic, most
			// often the same string, costs less than looking it up.
			routes, routed = b.reg.routes.Route(it.e.Topic), it.e.Topic
		}
		if grouped && i > 0 && l.groupsFull(routes) {
			run = run[:i]
			break
		}
		for _, s := range routes {
			if s.group != nil {
				l.consider(s)
				continue
			}
			d := &s.dl
			if len(d.run) == 0 {
				touched = append(touched, s)
			}
			d.run = append(d.run, int32(i))
		}
		if len(l.groups) > 0 {
			touched = l.choose(int32(i), touched)
		}
	}
	b.reg.mu.Unlock()
	defer func() {
		for _, s := range touched {
			s.dl.run = s.dl.run[:0]
		}
		clear(touched)
		l.touched = touched[:0]
	}()
	if who == publisherTurn && !l.roomFor(touched) {
		return 0, false
	}
	clockAge := 0
	for _, s := range touched {
		l.deliverRun(s, run, s.dl.run, &now, &clockAge, n)
	}
	for i := range run {
		it := &run[i]
		l.processed = it.e.Seq
		if it.persist && perr != nil {
			l.tail.add(it, false)
			if it.w != nil {
				it.w.finish(0, perr)
			} else {
				b.report(&EventError{ID: it.e.ID, Topic: it.e.Topic, Err: perr})
			}
			continue
		}
		l.tail.add(it, it.persist)
		if it.w != nil {
			// Stats are current when Publish returns.
			b.addCounts(n)
			it.w.finish(it.e.Seq, nil)
		}
	}
	l.fanned.Store(l.processed)
	return len(run), true
}

// roomFor reports whether every live subscription in subs that could make
// the loop wait (Block, or a paced one) has room in its mailbox for all the
// events collected for it, so handing them out cannot wait. Only the loop
// sends to a live subscription's mailbox, so room seen here stays until it
// sends.
func (l *loop) roomFor(subs []*Subscription) bool {
	for _, s := range subs {
		d := &s.dl
		if d.ended || d.lagging || !l.mayWait(s) {
			continue
		}
		if s.mb.pending()+len(d.run) > s.mb.bound {
			return false
		}
	}
	return true
}

// counts are the bus counters a batch adds to, summed on the loop and
// added to the atomics once per batch (and before each acknowledgement).
type counts struct{ delivered, dropped uint64 }

func (b *Bus) addCounts(n *counts) {
	if n.delivered > 0 {
		b.delivered.Add(n.delivered)
	}
	if n.dropped > 0 {
		b.dropped.Add(n.dropped)
	}
	*n = counts{}
}
