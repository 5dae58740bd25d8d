package eventbus

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// HandlerFunc is the signature of a handler, as middleware sees it.
type HandlerFunc func(context.Context, Event) error

// Hooks are extension points added to a running bus with Bus.AddHooks: a
// publish hook and a handler middleware, as WithPublishHook and
// WithMiddleware give them at New, and a publish hook that also sees the
// publish end. Any may be nil.
type Hooks struct {
	// Publish runs on the publisher's goroutine at the start of every
	// publish, before validation (see WithPublishHook).
	Publish func(ctx context.Context, e *Event)
	// PublishStart runs where Publish does, after it, and may return a
	// function that the bus calls once, on the publisher's goroutine, when
	// the publish returns, with the error it returns: Publish's when the
	// event has been handed to its subscriptions (or refused),
	// PublishAsync's when it is accepted (or refused). It is how a tracer
	// makes a span cover the whole publish.
	PublishStart func(ctx context.Context, e *Event) (end func(err error))
	// Middleware wraps every handler call of every Handle subscription
	// (see WithMiddleware), inside the middleware given to New.
	Middleware func(HandlerFunc) HandlerFunc
}

// pubHook is a publish hook as the bus runs it: Hooks.Publish and
// WithPublishHook's hooks return no end.
type pubHook func(ctx context.Context, e *Event) (end func(error))

// hookSet is the bus's current hooks; it is replaced, never changed in
// place, so publishers and handler runners read it with one atomic load.
type hookSet struct {
	pub []pubHook
	mw  []func(HandlerFunc) HandlerFunc
	ids []uint64 // of the AddHooks entries, parallel to their pub/mw entries
	add []Hooks
}

// hooksState holds the bus's hooks.
type hooksState struct {
	mu   sync.Mutex // serialises writers
	cur  atomic.Pointer[hookSet]
	next uint64
	opt  struct {
		pub []func(context.Context, *Event)
		mw  []func(HandlerFunc) HandlerFunc
	}
}

// noEnd makes a publish hook that has no end a pubHook.
func noEnd(h func(context.Context, *Event)) pubHook {
	return func(ctx context.Context, e *Event) func(error) {
		h(ctx, e)
		return nil
	}
}

// build makes the hookSet of the options given to New and the hooks added
// since, in that order; nil when there are none.
func (h *hooksState) build(ids []uint64, add []Hooks) *hookSet {
	hs := &hookSet{ids: ids, add: add}
	for _, p := range h.opt.pub {
		hs.pub = append(hs.pub, noEnd(p))
	}
	hs.mw = append(hs.mw, h.opt.mw...)
	for _, a := range add {
		if a.Publish != nil {
			hs.pub = append(hs.pub, noEnd(a.Publish))
		}
		if a.PublishStart != nil {
			hs.pub = append(hs.pub, a.PublishStart)
		}
		if a.Middleware != nil {
			hs.mw = append(hs.mw, a.Middleware)
		}
	}
	if len(hs.pub) == 0 && len(hs.mw) == 0 && len(add) == 0 {
		return nil
	}
	return hs
}

// AddHooks adds a publish hook and a handler middleware to a running bus,
// after those given to New, and returns a function that removes them.
// Publishes that start after AddHooks returns run the hook; handlers pick
// up the middleware before their next event. It is how a package such as
// otelbus instruments a bus it did not create. Safe for concurrent use.
func (b *Bus) AddHooks(h Hooks) (remove func()) {
	hk := &b.hooks
	hk.mu.Lock()
	hk.next++
	id := hk.next
	var ids []uint64
	var add []Hooks
	if cur := hk.cur.Load(); cur != nil {
		ids, add = slices.Clone(cur.ids), slices.Clone(cur.add)
	}
	hk.cur.Store(hk.build(append(ids, id), append(add, h)))
	hk.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			hk.mu.Lock()
			defer hk.mu.Unlock()
			cur := hk.cur.Load()
			if cur == nil {
				return
			}
			i := slices.Index(cur.ids, id)
			if i < 0 {
				return
			}
			ids := slices.Delete(slices.Clone(cur.ids), i, i+1)
			add := slices.Delete(slices.Clone(cur.add), i, i+1)
			hk.cur.Store(hk.build(ids, add))
		})
	}
}

