package eventbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Bus is an in-process event bus. All methods are safe for concurrent
// use. Make one with New and stop it with Shutdown or Close.
//
// A Bus is a thin front over four owners: the intake (the queue that
// publishers put accepted events into), the loop (which alone takes them
// from there, assigns Seq, persists and delivers; see loop), the registry
// (live subscriptions and the route index) and the reporter (the one
// goroutine that calls the error handler).
type Bus struct {
	cfg       busConfig
	store     Store
	ownsStore bool
	combines  bool // acknowledged publishers may take the loop's turn (see combine)
	epoch     time.Time
	seqEpoch  string        // see Epoch
	lastSeq   atomic.Uint64 // the last Seq assigned, for LastSeq

	in      *intake
	loop    *loop
	reg     registry
	rep     *reporter
	waiters sync.Pool // of *waiter

	root       context.Context // parent of handler contexts
	cancelRoot context.CancelCauseFunc
	abort      chan struct{} // closed when Shutdown stops waiting: Block and pacing waits give up
	closing    chan struct{} // closed when Shutdown begins: pending retry backoffs give up
	durMu      sync.Mutex
	durables   map[string]*durable // by name; guarded by durMu
	abortOnce  sync.Once

	wg       sync.WaitGroup // handler runners, pumps and catch-up goroutines
	loopDone chan struct{}
	shutOnce sync.Once
	shutDone chan struct{}
	shutErr  error

	hooks hooksState // publish hooks and middleware (observe.go)
	watch *watchdog  // looks for stalled handlers; nil without a stall timeout
	// blockSubs counts live Handle subscriptions with the Block policy
	// and no block timeout, for the self-deadlock check in publish.
	blockSubs atomic.Int32

	published, persisted, delivered, dropped atomic.Uint64
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
		closing:  make(chan struct{}),
		loopDone: make(chan struct{}),
		shutDone: make(chan struct{}),
	}
	b.waiters.New = newWaiter
	b.reg.subs = make(map[*Subscription]struct{})
	b.reg.noCache = cfg.noRouteCache
	b.reg.routes = newRouteIndex(cfg.noRouteCache)
	switch {
	case cfg.storeSet:
		b.store = cfg.store
	default:
		b.store, b.ownsStore = NewMemoryStore(), true
	}
	if b.store == nil && cfg.sub.overflow == CatchUp {
		return nil, nest(ErrInvalidOption, "WithOverflow(CatchUp)", ErrNoStore)
	}
	_, memory := b.store.(*MemoryStore)
	b.combines = b.store == nil || memory
	var last uint64
	if b.store != nil {
		var err error
		if last, err = b.store.LastSeq(context.Background()); err != nil {
			return nil, fmt.Errorf("%w: reading LastSeq: %w", ErrPersist, err)
		}
		b.lastSeq.Store(last)
		if es, ok := b.store.(EpochStore); ok {
			if b.seqEpoch, err = es.Epoch(context.Background()); err != nil {
				return nil, fmt.Errorf("%w: reading Epoch: %w", ErrPersist, err)
			}
		}
	}
	if b.seqEpoch == "" {
		b.seqEpoch = newEpoch()
	}
	b.loop = newLoop(b, last)
	b.root, b.cancelRoot = context.WithCancelCause(context.Background())
	b.rep = newReporter(cfg.logger, cfg.errorHandler)
	b.hooks.opt.pub, b.hooks.opt.mw = cfg.publishHooks, cfg.middleware
	b.hooks.cur.Store(b.hooks.build(nil, nil))
	if cfg.stallTimeout > 0 {
		b.watch = startWatchdog(b, cfg.stallTimeout)
	}
	go b.runLoop()
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
	QueueDepth    int            // events waiting in the intake (the bus's queue)
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	b.reg.mu.Lock()
	pats := make(map[string]int)
	b.reg.routes.ForEachPattern(func(p string, n int) { pats[p] = n })
	subs := len(b.reg.subs)
	b.reg.mu.Unlock()
	return Stats{
		Published:     b.published.Load(),
		Persisted:     b.persisted.Load(),
		Delivered:     b.delivered.Load(),
		Dropped:       b.dropped.Load(),
		Subscriptions: subs,
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
		// the registry before the loop can stop and end them all.
		b.reg.mu.Lock()
		b.reg.closing = true
		b.reg.mu.Unlock()
		close(b.closing)
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
	b.flushDurables()
	if b.watch != nil {
		b.watch.close()
	}
	b.stopWaiting()
	if b.ownsStore {
		if err := b.store.Close(); err != nil {
			b.shutErr = fmt.Errorf("eventbus: closing store: %w", err)
		}
	}
	b.rep.close()
	close(b.shutDone)
}
