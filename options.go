package eventbus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Option configures a Bus in New. Options with values out of range make New
// return an error wrapping ErrInvalidOption. A nil Option is skipped.
type Option interface{ applyBus(*busConfig) error }

// SubscribeOption configures one subscription in Subscribe, Handle and
// HandleFunc. Options with values out of range make them return an error
// wrapping ErrInvalidOption. A nil SubscribeOption is skipped.
type SubscribeOption interface{ applySub(*subConfig) error }

// SharedOption is an option accepted both by New, where it sets the default
// for every subscription, and by Subscribe, where it sets it for one.
type SharedOption interface {
	Option
	SubscribeOption
}

// PublishOption configures one Publish or PublishAsync call.
type PublishOption interface{ applyPub(*pubConfig) }

// Defaults.
const (
	DefaultBufferSize   = 1000                 // subscriber mailbox
	DefaultQueueSize    = 4096                 // the bus's intake queue
	DefaultStallBudget  = 5 * time.Millisecond // see WithStallBudget
	DefaultStallTimeout = 10 * time.Second     // see WithStallTimeout
)

type busConfig struct {
	store          Store
	storeSet       bool
	persistDefault bool
	noPersist      []pattern
	sub            subConfig // defaults for subscriptions
	queueSize      int
	logger         *slog.Logger
	errorHandler   func(error)
	authorizer     Authorizer
	stallBudget    time.Duration
	stallTimeout   time.Duration
	middleware     []func(HandlerFunc) HandlerFunc
	publishHooks   []func(context.Context, *Event)
	noRouteCache   bool // testing
}

type subConfig struct {
	buffer       int
	overflow     Overflow
	blockTimeout time.Duration
	name         string
	replay       bool
	fromSeq      uint64
	since        time.Time
	more         []string // WithPatterns
	middleware   []func(HandlerFunc) HandlerFunc
	queueGroup   string
	retry        *Retry // WithRetry
	deadLetter   string // WithDeadLetter
	durable      string // Durable
}

type pubConfig struct {
	noPersist bool
}

func defaultBusConfig() busConfig {
	return busConfig{
		persistDefault: true,
		sub:            subConfig{buffer: DefaultBufferSize, overflow: DropOldest},
		queueSize:      DefaultQueueSize,
		stallBudget:    DefaultStallBudget,
		stallTimeout:   DefaultStallTimeout,
		logger:         slog.Default(),
	}
}

type busOption func(*busConfig) error

func (f busOption) applyBus(c *busConfig) error { return f(c) }

type subOption func(*subConfig) error

func (f subOption) applySub(c *subConfig) error { return f(c) }

type pubOption func(*pubConfig)

func (f pubOption) applyPub(c *pubConfig) { f(c) }

// sharedOption applies the same setting to a subConfig, either the bus
// defaults (in New) or one subscription's (in Subscribe).
type sharedOption func(*subConfig) error

func (f sharedOption) applyBus(c *busConfig) error { return f(&c.sub) }
func (f sharedOption) applySub(c *subConfig) error { return f(c) }

func invalidOption(name string, value any, why string) error {
	return fmt.Errorf("%w: %s(%v): %s", ErrInvalidOption, name, value, why)
}

// WithStore sets the store that events are persisted to and replayed from.
// WithStore(nil) turns persistence off (then Query, FromSeq, Since and
// CatchUp return ErrNoStore). A store given here belongs to the caller: the
// bus does not close it. Default: a MemoryStore keeping the newest 10,000
// events, which the bus closes at Shutdown.
func WithStore(s Store) Option {
	return busOption(func(c *busConfig) error {
		c.store, c.storeSet = s, true
		return nil
	})
}

// WithPersistDefault sets whether events are persisted unless published
// WithoutPersist. Default: true.
func WithPersistDefault(persist bool) Option {
	return busOption(func(c *busConfig) error {
		c.persistDefault = persist
		return nil
	})
}

// WithNoPersistTopics names topic patterns whose events are never
// persisted, such as chat typing indicators or heartbeats. Default: none.
func WithNoPersistTopics(patterns ...string) Option {
	return busOption(func(c *busConfig) error {
		for _, p := range patterns {
			if err := ValidatePattern(p); err != nil {
				return nest(ErrInvalidOption, "WithNoPersistTopics", err)
			}
			c.noPersist = append(c.noPersist, classify(p))
		}
		return nil
	})
}

