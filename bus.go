package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// Bus is an in-process event bus. One goroutine, the loop, owns ordering:
// it takes what publishers have queued, assigns Seq, appends the batch to
// the store, and hands each event to every matching subscription's mailbox
// under that subscription's overflow policy. (An acknowledged Publish that
// finds the loop idle does that work itself, under the same lock; see
// combine.) All methods are safe for concurrent use. Make one with New and
// stop it with Shutdown or Close.
type Bus struct {
	cfg        busConfig
	store      Store
	ownsStore  bool
	in         *intake
	routes     atomic.Pointer[routeTable]
	epoch      time.Time       // the bus's clock starts here
	seqEpoch   string          // see Epoch
	lastSeq    atomic.Uint64   // the last Seq assigned, for LastSeq
	root       context.Context // parent of handler contexts
	cancelRoot context.CancelCauseFunc
	abort      chan struct{} // closed when Shutdown stops waiting: Block sends give up
	abortOnce  sync.Once
	rep        *reporter
	waiters    sync.Pool // of *waiter

	subMu   sync.Mutex
	subs    map[*Subscription][]pattern
	closing bool // set under subMu when Shutdown starts: no new subscriptions
	nextID  uint64

	wg       sync.WaitGroup // handler runners and catch-up goroutines
	loopDone chan struct{}
	shutOnce sync.Once
	shutDone chan struct{}
	shutErr  error

	published, persisted, delivered, dropped atomic.Uint64

	// run is held by whoever processes batches: the loop goroutine, or a
	// synchronous publisher that found it free and does the loop's work
	// itself rather than wait for it (see combine). What follows is owned
	// by its holder.
	run       sync.Mutex
	spare     []item          // an emptied batch, the intake's next buffer
	touched   []*Subscription // scratch for fanoutRun
	rest      rest            // a batch a publisher handed over part-way
	seq       uint64          // last Seq assigned
	processed uint64          // last Seq fanned out
	stored    uint64          // highest Seq appended to the store
	cache     routeCache
	tail      tail
	toStore   []Event
	timer     *time.Timer
}

// New starts a bus. Without WithStore it persists to a MemoryStore keeping
// the newest 10,000 events. Seq numbering continues after the store's
// LastSeq. Invalid option values are errors wrapping ErrInvalidOption; a
// failing store's LastSeq is an error wrapping ErrPersist.
func New(opts ...Option) (*Bus, error) {
	cfg := defaultBusConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyBus(&cfg); err != nil {
			return nil, err
		}
	}
	b := &Bus{
		cfg:      cfg,
		in:       newIntake(cfg.queueSize),
		epoch:    time.Now(),
		abort:    make(chan struct{}),
		subs:     make(map[*Subscription][]pattern),
		loopDone: make(chan struct{}),
		shutDone: make(chan struct{}),
		timer:    time.NewTimer(time.Hour),
	}
	b.timer.Stop()
	b.waiters.New = newWaiter
	b.cache.off = cfg.noRouteCache
	switch {
	case cfg.storeSet:
		b.store = cfg.store
	default:
		b.store, b.ownsStore = NewMemoryStore(), true
	}
	if b.store == nil && cfg.sub.overflow == CatchUp {
		return nil, fmt.Errorf("%w: WithOverflow(CatchUp): %w", ErrInvalidOption, ErrNoStore)
	}
	if b.store != nil {
		last, err := b.store.LastSeq(context.Background())
		if err != nil {
			return nil, fmt.Errorf("%w: reading LastSeq: %w", ErrPersist, err)
		}
		b.seq, b.processed, b.stored = last, last, last
		b.lastSeq.Store(last)
		b.tail.init(tailSize, last)
		if es, ok := b.store.(EpochStore); ok {
			if b.seqEpoch, err = es.Epoch(context.Background()); err != nil {
				return nil, fmt.Errorf("%w: reading Epoch: %w", ErrPersist, err)
			}
		}
	}
	if b.seqEpoch == "" {
		b.seqEpoch = newEpoch()
	}
	b.routes.Store(emptyRoutes)
	b.root, b.cancelRoot = context.WithCancelCause(context.Background())
	b.rep = newReporter(cfg.logger, cfg.errorHandler)
	go b.loop()
	return b, nil
}