// publishHooked is publish with the publish hooks of hs: it runs them,
// publishes the result, and calls the ends they returned, last first,
// with publish's error.
func (b *Bus) publishHooked(ctx context.Context, hs *hookSet, e *Event, opts []PublishOption, flags pubFlags) (uint64, error) {
	var buf [4]func(error)
	ends := runHooks(ctx, hs, e, buf[:0])
	// The hooks may have changed e: it is checked again.
	seq, err := b.publish(ctx, e, opts, flags&^pubChecked|pubHooked)
	for i := len(ends) - 1; i >= 0; i-- {
		ends[i](err)
	}
	return seq, err
}

// runHooks gives each publish hook a copy of *e with a Metadata map of its
// own, then puts the result back, and appends the ends they return to
// ends. The copy is on the heap only here, so that a publish without hooks
// keeps e on its caller's stack.
func runHooks(ctx context.Context, hs *hookSet, e *Event, ends []func(error)) []func(error) {
	c := new(Event)
	*c = *e
	if c.Metadata != nil {
		m := make(map[string]string, len(c.Metadata)+2)
		for k, v := range c.Metadata {
			m[k] = v
		}
		c.Metadata = m
	}
	for _, h := range hs.pub {
		if end := h(ctx, c); end != nil {
			ends = append(ends, end)
		}
	}
	*e = *c
	return ends
}

// chain wraps h in the bus's middleware (outermost, in order) and then the
// subscription's (in order).
func chain(hs *hookSet, sub []func(HandlerFunc) HandlerFunc, h HandlerFunc) HandlerFunc {
	for i := len(sub) - 1; i >= 0; i-- {
		h = sub[i](h)
	}
	if hs != nil {
		for i := len(hs.mw) - 1; i >= 0; i-- {
			h = hs.mw[i](h)
		}
	}
	return h
}

type subKey struct{}

// SubscriptionFrom returns the subscription whose handler ctx is, or nil.
// Middleware uses it to name what it measures.
func SubscriptionFrom(ctx context.Context) *Subscription {
	s, _ := ctx.Value(subKey{}).(*Subscription)
	return s
}

// callerSite returns the "file.go:123" of the caller skip frames up.
func callerSite(skip int) string {
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		return ""
	}
	return filepath.Base(file) + ":" + strconv.Itoa(line)
}

// Site returns where the subscription was made: the caller of Subscribe,
// Handle or HandleFunc, as "file.go:123".
func (s *Subscription) Site() string { return s.site }

// Subscriptions returns every live subscription, in the order they were
// made.
func (b *Bus) Subscriptions() []SubscriberInfo {
	b.reg.mu.Lock()
	subs := make([]*Subscription, 0, len(b.reg.subs))
	for s := range b.reg.subs {
		subs = append(subs, s)
	}
	b.reg.mu.Unlock()
	slices.SortFunc(subs, func(a, c *Subscription) int {
		return cmp.Or(cmp.Compare(len(a.id), len(c.id)), cmp.Compare(a.id, c.id))
	})
	out := make([]SubscriberInfo, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.info())
	}
	return out
}

func (s *Subscription) info() SubscriberInfo {
	return SubscriberInfo{ID: s.id, Name: s.name, Site: s.site, Created: s.created, Patterns: s.Patterns(), Stats: s.Stats()}
}

// StallError reports a handler that has been running one event for longer
// than the bus's stall timeout (WithStallTimeout), and again, with
// Recovered set, when that call returns. The error handler receives it;
// errors.Is(err, ErrStalled) holds.
type StallError struct {
	Subscription string        // the subscription's name, or its ID if it has none
	ID           string        // the subscription's ID
	Site         string        // where the subscription was made, "file.go:123"
	EventID      ulid.ULID     // the event the handler is stuck on
	Topic        string        // its topic
	Duration     time.Duration // how long the handler had run on it
	Recovered    bool          // the handler has returned
}

// Error implements error.
func (e *StallError) Error() string {
	if e.Recovered {
		return fmt.Sprintf("eventbus: handler of subscription %q (made at %s) recovered after %v on event %s on %q",
			e.Subscription, e.Site, e.Duration, e.EventID, e.Topic)
	}
	return fmt.Sprintf("eventbus: handler of subscription %q (made at %s) stalled: running for %v on event %s on %q",
		e.Subscription, e.Site, e.Duration, e.EventID, e.Topic)
}

