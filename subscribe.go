package eventbus

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Subscribe returns a subscription whose mailbox C receives the events
// whose topics match pattern, in Seq order, from now on (or replayed from
// the store first, with FromSeq or Since). It ends when ctx is done, when
// Close is called, when the bus shuts down, or when its overflow policy
// disconnects it.
//
// Errors wrap ErrInvalidPattern, ErrInvalidOption, ErrNoStore (replay or
// CatchUp without a store), ErrForbidden or ErrClosed, or are ctx.Err().
func (b *Bus) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (*Subscription, error) {
	return b.subscribe(ctx, pattern, opts, nil, callerSite(1))
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
	return b.subscribe(ctx, pattern, opts, h, callerSite(1))
}

// HandleFunc is Bus.Handle for typed payloads: each payload is decoded into
// a T before h is called. A payload that does not decode is reported to the
// error handler (as an *EventError with the event's ID, topic and the
// decode error) and skipped.
func HandleFunc[T any](b *Bus, ctx context.Context, pattern string, h func(context.Context, Event, T) error, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return b.subscribe(ctx, pattern, opts, func(ctx context.Context, e Event) error {
		var v T
		if err := e.Decode(&v); err != nil {
			b.report(&EventError{ID: e.ID, Topic: e.Topic, Err: fmt.Errorf("%w: decoding payload: %w", ErrInvalidPayload, err)})
			return nil
		}
		return h(ctx, e, v)
	}, callerSite(1))
}

func (b *Bus) subscribe(ctx context.Context, pat string, opts []SubscribeOption, h func(context.Context, Event) error, site string) (*Subscription, error) {
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
	if cfg.durable != "" && cfg.overflow != Block {
		cfg.overflow = CatchUp // it never drops what it has not acknowledged
	}
	if b.store == nil && (cfg.replay || cfg.overflow == CatchUp || cfg.durable != "") {
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
		site:      site,
		created:   time.Now(),
	}
	if err := s.work.init(&cfg, h != nil); err != nil {
		return nil, err
	}
	s.mb.init(cfg.buffer, h != nil, cfg.overflow == Block)
	if h != nil {
		s.c = make(chan Event)
		s.runtimeHst = new(histogram)
		s.mw = cfg.middleware
		s.run = new(running)
	} else {
		s.c = s.mb.out
	}
	s.pats.Store(&ps)
	var joining *groupReplay // a group replay s is to join (see groupReplay.join)
	if cfg.durable != "" {
		d, first, c, r, err := b.openDurable(cfg.durable, cfg.queueGroup, s)
		if err != nil {
			return nil, err
		}
		s.dur = d
		if !first {
			joining = r
		}
		cfg.replay, cfg.fromSeq, cfg.since = first, c+1, time.Time{}
	}
	var cursor uint64
	if cfg.replay {
		// Lagging from the start; the loop starts the catch-up goroutine
		// when it reaches the ctlReplay below, so it knows where its own
		// account of skipped events begins. Nobody else touches s yet.
		s.dl.lagging = true
		s.isLagging.Store(true)
		if cfg.fromSeq > 0 {
			cursor = cfg.fromSeq - 1
		}
	}

	b.reg.mu.Lock()
	if b.reg.closing {
		b.reg.mu.Unlock()
		s.leaveDurable()
		return nil, ErrClosed
	}
	if cfg.queueGroup != "" {
		b.reg.joinGroup(s, cfg.queueGroup)
	}
	if joining != nil {
		// Lagging from the start, fed by the replay's reader; from here
		// on its delivery state is the loop's. A replay that has
		// finished is not joined: s goes live.
		joining.join(s)
	}
	b.reg.add(s, ps)
	if h != nil {
		if s.overflow == Block && s.blockWait == 0 {
			s.countsBlock = true
			b.blockSubs.Add(1)
		}
		b.wg.Go(func() { b.runHandler(s, ctx, h) })
	}
	if cfg.replay {
		// The loop cannot have stopped: it stops only after Shutdown has
		// set closing, which was false above.
		b.in.control(control{kind: ctlReplay, sub: s, cursor: cursor, since: cfg.since})
	}
	b.reg.mu.Unlock()

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

// changePatterns adds or removes one pattern of s. It yields the processor
// after releasing the registry: a client adding and removing a pattern in
// a loop would otherwise take the lock back before the loop, waiting to
// route, could (sync.Mutex lets the releaser barge), and publishing
// stalled for up to 25 ms (busload -mode scale -churn max -churn-by
// pattern: mean publish latency 32–47× that with no churn; with the
// yield, 1.8–2.8×).
func (b *Bus) changePatterns(s *Subscription, pat string, add bool) error {
	b.reg.mu.Lock()
	defer runtime.Gosched()
	defer b.reg.mu.Unlock()
	if _, ok := b.reg.subs[s]; !ok {
		return ErrClosed
	}
	ps := *s.pats.Load()
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
		p := classify(pat)
		next = append(append(make([]pattern, 0, len(ps)+1), ps...), p)
		b.reg.routes.Add(p.src, s)
	case !found:
		return fmt.Errorf("%w %q: not a pattern of subscription %s", ErrInvalidPattern, pat, s.id)
	default:
		next = append(append(make([]pattern, 0, len(ps)-1), ps[:i]...), ps[i+1:]...)
		b.reg.routes.Remove(ps[i].src, s)
	}
	s.pats.Store(&next)
	return nil
}

// registry is the set of live subscriptions and the route index over their
// patterns. Its mutex is held briefly: by Subscribe, a subscription's end
// and Add/Remove to change it, by the loop to route a run of events, and
// by Subscribers and Stats to read it. Each subscription's current
// patterns (Subscription.pats) are written under it too.
type registry struct {
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	routes  *routeIndex
	groups  map[string]*queueGroup // queue groups with members, by name
	closing bool                   // Shutdown has begun: no new subscriptions
	nextID  uint64
	noCache bool // testing: route without the cache
}

// add registers s with patterns ps and gives it its ID. r.mu must be held.
func (r *registry) add(s *Subscription, ps []pattern) {
	r.nextID++
	s.id = "sub-" + strconv.FormatUint(r.nextID, 10)
	r.subs[s] = struct{}{}
	for _, p := range ps {
		r.routes.Add(p.src, s)
	}
}

// remove takes s out of the route index, if it is still there.
func (r *registry) remove(s *Subscription) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.subs[s]; !ok {
		return
	}
	delete(r.subs, s)
	r.leaveGroup(s)
	for _, p := range *s.pats.Load() {
		r.routes.Remove(p.src, s)
	}
}

// takeAll empties the registry at once (not one removal each) and returns
// what it held. Shutdown has set closing, so nothing is added after.
func (r *registry) takeAll() []*Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	subs := make([]*Subscription, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	clear(r.subs)
	clear(r.groups)
	r.routes = newRouteIndex(r.noCache)
	return subs
}

// SubscriberInfo describes a subscription, as Subscribers returns it.
type SubscriberInfo struct {
	ID       string
	Name     string
	Site     string    // where it was made, "file.go:123" (as in Stats)
	Created  time.Time // when it was made; its Stats count from then
	Patterns []string
	Stats    SubscriptionStats
}

// Subscribers returns the subscriptions an event on topic would reach now,
// each once. It returns nil for an invalid topic.
func (b *Bus) Subscribers(topic string) []SubscriberInfo {
	if ValidateTopic(topic) != nil {
		return nil
	}
	b.reg.mu.Lock()
	subs := b.reg.routes.Lookup(topic, nil)
	b.reg.mu.Unlock()
	out := make([]SubscriberInfo, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.info())
	}
	return out
}