// Epoch names the bus's Seq numbering: it stays the same for as long as
// Seqs continue one another (across restarts on a store that keeps its
// events and implements EpochStore, such as sqlitestore) and changes when
// numbering starts again (a new MemoryStore, no store). A client that
// remembers a Seq remembers the epoch with it, and knows its Seq means
// nothing here when the epoch differs.
func (b *Bus) Epoch() string { return b.seqEpoch }

// LastSeq returns the Seq of the last event the bus accepted (0 if none,
// or the store's LastSeq at start).
func (b *Bus) LastSeq() uint64 { return b.lastSeq.Load() }

// clock returns monotonic nanoseconds since the bus started.
func (b *Bus) clock() int64 { return int64(time.Since(b.epoch)) }

// Publish validates e, waits (bounded by ctx) for room in the bus mailbox,
// and returns once the bus has persisted it (when it is to be persisted)
// and handed it to every matching subscription under that subscription's
// overflow policy. Seq is assigned by the bus goroutine when it takes the
// event from the mailbox; a zero ID and a zero Timestamp are filled in then
// too, so bus-made IDs follow Seq order.
//
// After Publish returns nil, every subscription that existed before the
// call has the event in its mailbox or counted it as dropped. If the store
// fails, the event is not delivered and the error wraps ErrPersist and the
// store's error. Other errors wrap ErrInvalidTopic, ErrInvalidEventType,
// ErrInvalidPayload, ErrForbidden or ErrClosed. ctx limits waiting, not
// work the bus has accepted: if Publish returns a ctx error, the event may
// still be delivered.
func (b *Bus) Publish(ctx context.Context, e Event, opts ...PublishOption) error {
	_, err := b.publish(ctx, &e, opts, true, false)
	return err
}

// PublishAsync validates e and returns once it is accepted into the bus
// mailbox, waiting (bounded by ctx) for room. It does not wait for
// persistence or delivery: if the store then fails, the event is not
// delivered and the error goes to the error handler. Use Flush to wait.
// Errors are those of Publish except ErrPersist.
func (b *Bus) PublishAsync(ctx context.Context, e Event, opts ...PublishOption) error {
	_, err := b.publish(ctx, &e, opts, false, false)
	return err
}

// publish checks and enqueues e; when sync is set it waits for the loop
// and returns the Seq assigned. checked says e comes from NewEvent, which
// validated it already. The publisher reads no clock: the loop stamps a
// zero ID and Timestamp when it takes the event, with one clock read per
// batch.
func (b *Bus) publish(ctx context.Context, e *Event, opts []PublishOption, sync, checked bool) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := b.prepare(e, checked); err != nil {
		return 0, err
	}
	if b.cfg.authorizer != nil {
		p := PrincipalFrom(ctx)
		if err := b.authorize(ctx, Access{Action: ActionPublish, Principal: p, Topic: e.Topic}); err != nil {
			return 0, err
		}
	}
	var pc pubConfig
	if len(opts) > 0 {
		pc = applyPublishOptions(opts)
	}
	var w *waiter
	if sync {
		w = b.waiters.Get().(*waiter)
	}
	// A synchronous publisher does not wake the loop: it tries to do the
	// loop's work itself (combine).
	if err := b.in.put(ctx, e, b.shouldPersist(e.Topic, pc), w, !sync); err != nil {
		if w != nil {
			b.waiters.Put(w)
		}
		return 0, err
	}
	if !sync {
		return 0, nil
	}
	b.combine()
	select { // most often the acknowledgement is there already
	case err := <-w.ch:
		seq := w.seq
		b.waiters.Put(w)
		return seq, err
	default:
	}
	select {
	case err := <-w.ch:
		seq := w.seq
		b.waiters.Put(w)
		return seq, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// applyPublishOptions is apart from publish so that the config escaping
// to the heap costs an allocation only when there are options.
func applyPublishOptions(opts []PublishOption) pubConfig {
	var pc pubConfig
	for _, o := range opts {
		if o != nil {
			o.applyPub(&pc)
		}
	}
	return pc
}

// prepare validates e (unless checked), fills a nil Payload and puts a
// set Timestamp in UTC.
func (b *Bus) prepare(e *Event, checked bool) error {
	if !checked {
		if err := e.validate(); err != nil {
			return err
		}
	}
	if e.Payload == nil {
		e.Payload = nullJSON
	}
	if len(e.Metadata) == 0 {
		e.Metadata = nil
	} else {
		// The bus shares an accepted event among subscribers: it must
		// not see the caller's later changes to the map.
		e.Metadata = maps.Clone(e.Metadata)
	}
	if !e.Timestamp.IsZero() {
		e.Timestamp = e.Timestamp.UTC()
	}
	return nil
}

func (b *Bus) shouldPersist(topic string, pc pubConfig) bool {
	if b.store == nil || !b.cfg.persistDefault || pc.noPersist {
		return false
	}
	for _, p := range b.cfg.noPersist {
		if p.matches(topic) {
			return false
		}
	}
	return true
}

// authorize asks the Authorizer, if any. Denials wrap ErrForbidden.
func (b *Bus) authorize(ctx context.Context, a Access) error {
	if b.cfg.authorizer == nil {
		return nil
	}
	err := b.cfg.authorizer.Authorize(ctx, a)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrForbidden):
		return err
	}
	return fmt.Errorf("%w: %w", ErrForbidden, err)
}

