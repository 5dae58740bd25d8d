package sqlitestore

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/choiros/eventbus"
)

// Option configures Open. Options with values out of range make Open return
// an error wrapping eventbus.ErrInvalidOption. A nil Option is skipped.
type Option interface{ apply(*config) error }

// Defaults.
const (
	DefaultPruneInterval = time.Second     // how often retention runs
	DefaultBusyTimeout   = 5 * time.Second // how long a write waits for another writer's lock
)

type config struct {
	maxEvents     int
	maxAge        time.Duration
	pruneInterval time.Duration
	busyTimeout   time.Duration
	readOnly      bool
	fullSync      bool
	logger        *slog.Logger
	afterPrune    func() // testing: called after every retention pass
}

func defaultConfig() config {
	return config{
		pruneInterval: DefaultPruneInterval,
		busyTimeout:   DefaultBusyTimeout,
		logger:        slog.Default(),
	}
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

func invalidOption(name string, value any, why string) error {
	return fmt.Errorf("sqlitestore: %w: %s(%v): %s", eventbus.ErrInvalidOption, name, value, why)
}

// WithMaxEvents keeps at most the newest n events; older ones are deleted
// by the background pruner, so the store may hold more for up to one prune
// interval. 0 means no count limit; a negative n is an error. Default: 0.
func WithMaxEvents(n int) Option {
	return option(func(c *config) error {
		if n < 0 {
			return invalidOption("WithMaxEvents", n, "must be 0 (no limit) or more")
		}
		c.maxEvents = n
		return nil
	})
}

// WithMaxAge deletes events whose Timestamp is more than d in the past. The
// background pruner deletes them, and Query never returns them, even before
// they are deleted. 0 means no age limit; a negative d is an error.
// Default: 0.
func WithMaxAge(d time.Duration) Option {
	return option(func(c *config) error {
		if d < 0 {
			return invalidOption("WithMaxAge", d, "must be 0 (no limit) or more")
		}
		c.maxAge = d
		return nil
	})
}

// WithPruneInterval sets how often the background pruner applies
// WithMaxEvents and WithMaxAge; it must be positive. It has no effect
// without one of them. Default: 1s.
func WithPruneInterval(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return invalidOption("WithPruneInterval", d, "must be positive")
		}
		c.pruneInterval = d
		return nil
	})
}

// WithBusyTimeout sets how long a write waits for the lock held by another
// connection to the same file (another process, or the sqlite3 shell)
// before failing with SQLITE_BUSY; it must not be negative. Default: 5s.
func WithBusyTimeout(d time.Duration) Option {
	return option(func(c *config) error {
		if d < 0 {
			return invalidOption("WithBusyTimeout", d, "must not be negative")
		}
		c.busyTimeout = d
		return nil
	})
}

// WithReadOnly opens the file read-only (SQLite's mode=ro): Query and
// LastSeq work, Append returns an error wrapping ErrReadOnly, nothing is
// pruned, and the file must already hold a store. Use it to read the file
// of a bus running in another process. Default: read-write, unless the file
// has no write permission bits (see Open).
func WithReadOnly() Option {
	return option(func(c *config) error {
		c.readOnly = true
		return nil
	})
}

// WithFullSync makes every Append wait until its transaction is on stable
// storage (PRAGMA synchronous=FULL), so acknowledged events survive power
// loss and operating-system crashes too, at the cost of an fsync per
// Append. Default: synchronous=NORMAL, which keeps acknowledged events
// through a crash or kill of the process but may lose the last transactions
// on power loss; see the package documentation.
func WithFullSync() Option {
	return option(func(c *config) error {
		c.fullSync = true
		return nil
	})
}

// WithLogger sets the logger for errors that have no caller to return to:
// failures of the background pruner, logged once when they start and once
// when pruning works again. nil discards them. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	})
}
