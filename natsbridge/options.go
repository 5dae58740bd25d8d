package natsbridge

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/choiros/eventbus"
)

// Defaults.
const (
	// DefaultPrefix is the subject prefix: events on topic T travel on
	// subject "eventbus.T".
	DefaultPrefix = "eventbus"
	// DefaultDedupeWindow is how many event IDs a bridge remembers for loop
	// prevention and de-duplication.
	DefaultDedupeWindow = 1 << 16
	// DefaultExportBuffer is the mailbox size of the export subscription.
	DefaultExportBuffer = 4096
	// DefaultBlockTimeout bounds how long the bus waits for room in the
	// export mailbox under the Block policy (buses without a store).
	DefaultBlockTimeout = time.Second
	// DefaultAckTimeout bounds the wait for a JetStream publish
	// acknowledgement and for the requests New makes.
	DefaultAckTimeout = 5 * time.Second
	// DefaultCloseTimeout is how long Close lets Shutdown drain.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultSummaryInterval is how often a bridge reports an ImportSummary
	// when messages failed to import.
	DefaultSummaryInterval = time.Minute
)

// Option configures a Bridge in New. Options with values out of range make
// New return an error wrapping ErrInvalidOption. A nil Option is skipped.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	prefix     string
	export     []string
	imports    []string
	stream     string
	durable    string
	queue      string
	dedupe     int
	exportOpts []eventbus.SubscribeOption
	errHandler func(error)
	logger     *slog.Logger
	ackTimeout time.Duration

	summaryEvery time.Duration
}

func defaultConfig() config {
	return config{
		prefix:     DefaultPrefix,
		dedupe:     DefaultDedupeWindow,
		logger:     slog.Default(),
		ackTimeout: DefaultAckTimeout,

		summaryEvery: DefaultSummaryInterval,
	}
}

func invalid(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}

// WithPrefix sets the first subject tokens: an event on topic T is published
// on "<prefix>.T". The prefix must be a valid topic (dot-separated, non-empty
// segments of printable non-space characters without wildcards) with no '>'.
// Buses bridge with each other only under the same prefix. Default: "eventbus".
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) error {
		if err := eventbus.ValidateTopic(prefix); err != nil || strings.Contains(prefix, ">") {
			return invalid(fmt.Sprintf("WithPrefix(%q)", prefix), "must be a topic without '>'")
		}
		c.prefix = prefix
		return nil
	})
}