// Flush waits until every event accepted before the call has been
// persisted and handed to its subscriptions. It does not wait for
// subscribers to read them. It returns ErrClosed after Shutdown, or
// ctx.Err() if ctx ends first.
func (b *Bus) Flush(ctx context.Context) error {
	if b.in.isClosed() {
		return ErrClosed
	}
	done := make(chan struct{})
	if !b.in.control(control{kind: ctlFlush, done: done}) {
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the bus goroutine. It runs until Shutdown has closed the intake
// and everything queued has been processed, then ends every subscription.
func (b *Bus) loop() {
	defer close(b.loopDone)
	for b.in.wait() {
		b.run.Lock()
		b.runBatch(false)
		b.run.Unlock()
	}
	b.run.Lock()
	defer b.run.Unlock()
	b.runBatch(false) // a batch handed over as the intake closed
	b.timer.Stop()
	// Take every subscription out of the table at once (not one rebuild
	// each), then end them.
	b.subMu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	clear(b.subs)
	b.routes.Store(emptyRoutes)
	b.subMu.Unlock()
	for _, s := range subs {
		b.endOnLoop(s, ErrClosed)
	}
}

// rest is the part of a batch not yet fanned out, which a combining
// publisher leaves to the loop goroutine.
type rest struct {
	items []item // the whole batch
	next  int    // the first item not fanned out
	perr  error  // the batch's persistence error
}

// combine is a synchronous publisher's turn at the loop's work: if no one
// holds b.run, it processes what is waiting, its own event included, so an
// acknowledged publish on an idle bus costs no goroutine hand-off. It never
// waits for a subscriber: at an event a Block subscription has no room for,
// it hands the rest of the batch to the loop goroutine. If b.run is held,
// its holder will see the event (or wake the loop for it).
func (b *Bus) combine() {
	if !b.run.TryLock() {
		return
	}
	b.runBatch(true)
	b.run.Unlock()
	b.in.kick()
}

// runBatch processes a batch: first the rest of one a publisher handed
// over, else what the intake holds. b.run must be held. A combining
// publisher leaves a handed-over rest to the loop and hands over its own
// batch where it would have to wait (see combine).
func (b *Bus) runBatch(combining bool) {
	if r := b.rest; r.items != nil {
		if combining {
			return
		}
		b.rest = rest{}
		b.in.resumed()
		b.fanout(r.items[r.next:], r.perr, b.clock(), false)
		b.recycle(r.items)
		return
	}
	items := b.in.takeNow(b.spare)
	b.spare = nil
	if len(items) == 0 {
		b.recycle(items)
		return
	}
	now, perr := b.accept(items)
	if next := b.fanout(items, perr, now, combining); next < len(items) {
		b.rest = rest{items: items, next: next, perr: perr}
		b.in.handOver()
		return
	}
	b.recycle(items)
}

// recycle keeps an emptied batch as the intake's next buffer.
func (b *Bus) recycle(items []item) {
	clear(items)
	b.spare = items[:0]
}

// accept gives a batch's events their Seq (and a zero ID and Timestamp
// their values) and appends those to be persisted to the store. It returns
// b.clock() after that (read once per batch) and the store's error.
func (b *Bus) accept(items []item) (now int64, perr error) {
	b.toStore = b.toStore[:0]
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
			stamp = time.Now()
			ms, at = ulid.Timestamp(stamp), int64(stamp.Sub(b.epoch))
			stamp = stamp.UTC()
		}
		accepted++
		b.seq++
		it.e.Seq, it.at = b.seq, at
		if it.e.ID.IsZero() {
			if ids == nil {
				ids = lockIDs()
			}
			it.e.ID = ids.next(ms)
		}
		if it.e.Timestamp.IsZero() {
			it.e.Timestamp = stamp
		}
		if it.persist {
			b.toStore = append(b.toStore, it.e)
		}
	}
	if ids != nil {
		ids.unlock()
	}
	b.published.Add(uint64(accepted))
	b.lastSeq.Store(b.seq)
	now = at
	if len(b.toStore) > 0 {
		if err := b.store.Append(context.Background(), b.toStore); err != nil {
			perr = fmt.Errorf("%w: %w", ErrPersist, err)
		} else {
			b.persisted.Add(uint64(len(b.toStore)))
			b.stored = b.toStore[len(b.toStore)-1].Seq
		}
		clear(b.toStore)
		now = b.clock()
	}
	return now, perr
}