// WithBufferSize sets the default mailbox size of subscriptions, at least
// 1. Default: 1000.
func WithBufferSize(n int) Option {
	return busOption(func(c *busConfig) error {
		if n < 1 {
			return invalidOption("WithBufferSize", n, "must be at least 1")
		}
		c.sub.buffer = n
		return nil
	})
}

// WithQueueSize sets how many events the intake (the bus's queue) holds
// before Publish and PublishAsync wait for room, at least 1. Default: 4096.
func WithQueueSize(n int) Option {
	return busOption(func(c *busConfig) error {
		if n < 1 {
			return invalidOption("WithQueueSize", n, "must be at least 1")
		}
		c.queueSize = n
		return nil
	})
}

// WithLogger sets the logger for errors that have no caller to return to.
// nil discards them. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return busOption(func(c *busConfig) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	})
}

// WithErrorHandler sets a function that receives every error with no caller
// to return to: handler errors and panics, undecodable payloads in
// HandleFunc, failed persistence of async events, slow consumers. It is
// called from one goroutine owned by the bus, one call at a time, never on
// the bus loop; a slow handler delays only later reports. Default: none
// (errors are only logged).
func WithErrorHandler(h func(error)) Option {
	return busOption(func(c *busConfig) error {
		c.errorHandler = h
		return nil
	})
}

// WithAuthorizer sets the Authorizer consulted for every publish and every
// subscribed pattern. Default: none (everything is allowed).
func WithAuthorizer(a Authorizer) Option {
	return busOption(func(c *busConfig) error {
		c.authorizer = a
		return nil
	})
}

// WithOverflow sets what happens when a subscription's mailbox is full. In
// New it sets the default for every subscription; in Subscribe it sets it for
// one. CatchUp needs a store. Default: DropOldest.
func WithOverflow(p Overflow) SharedOption {
	return sharedOption(func(c *subConfig) error {
		if !p.valid() {
			return invalidOption("WithOverflow", int(p), "unknown policy")
		}
		c.overflow = p
		return nil
	})
}

// WithBlockTimeout bounds how long the bus waits for room in a full
// mailbox under the Block policy before it drops the event and counts it; 0
// means no limit. Like WithOverflow it is accepted by New and Subscribe.
// Default: 0.
func WithBlockTimeout(d time.Duration) SharedOption {
	return sharedOption(func(c *subConfig) error {
		if d < 0 {
			return invalidOption("WithBlockTimeout", d, "must not be negative")
		}
		c.blockTimeout = d
		return nil
	})
}

// WithBuffer sets the size of this subscription's mailbox, at least 1.
// Default: the bus's WithBufferSize.
func WithBuffer(n int) SubscribeOption {
	return subOption(func(c *subConfig) error {
		if n < 1 {
			return invalidOption("WithBuffer", n, "must be at least 1")
		}
		c.buffer = n
		return nil
	})
}

// WithName names the subscription in Stats, Subscribers and logs.
// Default: none.
func WithName(name string) SubscribeOption {
	return subOption(func(c *subConfig) error {
		c.name = name
		return nil
	})
}

// FromSeq makes the subscription first replay the stored events with Seq
// at or above seq that match its patterns, then continue with live events,
// with no gap and no duplicate between the two. It needs a store.
func FromSeq(seq uint64) SubscribeOption {
	return subOption(func(c *subConfig) error {
		c.replay, c.fromSeq, c.since = true, seq, time.Time{}
		return nil
	})
}

// Since is FromSeq by time: it replays the stored events with Timestamp at
// or after t, then continues live. Until the subscription has caught up,
// events stamped before t are skipped, live ones included (an event's
// Timestamp may be set by its publisher). It needs a store.
func Since(t time.Time) SubscribeOption {
	return subOption(func(c *subConfig) error {
		if t.IsZero() {
			return invalidOption("Since", t, "zero time")
		}
		c.replay, c.fromSeq, c.since = true, 0, t
		return nil
	})
}