// Unwrap returns ErrStalled.
func (e *StallError) Unwrap() error { return ErrStalled }

// running is what a handler runner is doing now, for the watchdog and
// Stats. Its mutex is held only to copy these few fields.
type running struct {
	mu      sync.Mutex
	busy    bool  // a call is running
	start   int64 // bus clock when it began
	id      ulid.ULID
	topic   string
	stalled bool // reported as stalled during this call
}

// begin records that a call on e started at now.
func (r *running) begin(now int64, e *Event) {
	r.mu.Lock()
	r.busy, r.start, r.id, r.topic, r.stalled = true, now, e.ID, e.Topic, false
	r.mu.Unlock()
}

// finish records that the call returned, and whether it had been reported
// stalled.
func (r *running) finish() (stalled bool) {
	r.mu.Lock()
	stalled = r.stalled
	r.busy, r.topic, r.stalled = false, "", false
	r.mu.Unlock()
	return stalled
}

// stallError returns a StallError about s for a call on id/topic that ran d.
func (s *Subscription) stallError(id ulid.ULID, topic string, d time.Duration, recovered bool) *StallError {
	name := s.name
	if name == "" {
		name = s.id
	}
	return &StallError{Subscription: name, ID: s.id, Site: s.site, EventID: id, Topic: topic, Duration: d, Recovered: recovered}
}

// stalledFor returns how long the current call has run, if longer than
// the stall timeout, else 0.
func (s *Subscription) stalledFor() time.Duration {
	w := s.b.watch
	if w == nil || s.run == nil {
		return 0
	}
	s.run.mu.Lock()
	start, busy := s.run.start, s.run.busy
	s.run.mu.Unlock()
	if !busy {
		return 0
	}
	if d := time.Duration(s.b.clock() - start); d >= w.timeout {
		return d
	}
	return 0
}

// watchdog is the goroutine that looks for stalled handlers, one per bus
// with a stall timeout. It starts in New and stops at Shutdown, after the
// handler runners have returned.
type watchdog struct {
	b       *Bus
	timeout time.Duration
	mu      sync.Mutex
	runners map[*Subscription]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func startWatchdog(b *Bus, timeout time.Duration) *watchdog {
	w := &watchdog{b: b, timeout: timeout, runners: make(map[*Subscription]struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// tick is how often the watchdog looks: a quarter of the timeout, at most
// a second, so a stall is reported between the timeout and the timeout
// plus the tick.
func (w *watchdog) tick() time.Duration {
	return max(min(w.timeout/4, time.Second), time.Millisecond)
}

func (w *watchdog) add(s *Subscription) {
	w.mu.Lock()
	w.runners[s] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(s *Subscription) {
	w.mu.Lock()
	delete(w.runners, s)
	w.mu.Unlock()
}

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick())
	defer t.Stop()
	var subs []*Subscription
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		subs = subs[:0]
		for s := range w.runners {
			subs = append(subs, s)
		}
		w.mu.Unlock()
		now := w.b.clock()
		for _, s := range subs {
			r := s.run
			r.mu.Lock()
			var se *StallError
			if d := time.Duration(now - r.start); r.busy && !r.stalled && d >= w.timeout {
				r.stalled = true
				se = s.stallError(r.id, r.topic, d, false)
			}
			r.mu.Unlock()
			if se != nil {
				w.b.report(se)
			}
		}
		clear(subs)
	}
}

func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// selfDeadlock returns an error wrapping ErrDeadlock if ctx is the ctx of
// a handler of a Block subscription (no block timeout) that matches topic
// and whose mailbox is full: the loop would wait for room that only this
// handler can make, and the handler would wait for the loop. It sees only
// a ctx derived from the handler's, and only a mailbox full at the call.
func (b *Bus) selfDeadlock(ctx context.Context, topic string) error {
	s := SubscriptionFrom(ctx)
	if s == nil || s.b != b || !s.countsBlock || s.Err() != nil || !s.matches(topic) {
		return nil
	}
	if n := s.pending(); n >= s.capacity() {
		name := s.name
		if name == "" {
			name = s.id
		}
		return fmt.Errorf("%w: the handler of subscription %q (made at %s) publishes %q, which it matches, into its own full Block mailbox (%d of %d): it would wait for itself",
			ErrDeadlock, name, s.site, topic, n, s.capacity())
	}
	return nil
}