// fanout hands each event of an accepted batch to its subscriptions,
// handles control requests where they stand and acknowledges synchronous
// publishers; now is b.clock() at its start. It returns len(items), or,
// when combining, the index where it stopped because a Block subscription
// had no room: the items from there on are left undone.
func (b *Bus) fanout(items []item, perr error, now int64, combining bool) int {
	var n counts
	defer b.addCounts(&n)
	fresh := true // now was read for the first run
	for i := 0; i < len(items); {
		if c := items[i].ctl; c != nil {
			b.handle(c)
			i++
			continue
		}
		end := i + 1
		for end < len(items) && end-i < maxRun && items[end].ctl == nil {
			end++
		}
		if !fresh {
			now = b.clock()
		}
		fresh = false
		if !b.fanoutRun(items[i:end], perr, now, combining, &n) {
			return i
		}
		i = end
	}
	return len(items)
}

// maxRun bounds a run of fanoutRun, and so the scratch it keeps per
// subscription (Subscription.run).
const maxRun = 1024

// fanoutRun fans out a run of events with no control request among them.
// It collects, for each subscription they reach, the events it gets, then
// hands each subscription its events in a row, so a subscriber that waits
// is woken once per run rather than once per event; each mailbox still
// gets its events in Seq order. Then, in order, it records the events in
// the tail and acknowledges their publishers. When combining and a Block
// subscription has no room for all its events, it does nothing and
// reports false.
func (b *Bus) fanoutRun(run []item, perr error, now int64, combining bool, n *counts) bool {
	rt := b.routes.Load()
	touched := b.touched[:0]
	for i := range run {
		it := &run[i]
		if it.persist && perr != nil {
			continue // not delivered
		}
		for _, s := range b.cache.route(rt, it.e.Topic) {
			if len(s.run) == 0 {
				touched = append(touched, s)
			}
			s.run = append(s.run, int32(i))
		}
	}
	defer func() {
		for _, s := range touched {
			s.run = s.run[:0]
		}
		clear(touched)
		b.touched = touched[:0]
	}()
	if combining && !roomFor(touched) {
		return false
	}
	clockAge := 0
	for _, s := range touched {
		for _, i := range s.run {
			// One clock read per 16 deliveries: latency is sampled at
			// that grain.
			if clockAge++; clockAge == 16 {
				now, clockAge = b.clock(), 0
			}
			b.deliver(s, &run[i], now, n)
		}
	}
	for i := range run {
		it := &run[i]
		b.processed = it.e.Seq
		if it.persist && perr != nil {
			b.tail.add(it, false)
			if it.w != nil {
				it.w.ch <- perr
			} else {
				b.report(&EventError{ID: it.e.ID, Topic: it.e.Topic, Err: perr})
			}
			continue
		}
		b.tail.add(it, it.persist)
		if it.w != nil {
			// Stats are current when Publish returns.
			b.addCounts(n)
			it.w.seq = it.e.Seq
			it.w.ch <- nil
		}
	}
	return true
}