// WithPatterns subscribes to more patterns beside the one given to
// Subscribe or Handle, from the start: an event matching any of them is
// delivered once, and FromSeq or Since replay all of them. Each is checked
// like the first (ErrInvalidPattern, and the Authorizer). Default: none.
func WithPatterns(patterns ...string) SubscribeOption {
	return subOption(func(c *subConfig) error {
		for _, p := range patterns {
			if err := ValidatePattern(p); err != nil {
				return err
			}
		}
		c.more = append(c.more, patterns...)
		return nil
	})
}

// WithoutPersist publishes the event without storing it, whatever the
// bus's persistence settings.
func WithoutPersist() PublishOption {
	return pubOption(func(c *pubConfig) { c.noPersist = true })
}

// withoutRouteCache routes every event through the route table without the
// per-topic cache. Tests use it to check that both paths agree.
func withoutRouteCache() Option {
	return busOption(func(c *busConfig) error {
		c.noRouteCache = true
		return nil
	})
}

// WithStallBudget sets how long, per slow episode, publishing waits for a
// subscription whose mailbox is full before its overflow policy applies
// (pacing; see the package doc): a subscriber that keeps up makes room
// within it and loses nothing, one that does not is then slow, and is not
// waited for again until its mailbox has drained to half its bound. Block
// subscriptions wait by their own rule (WithBlockTimeout). 0 turns pacing
// off: policies apply as soon as a mailbox is full. Default: 5ms.
func WithStallBudget(d time.Duration) Option {
	return busOption(func(c *busConfig) error {
		if d < 0 {
			return invalidOption("WithStallBudget", d, "must not be negative")
		}
		c.stallBudget = d
		return nil
	})
}

// WithStallTimeout sets how long a handler may run on one event before it
// is reported to the error handler as stalled (a *StallError, once per
// stall, and again with Recovered set when the call returns); 0 turns the
// watch off. One goroutine per bus looks every quarter of d (at most every
// second), so a stall is reported between d and d plus that tick. Stats
// shows it as SubscriptionStats.StalledFor. Default: 10s.
func WithStallTimeout(d time.Duration) Option {
	return busOption(func(c *busConfig) error {
		if d < 0 {
			return invalidOption("WithStallTimeout", d, "must not be negative")
		}
		c.stallTimeout = d
		return nil
	})
}

// WithPublishHook adds a function that runs on the publisher's goroutine
// at the start of every Publish and PublishAsync (Publisher.Emit
// included), before the event is validated. It gets a copy of the
// caller's event whose Metadata map is its own to change (to add trace
// context, say; it is nil when the event has no metadata, and the hook
// may set a new map); what it leaves is what is published, and the
// caller's event and map are not changed. Hooks run in the
// order given and must not block. A nil hook is skipped. Without hooks a
// publish pays nothing for them. Default: none.
func WithPublishHook(h func(ctx context.Context, e *Event)) Option {
	return busOption(func(c *busConfig) error {
		if h != nil {
			c.publishHooks = append(c.publishHooks, h)
		}
		return nil
	})
}

// middlewareOption is WithMiddleware: for the bus in New, for one
// subscription in Handle and HandleFunc.
type middlewareOption []func(HandlerFunc) HandlerFunc

func (m middlewareOption) applyBus(c *busConfig) error {
	c.middleware = append(c.middleware, m...)
	return nil
}

func (m middlewareOption) applySub(c *subConfig) error {
	// Never append to the slice of another config (the bus's defaults).
	c.middleware = append(slices.Clip(c.middleware), m...)
	return nil
}

// WithMiddleware wraps every call of a handler: mw(next) returns the
// HandlerFunc called instead of next. In New it applies to every Handle
// and HandleFunc subscription; in Handle or HandleFunc to that one. The
// bus's middleware is outermost, then the subscription's, each in the
// order given, so the first wraps all the others. A panic in middleware
// is recovered like one in the handler. It has no effect on Subscribe
// (there is no handler to wrap). nil entries are skipped. Default: none.
func WithMiddleware(mw ...func(HandlerFunc) HandlerFunc) SharedOption {
	return middlewareOption(slices.DeleteFunc(slices.Clone(mw), func(f func(HandlerFunc) HandlerFunc) bool { return f == nil }))
}
