package wsbridge

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/choiros/eventbus"
)

// Defaults.
const (
	// DefaultReadLimit is the largest client message, in bytes.
	DefaultReadLimit = 32 << 10
	// DefaultMaxPatterns is how many patterns one connection may hold.
	DefaultMaxPatterns = 16
	// DefaultPingInterval is how often a connection is pinged.
	DefaultPingInterval = 20 * time.Second
	// DefaultWriteTimeout bounds one write to a client.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultOverflow is what a connection does when its client falls behind.
	DefaultOverflow = eventbus.Disconnect
)

// dropNoticeInterval is how often a connection looks for newly dropped
// events to report in a "dropped" notice.
const dropNoticeInterval = 250 * time.Millisecond

// Option configures New and Handler. Options with values out of range make
// New return an error wrapping ErrInvalidOption (Handler panics with it).
// A nil Option is skipped.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is everything the options set; defaultConfig builds the defaults.
type config struct {
	auth         func(*http.Request) (string, error)
	origins      []string
	readLimit    int64
	maxPatterns  int
	maxConns     int
	buffer       int // 0: the bus's default
	pingInterval time.Duration
	writeTimeout time.Duration
	overflow     eventbus.Overflow
	publish      map[eventbus.EventType]bool // nil: publishing disabled
	trustSource  bool                        // keep the source a client sets
	logger       *slog.Logger
}

func defaultConfig() config {
	return config{
		readLimit:    DefaultReadLimit,
		maxPatterns:  DefaultMaxPatterns,
		pingInterval: DefaultPingInterval,
		writeTimeout: DefaultWriteTimeout,
		overflow:     DefaultOverflow,
		logger:       slog.Default(),
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithAuth sets a function that authenticates each connection request
// before the upgrade. An error makes the handler answer HTTP 401 (the
// error's text is not sent). The principal it returns is attached to the
// subscription and to client publishes with eventbus.WithPrincipal, so the
// bus's Authorizer decides on every pattern and topic. Default: none (every
// request is accepted, with the principal "").
func WithAuth(f func(r *http.Request) (principal string, err error)) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return invalid("WithAuth(nil)")
		}
		c.auth = f
		return nil
	})
}

// WithOriginPatterns lists the host patterns (path.Match syntax, matched
// case-insensitively against the Origin's host, or against "scheme://host"
// when the pattern holds "://") whose pages may connect from another
// origin; they are passed to websocket.AcceptOptions.OriginPatterns.
// A request from another origin is refused with HTTP 403. Requests without
// an Origin header (non-browser clients) are always accepted. Default: none,
// so only pages served from the handler's own host may connect.
func WithOriginPatterns(patterns ...string) Option {
	return optionFunc(func(c *config) error {
		for _, p := range patterns {
			if _, err := path.Match(p, ""); err != nil {
				return invalid("WithOriginPatterns(%q): %v", p, err)
			}
		}
		c.origins = append([]string(nil), patterns...)
		return nil
	})
}

// WithReadLimit sets the largest client message in bytes, at least 64.
// A larger message closes the connection with websocket.StatusMessageTooBig.
// Default: 32 KiB.
func WithReadLimit(n int64) Option {
	return optionFunc(func(c *config) error {
		if n < 64 {
			return invalid("WithReadLimit(%d): must be at least 64", n)
		}
		c.readLimit = n
		return nil
	})
}

// WithMaxPatterns sets how many patterns one connection may hold, counting
// those in the URL, at least 1. Default: 16.
func WithMaxPatterns(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return invalid("WithMaxPatterns(%d): must be at least 1", n)
		}
		c.maxPatterns = n
		return nil
	})
}

// WithMaxConnections caps the connections one handler serves at once;
// requests beyond it are answered HTTP 503. 0 means no limit. Default: 0.
func WithMaxConnections(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 {
			return invalid("WithMaxConnections(%d): must not be negative", n)
		}
		c.maxConns = n
		return nil
	})
}

// WithBuffer sets the mailbox size of each connection's subscription, at
// least 1: how many events may wait for a slow client before the overflow
// policy acts. Default: the bus's WithBufferSize.
func WithBuffer(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return invalid("WithBuffer(%d): must be at least 1", n)
		}
		c.buffer = n
		return nil
	})
}

// WithPingInterval sets how often each connection is pinged; a client that
// does not answer within the interval is disconnected. 0 turns pings off.
// Default: 20s.
func WithPingInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return invalid("WithPingInterval(%v): must not be negative", d)
		}
		c.pingInterval = d
		return nil
	})
}

// WithWriteTimeout bounds one write to a client; a write that takes longer
// closes the connection. It must be positive. Default: 10s.
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return invalid("WithWriteTimeout(%v): must be positive", d)
		}
		c.writeTimeout = d
		return nil
	})
}

// WithOverflow sets what a connection does when its client falls behind
// and its mailbox is full:
//   - eventbus.Disconnect (the default) closes the socket with
//     websocket.StatusPolicyViolation and the reason "slow consumer";
//   - eventbus.CatchUp stops live delivery and refills the mailbox from the
//     bus's store, so the client misses nothing (it needs a store: on a bus
//     without one New fails);
//   - eventbus.DropOldest and eventbus.DropNewest drop events and tell the
//     client how many in "dropped" notices.
//
// eventbus.Block is refused: it would let one client stall the bus.
func WithOverflow(p eventbus.Overflow) Option {
	return optionFunc(func(c *config) error {
		switch p {
		case eventbus.Disconnect, eventbus.CatchUp, eventbus.DropOldest, eventbus.DropNewest:
			c.overflow = p
			return nil
		case eventbus.Block:
			return invalid("WithOverflow(%v): a client must never block the bus", p)
		}
		return invalid("WithOverflow(%d): unknown policy", int(p))
	})
}

// WithClientPublish lets clients publish events with {"op":"publish"} messages,
// of the given types, which must be eventbus.UserInput or
// eventbus.UserCommand; with no types, both. Each publish goes through the
// bus's Authorizer with the connection's principal. The event's Source is
// the connection's principal (from WithAuth; "" without it), whatever the
// client sent, unless WithTrustClientSource is given. Default: publishing
// is off.
func WithClientPublish(types ...eventbus.EventType) Option {
	return optionFunc(func(c *config) error {
		if len(types) == 0 {
			types = []eventbus.EventType{eventbus.UserInput, eventbus.UserCommand}
		}
		allowed := make(map[eventbus.EventType]bool, len(types))
		for _, t := range types {
			if t != eventbus.UserInput && t != eventbus.UserCommand {
				return invalid("WithClientPublish(%q): only %q and %q may come from clients", t, eventbus.UserInput, eventbus.UserCommand)
			}
			allowed[t] = true
		}
		c.publish = allowed
		return nil
	})
}

// WithTrustClientSource keeps the source a publishing client sets on its
// event; only an event without one gets the connection's principal. Give it
// only when every client may speak for any source (the principal is still
// what the bus's Authorizer decides on). Default: a client's event has the
// connection's principal as its Source, so that no client can claim to be
// another.
func WithTrustClientSource() Option {
	return optionFunc(func(c *config) error {
		c.trustSource = true
		return nil
	})
}

// WithLogger sets the logger for connection ends that a server operator
// may care about (slow consumers at Warn, others at Debug). nil discards
// them. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	})
}