// roomFor reports whether every live Block subscription in subs has room
// in its mailbox for all the events collected for it (s.run), so handing
// them out cannot wait. Only the bus sends to a live subscription's
// mailbox, so room seen here stays until it sends.
func roomFor(subs []*Subscription) bool {
	for _, s := range subs {
		if s.overflow == Block && !s.ended && !s.lagging && s.pending()+len(s.run) > s.capacity() {
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

// deliver hands one event to one subscription under its overflow policy,
// counting into the subscription's statistics and n.
func (b *Bus) deliver(s *Subscription, it *item, now int64, n *counts) {
	if s.ended || it.e.Seq <= s.lastSeq {
		return
	}
	if s.lagging {
		// A persisted event is owed: the catch-up goroutine reads it from
		// the store. Any other is lost.
		if it.persist {
			if s.lag.counting && it.e.Seq > s.lag.mark && s.lag.wants(&it.e) {
				s.lag.owed++
			}
		} else {
			s.dropped.Add(1)
			n.dropped++
		}
		return
	}
	if s.trySend(&it.e, it.at) {
		if s.overflowing && s.pending() <= s.capacity()/2 {
			s.overflowing = false // the episode is over: report the next one
		}
	} else if !b.overflow(s, it, n) {
		return
	}
	s.lastSeq = it.e.Seq
	s.delivered.Add(1)
	n.delivered++
	if s.hch == nil {
		s.latency.observe(now - it.at)
	}
}

// overflow applies the policy of a subscription whose mailbox is full. It
// reports whether the event got in after all; otherwise it has counted
// what was lost.
func (b *Bus) overflow(s *Subscription, it *item, n *counts) bool {
	lost := func() {
		s.dropped.Add(1)
		n.dropped++
		if !s.overflowing {
			s.overflowing = true
			b.report(fmt.Errorf("%w: subscription %s %q is losing events (%s)", ErrSlowConsumer, s.id, s.name, s.overflow))
		}
	}
	switch s.overflow {
	case DropOldest:
		if s.evictOldest() {
			lost()
		}
		if s.trySend(&it.e, it.at) {
			return true
		}
	case Block:
		var stop <-chan time.Time
		if s.blockWait > 0 {
			b.timer.Reset(s.blockWait)
			stop = b.timer.C
			defer b.timer.Stop()
		}
		if s.sendWait(&it.e, it.at, stop, b.abort) {
			return true
		}
	case Disconnect:
		b.endOnLoop(s, ErrSlowConsumer)
		s.dropped.Add(1)
		n.dropped++
		b.report(fmt.Errorf("%w: subscription %s %q disconnected", ErrSlowConsumer, s.id, s.name))
		return false
	case CatchUp:
		cursor := s.lastSeq
		b.startLag(s, cursor, time.Time{}, cursor)
		if it.persist {
			s.lag.owed++
			return false // the catch-up goroutine delivers it
		}
	}
	lost()
	return false
}

// startLag makes s lagging and starts its catch-up goroutine from cursor.
// The loop counts what it skips above mark (see lagCount).
func (b *Bus) startLag(s *Subscription, cursor uint64, since time.Time, mark uint64) {
	s.lagging = true
	s.isLagging.Store(true)
	s.lag = lagCount{counting: true, mark: mark, since: since}
	b.wg.Go(func() { b.catchUp(s, cursor, since, mark) })
}

// endOnLoop ends a subscription from the loop, which is then its sender.
func (b *Bus) endOnLoop(s *Subscription, err error) {
	if s.finish(err) {
		b.detach(s)
	}
	s.ended = true
	if !s.lagging {
		s.closeMailbox()
	}
}

// handle carries out a control request on the loop.
func (b *Bus) handle(c *control) {
	switch c.kind {
	case ctlFlush:
		close(c.done)
	case ctlEnd:
		c.sub.ended = true
		if !c.sub.lagging {
			c.sub.closeMailbox()
		}
	case ctlHandover:
		c.reply <- b.handover1(c.sub, c.cursor, c.caught)
	case ctlReplay:
		if !c.sub.ended {
			// Events at or below the cursor are not replayed, and those
			// the loop fanned out before now are not in its account.
			b.startLag(c.sub, c.cursor, c.since, max(b.processed, c.cursor))
		} else {
			c.sub.closeMailbox() // it was never lagging: the loop is its sender
		}
	}
}

type handoverReply struct {
	live   bool   // the loop is the sender again
	ended  bool   // the subscription has ended
	cursor uint64 // otherwise: the catch-up goroutine goes on after cursor
}

// handover asks the loop to take s back live after cursor. It reports
// false if the loop has stopped.
func (b *Bus) handover(s *Subscription, cursor, caught uint64) (handoverReply, bool) {
	reply := make(chan handoverReply, 1)
	if !b.in.control(control{kind: ctlHandover, sub: s, cursor: cursor, caught: caught, reply: reply}) {
		return handoverReply{}, false
	}
	return <-reply, true
}

// handover1 is the loop's side of a hand-over. Every event up to
// b.processed has been fanned out; those after cursor that s missed are in
// the tail or the store. If the tail holds them all and they fit in the
// mailbox, the loop delivers them and s is live again; otherwise the
// catch-up goroutine goes on from the last one delivered.
func (b *Bus) handover1(s *Subscription, cursor, caught uint64) handoverReply {
	if s.ended {
		return handoverReply{ended: true}
	}
	// Only stored events are owed to a lagging subscription: when none
	// came after cursor, it goes live whatever the tail holds.
	if cursor < b.processed && cursor < b.stored {
		if !b.tail.covers(cursor + 1) {
			return handoverReply{cursor: cursor}
		}
		for t := range b.tail.since(cursor + 1) {
			if !t.persist || !s.matches(t.e.Topic) || !s.lag.wants(&t.e) {
				cursor = t.e.Seq
				continue
			}
			if !s.trySend(&t.e, t.at) {
				return handoverReply{cursor: cursor}
			}
			s.delivered.Add(1)
			b.delivered.Add(1)
			if t.e.Seq > s.lag.mark {
				s.lag.handed++
			}
			cursor = t.e.Seq
		}
	}
	s.lagging = false
	s.isLagging.Store(false)
	s.lastSeq = max(cursor, b.processed)
	if got := caught + s.lag.handed; s.lag.counting && s.lag.owed > got {
		// The store no longer held them: pruned by its retention before
		// the catch-up goroutine got there.
		lost := s.lag.owed - got
		s.dropped.Add(lost)
		b.dropped.Add(lost)
		b.report(fmt.Errorf("%w: subscription %s %q lost %d events that left the store before it caught up", ErrSlowConsumer, s.id, s.name, lost))
	}
	s.lag = lagCount{}
	return handoverReply{live: true}
}

// Subscribe returns a subscription whose mailbox C receives the events
// whose topics match pattern, in Seq order, from now on (or replayed from
// the store first, with FromSeq or Since). It ends when ctx is done, when
// Close is called, when the bus shuts down, or when its overflow policy
// disconnects it.
//
// Errors wrap ErrInvalidPattern, ErrInvalidOption, ErrNoStore (replay or
// CatchUp without a store), ErrForbidden or ErrClosed, or are ctx.Err().
func (b *Bus) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (*Subscription, error) {
	return b.subscribe(ctx, pattern, opts, nil)
}

// Handle subscribes h to pattern: a goroutine owned by the bus calls it for
// each matching event, one at a time, in order. A returned error or a
// panic is recovered, reported to the error handler and logged with the
// event's ID and topic, and h goes on with the next event. h's ctx carries
// the values of ctx; it is cancelled (cause ErrClosed) once the handler has
// finished its mailbox after the subscription ended, or when Shutdown stops
// waiting. The returned subscription controls its lifetime; its C only
// closes. Errors are those of Subscribe.
func (b *Bus) Handle(ctx context.Context, pattern string, h func(context.Context, Event) error, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return b.subscribe(ctx, pattern, opts, h)
}

// HandleFunc is Bus.Handle for typed payloads: each payload is decoded into
// a T before h is called. A payload that does not decode is reported to the
// error handler (as an *EventError with the event's ID, topic and the
// decode error) and skipped.
func HandleFunc[T any](b *Bus, ctx context.Context, pattern string, h func(context.Context, Event, T) error, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return b.Handle(ctx, pattern, func(ctx context.Context, e Event) error {
		var v T
		if err := e.Decode(&v); err != nil {
			b.report(&EventError{ID: e.ID, Topic: e.Topic, Err: fmt.Errorf("%w: decoding payload: %w", ErrInvalidPayload, err)})
			return nil
		}
		return h(ctx, e, v)
	}, opts...)
}

func (b *Bus) subscribe(ctx context.Context, pat string, opts []SubscribeOption, h func(context.Context, Event) error) (*Subscription, error) {
	if err := ValidatePattern(pat); err != nil {
		return nil, err
	}
	cfg := b.cfg.sub
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applySub(&cfg); err != nil {
			return nil, err
		}
	}
	if b.store == nil && (cfg.replay || cfg.overflow == CatchUp) {
		return nil, ErrNoStore
	}
	principal := PrincipalFrom(ctx)
	ps := []pattern{classify(pat)}
	for _, p := range cfg.more {
		if !slices.ContainsFunc(ps, func(q pattern) bool { return q.src == p }) {
			ps = append(ps, classify(p))
		}
	}
	for _, p := range ps {
		if err := b.authorize(ctx, Access{Action: ActionSubscribe, Principal: principal, Pattern: p.src}); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Subscription{
		b:         b,
		name:      cfg.name,
		principal: principal,
		overflow:  cfg.overflow,
		blockWait: cfg.blockTimeout,
		done:      make(chan struct{}),
		closed:    make(chan struct{}),
	}
	if h != nil {
		s.ch = make(chan Event)
		s.hch = make(chan envelope, cfg.buffer)
	} else {
		s.ch = make(chan Event, cfg.buffer)
	}
	s.pats.Store(&ps)
	var cursor uint64
	if cfg.replay {
		// Lagging from the start; the loop starts the catch-up goroutine
		// when it reaches the ctlReplay below, so it knows where its own
		// account of skipped events begins.
		s.lagging = true
		s.isLagging.Store(true)
		if cfg.fromSeq > 0 {
			cursor = cfg.fromSeq - 1
		}
	}

	b.subMu.Lock()
	if b.closing {
		b.subMu.Unlock()
		return nil, ErrClosed
	}
	b.nextID++
	s.id = "sub-" + strconv.FormatUint(b.nextID, 10)
	b.subs[s] = ps
	b.routes.Store(buildRoutes(b.subs))
	if h != nil {
		b.wg.Go(func() { b.runHandler(s, ctx, h) })
	}
	if cfg.replay {
		// The loop cannot have stopped: it stops only after Shutdown has
		// set closing, which was false above.
		b.in.control(control{kind: ctlReplay, sub: s, cursor: cursor, since: cfg.since})
	}
	b.subMu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	s.mu.Lock()
	if s.Err() != nil {
		s.mu.Unlock()
		stop()
	} else {
		s.stopCtx = stop
		s.mu.Unlock()
	}
	return s, nil
}

// detach removes s from the route table.
func (b *Bus) detach(s *Subscription) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	b.routes.Store(buildRoutes(b.subs))
}

// changePatterns adds or removes one pattern of s.
func (b *Bus) changePatterns(s *Subscription, pat string, add bool) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	ps, ok := b.subs[s]
	if !ok {
		return ErrClosed
	}
	i := 0
	for i < len(ps) && ps[i].src != pat {
		i++
	}
	found := i < len(ps)
	var next []pattern
	switch {
	case add && found:
		return nil
	case add:
		next = append(append(make([]pattern, 0, len(ps)+1), ps...), classify(pat))
	case !found:
		return fmt.Errorf("%w %q: not a pattern of subscription %s", ErrInvalidPattern, pat, s.id)
	default:
		next = append(append(make([]pattern, 0, len(ps)-1), ps[:i]...), ps[i+1:]...)
	}
	b.subs[s] = next
	s.pats.Store(&next)
	b.routes.Store(buildRoutes(b.subs))
	return nil
}

// SubscriberInfo describes a subscription, as Subscribers returns it.
type SubscriberInfo struct {
	ID       string
	Name     string
	Patterns []string
	Stats    SubscriptionStats
}

// Subscribers returns the subscriptions an event on topic would reach now,
// each once. It returns nil for an invalid topic.
func (b *Bus) Subscribers(topic string) []SubscriberInfo {
	if ValidateTopic(topic) != nil {
		return nil
	}
	subs := b.routes.Load().lookup(topic, nil)
	out := make([]SubscriberInfo, 0, len(subs))
	for _, s := range subs {
		out = append(out, SubscriberInfo{ID: s.id, Name: s.name, Patterns: s.Patterns(), Stats: s.Stats()})
	}
	return out
}

// Query reads the store: the events matching q.Pattern ("" matches all),
// at or after q.Since and with Seq greater than q.AfterSeq, oldest first, at
// most q.Limit (default 100, at most 10,000); with q.Newest the newest
// Limit instead, still oldest first. Errors wrap ErrNoStore, ErrInvalidQuery
// or ErrClosed, or come from the store.
func (b *Bus) Query(ctx context.Context, q Query) ([]Event, error) {
	if b.store == nil {
		return nil, ErrNoStore
	}
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	if b.ownsStore && b.in.isClosed() {
		return nil, ErrClosed
	}
	return b.store.Query(ctx, q)
}

// Stats describes the bus at a moment.
type Stats struct {
	Published     uint64         // events accepted
	Persisted     uint64         // events appended to the store
	Delivered     uint64         // events put into mailboxes (one per subscription)
	Dropped       uint64         // events lost to overflow policies
	Subscriptions int            // active subscriptions
	Patterns      map[string]int // subscriptions per pattern
	QueueDepth    int            // events waiting in the bus mailbox
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	rt := b.routes.Load()
	pats := make(map[string]int, len(rt.patterns))
	for p, n := range rt.patterns {
		pats[p] = n
	}
	return Stats{
		Published:     b.published.Load(),
		Persisted:     b.persisted.Load(),
		Delivered:     b.delivered.Load(),
		Dropped:       b.dropped.Load(),
		Subscriptions: rt.subs,
		Patterns:      pats,
		QueueDepth:    b.in.depth(),
	}
}

// Shutdown stops the bus gracefully, like http.Server.Shutdown: new
// publishes get ErrClosed; everything already accepted is persisted and
// delivered; handlers finish the events in their mailboxes; subscription
// channels are closed; the store is closed if the bus opened it. It returns
// nil when all of that is done, or ctx.Err() if ctx ends first: then
// handler contexts are cancelled (cause ErrClosed), events left in handler
// mailboxes are dropped, a Block policy stops waiting, and the rest of the
// shutdown finishes in the background (a later Close waits for it).
// Shutdown is safe to call more than once and from several goroutines. A
// handler that calls it waits for itself: give it a ctx with a deadline,
// or call it from another goroutine.
func (b *Bus) Shutdown(ctx context.Context) error {
	b.shutOnce.Do(func() {
		// No new subscriptions first, so every one that exists is in
		// b.subs before the loop can stop and end them all.
		b.subMu.Lock()
		b.closing = true
		b.subMu.Unlock()
		b.in.close()
		go b.shutdown()
	})
	select {
	case <-b.shutDone:
		return b.shutErr
	case <-ctx.Done():
		b.stopWaiting()
		return ctx.Err()
	}
}

// Close is Shutdown(context.Background()).
func (b *Bus) Close() error { return b.Shutdown(context.Background()) }

// stopWaiting cancels handler contexts and Block waits.
func (b *Bus) stopWaiting() {
	b.abortOnce.Do(func() { close(b.abort) })
	b.cancelRoot(ErrClosed)
}

// shutdown runs the closing steps once, in order.
func (b *Bus) shutdown() {
	<-b.loopDone
	b.wg.Wait()
	b.stopWaiting()
	if b.ownsStore {
		if err := b.store.Close(); err != nil {
			b.shutErr = fmt.Errorf("eventbus: closing store: %w", err)
		}
	}
	b.rep.close()
	close(b.shutDone)
}

// report sends err to the error handler and the logger, from the
// reporter's goroutine.
func (b *Bus) report(err error) { b.rep.report(err) }

// reporter is the one goroutine that calls the error handler and logs
// errors that have no caller, so user code never runs on the loop.
type reporter struct {
	logger  *slog.Logger
	handler func(error)
	mu      sync.Mutex
	queue   []error
	stopped bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newReporter(l *slog.Logger, h func(error)) *reporter {
	r := &reporter{logger: l, handler: h, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *reporter) report(err error) {
	r.mu.Lock()
	if r.stopped {
		// Late reports (a subscription ended after Shutdown) are delivered
		// by their caller, which is never the loop: it has exited.
		r.mu.Unlock()
		r.deliver(err)
		return
	}
	r.queue = append(r.queue, err)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		stopping := false
		select {
		case <-r.wake:
		case <-r.stop:
			stopping = true
		}
		r.mu.Lock()
		q := r.queue
		r.queue = nil
		r.stopped = stopping
		r.mu.Unlock()
		for _, err := range q {
			r.deliver(err)
		}
		if stopping {
			return
		}
	}
}

func (r *reporter) deliver(err error) {
	attrs := []any{slog.Any("err", err)}
	if ee, ok := errors.AsType[*EventError](err); ok {
		attrs = append(attrs, slog.String("event_id", ee.ID.String()), slog.String("topic", ee.Topic))
	}
	r.logger.Error("eventbus", attrs...)
	if r.handler != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					r.logger.Error("eventbus: error handler panicked", slog.Any("panic", v))
				}
			}()
			r.handler(err)
		}()
	}
}

// close delivers what is queued and stops the goroutine.
func (r *reporter) close() {
	close(r.stop)
	<-r.done
}