// patternsOption validates patterns and adds them to the export list, the
// import list, or both.
func patternsOption(name string, patterns []string, export, imports bool) Option {
	patterns = append([]string(nil), patterns...)
	return optionFunc(func(c *config) error {
		if len(patterns) == 0 {
			return invalid(name+"()", "no patterns")
		}
		for _, p := range patterns {
			if err := eventbus.ValidatePattern(p); err != nil {
				return fmt.Errorf("%w: %s(%q): %w", ErrInvalidOption, name, p, err)
			}
			if export && !contains(c.export, p) {
				c.export = append(c.export, p)
			}
			if imports && !contains(c.imports, p) {
				c.imports = append(c.imports, p)
			}
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WithExport relays local events whose topics match any of patterns to NATS.
// It may be given more than once; the patterns add up. Default: none.
func WithExport(patterns ...string) Option {
	return patternsOption("WithExport", patterns, true, false)
}

// WithImport relays events published on NATS under the prefix whose topics
// match any of patterns into the local bus. It may be given more than once;
// the patterns add up. Default: none.
func WithImport(patterns ...string) Option {
	return patternsOption("WithImport", patterns, false, true)
}

// WithPatterns is WithExport and WithImport with the same patterns: the bus
// shares those topics with every bus bridged under the same prefix.
func WithPatterns(patterns ...string) Option {
	return patternsOption("WithPatterns", patterns, true, true)
}

// WithJetStream relays through the JetStream stream named stream instead of
// core NATS: exports are published into the stream (New creates it, or adds
// "<prefix>.>" to its subjects, if needed) and imports are read through the
// durable pull consumer named durable, so a bus that restarts with the same
// durable receives what was published while it was away. durable must be
// unique per bus: two bridges sharing one would split the events between them.
// It is also the bridge's origin (see Bridge.Origin). Both names must be
// non-empty without whitespace, '.', '*', '>', '/' or '\'. Default: core NATS.
func WithJetStream(stream, durable string) Option {
	return optionFunc(func(c *config) error {
		for _, n := range []string{stream, durable} {
			if n == "" || strings.ContainsAny(n, " \t\r\n.*>/\\") {
				return invalid(fmt.Sprintf("WithJetStream(%q, %q)", stream, durable), "invalid name %q", n)
			}
		}
		c.stream, c.durable = stream, durable
		return nil
	})
}

// WithQueueGroup makes the bridge's imports a member of the NATS queue
// group name: it subscribes to its import subjects with nats.go's
// QueueSubscribe, so the server gives each message on them to one
// subscriber of the queue group, and of the bridges in the group exactly
// one imports each event (the others never see it). Bridges without a
// queue group, or in another one, still import every event. A queue group
// thus spans the processes whose bridges are in it; inside each process
// the event then goes to the bus's subscriptions as any imported event
// does: every subscription without an eventbus.WithQueueGroup, and one
// member of each local queue group. See the package doc, Queue groups.
//
// Exports are unaffected. The bridges of a queue group should import the
// same patterns (a glob is filtered after the server has chosen the
// bridge, so a bridge whose patterns miss an event loses it for the
// group). It needs import patterns and core NATS: with WithJetStream,
// where a shared durable consumer would be the counterpart, New returns
// an error wrapping ErrInvalidOption. name is 1–256 bytes without
// whitespace. Default: none (every bridge imports every event).
func WithQueueGroup(name string) Option {
	return optionFunc(func(c *config) error {
		if name == "" || len(name) > 256 || strings.ContainsAny(name, " \t\r\n\f\v") {
			return invalid(fmt.Sprintf("WithQueueGroup(%q)", name), "must be 1-256 bytes without whitespace")
		}
		c.queue = name
		return nil
	})
}

// WithDedupeWindow sets how many event IDs the bridge remembers: the IDs of
// the events it exported and imported, by which it keeps imported events
// from being exported again and drops duplicates and echoes. It must exceed
// the number of events that cross the bridge while the exporter lags behind
// the bus (see the package doc, Loop prevention). Default: 65,536
// (about 3 MB).
func WithDedupeWindow(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1024 {
			return invalid(fmt.Sprintf("WithDedupeWindow(%d)", n), "must be at least 1024")
		}
		c.dedupe = n
		return nil
	})
}

// WithExportOptions adds options to the bus subscription that feeds the
// exporter, after the bridge's own, so they override them: for example
// eventbus.WithBuffer, eventbus.WithOverflow or eventbus.FromSeq. The
// bridge's defaults are a 4096-event mailbox and the CatchUp policy, or Block
// with a one-second eventbus.WithBlockTimeout when the bus has no store (see
// the package doc, Backpressure).
func WithExportOptions(opts ...eventbus.SubscribeOption) Option {
	o := append([]eventbus.SubscribeOption(nil), opts...)
	return optionFunc(func(c *config) error {
		c.exportOpts = append(c.exportOpts, o...)
		return nil
	})
}

// WithErrorHandler sets a function that receives the errors that have no
// caller to return to: failed exports (as *eventbus.EventError wrapping
// ErrExport or ErrNoSubject), failed imports (as *ImportError, inside an
// *eventbus.EventError when the event's ID is known), summaries of failed
// imports (*ImportSummary, see WithSummaryInterval) and JetStream consumer
// errors (wrapping ErrJetStream). Failures are reported once per episode,
// not one per event: an export failure after a success; for imports, the
// first failure of each kind (ImportErrorKind) after a success. Stats counts
// them all. It is called from the bridge's goroutines and those of
// nats.go, possibly concurrently, so it must be safe for concurrent use and
// should return quickly. Default: none (errors are only logged).
func WithErrorHandler(h func(error)) Option {
	return optionFunc(func(c *config) error {
		c.errHandler = h
		return nil
	})
}

// WithLogger sets the logger for the errors WithErrorHandler receives.
// nil discards them. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	})
}

// WithAckTimeout bounds the wait for each JetStream publish acknowledgement
// (a publish that is not acknowledged in time is retried) and for the
// requests New makes to set up subscriptions, the stream and the consumer.
// Default: 5s.
func WithAckTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return invalid(fmt.Sprintf("WithAckTimeout(%v)", d), "must be positive")
		}
		c.ackTimeout = d
		return nil
	})
}

// WithSummaryInterval sets how often the bridge reports an ImportSummary of
// the messages that failed to import in the interval (only when some did),
// to WithErrorHandler and the logger; Shutdown reports the rest. It
// complements the report of the first failure of each kind per episode,
// which says nothing of how many followed. 0 turns summaries off; it must
// not be negative. Default: one minute.
func WithSummaryInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return invalid(fmt.Sprintf("WithSummaryInterval(%v)", d), "must not be negative")
		}
		c.summaryEvery = d
		return nil
	})
}
