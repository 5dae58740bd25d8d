package monitor

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/choiros/eventbus"
)

//go:embed static
var static embed.FS

// ErrInvalidOption reports an option with a value outside its range.
var ErrInvalidOption = errors.New("monitor: invalid option")

// Option configures Handler.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	interval time.Duration
	slow     time.Duration
	origins  []string
}

// WithInterval sets how often the feed sends a snapshot, at least 10ms.
// Default: 1s.
func WithInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("%w: WithInterval(%v): must be at least 10ms", ErrInvalidOption, d)
		}
		c.interval = d
		return nil
	})
}

// WithSlowLatency sets the median delivery latency at which a
// subscription counts as slow. Default: 1s.
func WithSlowLatency(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithSlowLatency(%v): must be positive", ErrInvalidOption, d)
		}
		c.slow = d
		return nil
	})
}

// WithOriginPatterns lets pages from other origins open the WebSocket
// feed (patterns as in websocket.AcceptOptions.OriginPatterns). Default:
// none, so only pages from the handler's own host may.
func WithOriginPatterns(patterns ...string) Option {
	return optionFunc(func(c *config) error {
		c.origins = append(c.origins, patterns...)
		return nil
	})
}

// handler is what Handler returns.
type handler struct {
	bus    *eventbus.Bus
	cfg    config
	files  http.Handler
	sample *sampler
}

// Handler returns an http.Handler serving the monitor page, its snapshot
// and its feed for bus (see the package doc for the routes). Mount it
// under a prefix with http.StripPrefix. An invalid option makes every
// request fail with 500 and the error; use New to get it as an error.
func Handler(bus *eventbus.Bus, opts ...Option) http.Handler {
	h, err := New(bus, opts...)
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	return h
}

// New is Handler that reports an invalid option (ErrInvalidOption) or a
// nil bus as an error.
func New(bus *eventbus.Bus, opts ...Option) (http.Handler, error) {
	if bus == nil {
		return nil, fmt.Errorf("%w: nil bus", ErrInvalidOption)
	}
	cfg := config{interval: time.Second, slow: time.Second}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	return &handler{
		bus:    bus,
		cfg:    cfg,
		files:  http.FileServerFS(sub),
		sample: &sampler{bus: bus, slow: cfg.slow, fresh: cfg.interval / 2},
	}, nil
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "monitor: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch path := "/" + strings.TrimPrefix(r.URL.Path, "/"); path {
	case "/snapshot":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(h.sample.snapshot(time.Now()))
	case "/ws":
		h.serveWS(w, r)
	case "/", "/index.html", "/monitor.js", "/monitor.css":
		r2 := r.Clone(r.Context())
		r2.URL.Path = path
		if path == "/index.html" {
			r2.URL.Path = "/"
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.files.ServeHTTP(w, r2)
	default:
		http.NotFound(w, r)
	}
}

// serveWS sends a snapshot every interval until the client goes, the
// request's ctx ends or the bus shuts down.
func (h *handler) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.origins})
	if err != nil {
		return // Accept has written the HTTP error
	}
	ctx := ws.CloseRead(r.Context()) // the client sends nothing; this answers pings and close
	t := time.NewTicker(h.cfg.interval)
	defer t.Stop()
	for {
		if closed(ctx, h.bus) {
			ws.Close(websocket.StatusGoingAway, "bus shut down")
			return
		}
		b, err := json.Marshal(h.sample.snapshot(time.Now()))
		if err != nil {
			ws.Close(websocket.StatusInternalError, "encoding snapshot")
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = ws.Write(wctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			ws.CloseNow()
			return
		}
		select {
		case <-ctx.Done():
			ws.Close(websocket.StatusGoingAway, "")
			return
		case <-t.C:
		}
	}
}

// closed reports whether bus has shut down: Flush says ErrClosed at once
// then, and otherwise returns as soon as the loop has taken what waits.
func closed(ctx context.Context, bus *eventbus.Bus) bool {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return errors.Is(bus.Flush(fctx), eventbus.ErrClosed)
}

// sampler takes snapshots, at most one per fresh interval, and keeps the
// previous one to compute rates.
type sampler struct {
	bus   *eventbus.Bus
	slow  time.Duration
	fresh time.Duration

	mu   sync.Mutex
	last *Snapshot
	prev map[string]uint64 // delivered per subscription ID at last
	drop map[string]uint64 // dropped per subscription ID at last
}
