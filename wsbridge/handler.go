package wsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/choiros/eventbus"
)

// handler is the http.Handler New returns.
type handler struct {
	bus    *eventbus.Bus
	cfg    config
	conns  atomic.Int64
	frames frameCache
}

// New returns an http.Handler that upgrades each request to a WebSocket and
// streams the bus's events to it, as the package documentation describes.
// The handler is safe for concurrent use; each ServeHTTP call serves one
// connection and returns only when the connection has ended and its
// subscription and goroutines are gone.
//
// Errors wrap ErrInvalidOption: a nil bus, an option value out of range,
// or eventbus.CatchUp on a bus without a store.
func New(bus *eventbus.Bus, opts ...Option) (http.Handler, error) {
	if bus == nil {
		return nil, invalid("nil bus")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.overflow == eventbus.CatchUp {
		if _, err := bus.Query(context.Background(), eventbus.Query{Limit: 1}); errors.Is(err, eventbus.ErrNoStore) {
			return nil, invalid("WithOverflow(%v): %v", cfg.overflow, err)
		}
	}
	return &handler{bus: bus, cfg: cfg}, nil
}

// Handler returns the WebSocket handler for bus. It never panics: if an
// option is invalid it logs the error once (to slog.Default) and returns a
// handler that answers every request with 500 and that error. Use New to get
// the error at construction instead.
func Handler(bus *eventbus.Bus, opts ...Option) http.Handler {
	h, err := New(bus, opts...)
	if err != nil {
		slog.Default().Error("wsbridge: handler not started", slog.Any("err", err))
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	return h
}

// ServeHTTP serves one connection: it checks the request (connection limit,
// WithAuth, the pattern and from parameters), subscribes, upgrades, and then
// streams until the connection ends. Refusals before the upgrade are plain
// HTTP errors: 503 beyond WithMaxConnections or after the bus shut down,
// 401 when WithAuth fails, 400 for a bad parameter, 403 when the bus's
// Authorizer denies a pattern, 403 from the origin check.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.conns.Add(1)
	defer h.conns.Add(-1)
	if h.cfg.maxConns > 0 && n > int64(h.cfg.maxConns) {
		http.Error(w, "wsbridge: too many connections", http.StatusServiceUnavailable)
		return
	}
	var principal string
	if h.cfg.auth != nil {
		p, err := h.cfg.auth(r)
		if err != nil {
			http.Error(w, "wsbridge: unauthorized", http.StatusUnauthorized)
			return
		}
		principal = p
	}
	patterns, from, epoch, err := h.parseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	st := h.start(from, epoch)
	// The subscription lives as long as the connection, not the request
	// context: the connection closes it.
	subCtx := eventbus.WithPrincipal(context.WithoutCancel(r.Context()), principal)
	sub, err := h.subscribe(subCtx, r, patterns, st.from)
	if err != nil {
		http.Error(w, "wsbridge: subscribe: "+err.Error(), statusOf(err))
		return
	}
	if st.from != nil && !st.reset {
		st.notStored = h.notStored(r.Context(), *st.from, st.lastSeq)
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.origins})
	if err != nil {
		// Accept has written the HTTP error.
		_ = sub.Close()
		return
	}
	ws.SetReadLimit(h.cfg.readLimit)
	newConn(h, ws, sub, principal, patterns, st, r).serve()
}

// parseQuery reads the pattern, from and epoch parameters.
func (h *handler) parseQuery(q url.Values) (patterns []string, from *uint64, epoch *string, err error) {
	seen := make(map[string]bool)
	for _, p := range q["pattern"] {
		if seen[p] {
			continue
		}
		if err := eventbus.ValidatePattern(p); err != nil {
			return nil, nil, nil, fmt.Errorf("wsbridge: pattern: %w", err)
		}
		seen[p] = true
		patterns = append(patterns, p)
	}
	if len(patterns) > h.cfg.maxPatterns {
		return nil, nil, nil, fmt.Errorf("%w: %d patterns, at most %d", ErrTooManyPatterns, len(patterns), h.cfg.maxPatterns)
	}
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	if q.Has("from") {
		n, err := strconv.ParseUint(q.Get("from"), 10, 64)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wsbridge: from %q: not a sequence number", q.Get("from"))
		}
		from = &n
	}
	if q.Has("epoch") {
		e := q.Get("epoch")
		if len(e) > maxEpochLen {
			return nil, nil, nil, fmt.Errorf("wsbridge: epoch: longer than %d bytes", maxEpochLen)
		}
		epoch = &e
	}
	return patterns, from, epoch, nil
}

// maxEpochLen bounds the epoch parameter; epochs the bus makes are ULIDs
// (26 bytes).
const maxEpochLen = 128

// position is where a connection starts in the bus's Seqs.
type position struct {
	epoch     string  // the bus's epoch
	lastSeq   uint64  // the bus's last Seq before the subscription
	from      *uint64 // replay from this Seq; nil: live only
	reset     bool    // the client's from was of another epoch or beyond lastSeq+1
	notStored uint64  // Seqs from from on that the store no longer holds
}

// start decides where a connection starts. A from of another epoch, or
// beyond the next Seq, is replaced by the next Seq (a reset). LastSeq is
// read before the subscription is made, and a client's from can only come
// from Seqs the bus had assigned before the request, so a from beyond
// lastSeq+1 is never a race with a concurrent publish.
func (h *handler) start(from *uint64, epoch *string) position {
	st := position{epoch: h.bus.Epoch(), lastSeq: h.bus.LastSeq(), from: from}
	if from != nil && ((epoch != nil && *epoch != st.epoch) || *from > st.lastSeq+1) {
		next := st.lastSeq + 1
		st.from, st.reset = &next, true
	}
	return st
}

// notStored counts the Seqs from from up to lastSeq that a replay cannot
// deliver because the store no longer holds them: those below the oldest
// stored event, or all of them when the store holds none. It counts Seqs of
// every topic, so it is an upper bound of what the connection's patterns
// missed. It is read just after the subscription is made: an event that the
// store's retention evicts while the replay is starting may escape the count
// (a window of microseconds, under heavy eviction only).
func (h *handler) notStored(ctx context.Context, from, lastSeq uint64) uint64 {
	from = max(from, 1)
	if from > lastSeq {
		return 0
	}
	oldest, err := h.bus.Query(ctx, eventbus.Query{Limit: 1})
	if err != nil {
		return 0 // the replay reports its own errors
	}
	if len(oldest) == 0 || oldest[0].Seq > lastSeq {
		return lastSeq - from + 1
	}
	if oldest[0].Seq > from {
		return oldest[0].Seq - from
	}
	return 0
}

// subscribe makes the connection's subscription.
func (h *handler) subscribe(ctx context.Context, r *http.Request, patterns []string, from *uint64) (*eventbus.Subscription, error) {
	opts := []eventbus.SubscribeOption{
		eventbus.WithOverflow(h.cfg.overflow),
		eventbus.WithName("wsbridge " + r.RemoteAddr),
	}
	if h.cfg.buffer > 0 {
		opts = append(opts, eventbus.WithBuffer(h.cfg.buffer))
	}
	if from != nil {
		opts = append(opts, eventbus.FromSeq(*from))
	}
	// All patterns from the start, so a replay covers every one of them.
	opts = append(opts, eventbus.WithPatterns(patterns[1:]...))
	return h.bus.Subscribe(ctx, patterns[0], opts...)
}

// statusOf is the HTTP status for a failed subscribe.
func statusOf(err error) int {
	switch {
	case errors.Is(err, eventbus.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, eventbus.ErrInvalidPattern), errors.Is(err, eventbus.ErrNoStore):
		return http.StatusBadRequest
	case errors.Is(err, eventbus.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
