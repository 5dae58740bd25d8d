package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/monitor"
	"github.com/choiros/eventbus/sqlitestore"
	"github.com/choiros/eventbus/wsbridge"
)

//go:embed static
var staticFiles embed.FS

// app is one running dashboard: the bus, its HTTP server and the WebSocket
// connections it serves.
type app struct {
	bus       *eventbus.Bus
	ws        http.Handler
	monitor   http.Handler // the Subscribers view, under /monitor/
	metrics   http.Handler // /metrics, the bus's OpenTelemetry metrics for Prometheus
	addr      string
	storeName string
	demo      bool
	hosts     hostCheck

	wsConns sync.WaitGroup // running wsbridge connections

	mu        sync.Mutex
	offline   bool               // refuse WebSocket connections (tests)
	gen       context.Context    // ends the current WebSocket connections
	cancelGen context.CancelFunc // ends gen
}

// run serves the dashboard on cfg.addr until ctx ends, then shuts down in
// order: demo workers, HTTP server, bus (which closes every WebSocket with
// "going away"), store.
func run(ctx context.Context, cfg config) error {
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	busOpts := []eventbus.Option{eventbus.WithLogger(cfg.logger)}
	storeName := "memory (newest 10,000 events)"
	var store *sqlitestore.Store
	if cfg.db != "" {
		s, err := sqlitestore.Open(cfg.db, sqlitestore.WithMaxEvents(cfg.keep), sqlitestore.WithLogger(cfg.logger))
		if err != nil {
			return err
		}
		store = s
		busOpts = append(busOpts, eventbus.WithStore(s))
		storeName = fmt.Sprintf("sqlite %s (newest %d events)", cfg.db, cfg.keep)
	}
	bus, err := eventbus.New(busOpts...)
	if err != nil {
		if store != nil {
			_ = store.Close()
		}
		return err
	}
	// A browser that falls behind catches up from the store instead of
	// losing events.
	ws, err := wsbridge.New(bus, wsbridge.WithOverflow(eventbus.CatchUp), wsbridge.WithBuffer(1024),
		wsbridge.WithLogger(cfg.logger))
	if err != nil {
		_ = bus.Close()
		return err
	}
	metrics, err := newMetrics(bus)
	if err != nil {
		_ = bus.Close()
		if store != nil {
			_ = store.Close()
		}
		return err
	}
	defer metrics.close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		_ = bus.Close()
		if store != nil {
			_ = store.Close()
		}
		return err
	}
	a := &app{bus: bus, ws: ws, addr: ln.Addr().String(), storeName: storeName, demo: cfg.demo,
		monitor: http.StripPrefix("/monitor", monitor.Handler(bus)), metrics: metrics.handler}
	a.hosts = newHostCheck(a.addr, cfg.allowHosts)
	a.gen, a.cancelGen = context.WithCancel(context.Background())

	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	demoCtx, stopDemo := context.WithCancel(ctx)
	var demo sync.WaitGroup
	if cfg.demo {
		startDemo(demoCtx, &demo, bus, cfg.speed)
	}
	if cfg.ready != nil {
		cfg.ready(a)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	stopDemo()
	demo.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{serveErr, srv.Shutdown(shutCtx), bus.Shutdown(shutCtx)}
	a.wsConns.Wait()
	a.cancelGen()
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if store != nil {
		errs = append(errs, store.Close())
	}
	return errors.Join(errs...)
}

func (a *app) routes() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /ws", a.serveWS)
	mux.HandleFunc("GET /api/events", a.serveEvents)
	mux.HandleFunc("GET /api/info", a.serveInfo)
	mux.HandleFunc("GET /monitor/", a.serveMonitor)
	mux.Handle("GET /metrics", a.metrics)
	mux.Handle("GET /monitor", http.RedirectHandler("/monitor/", http.StatusMovedPermanently))
	return securityHeaders(a.hosts.wrap(mux))
}

// securityHeaders allows the page nothing from elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// serveWS hands the connection to wsbridge, with a request context that
// setOffline can end.
func (a *app) serveWS(w http.ResponseWriter, r *http.Request) {
	a.serveTracked(w, r, a.ws, true)
}

// serveMonitor serves the Subscribers view (package monitor). Its
// WebSocket feed is counted in wsConns and ends with the connections'
// generation, like the event stream's; it also ends within a second of
// the bus shutting down.
func (a *app) serveMonitor(w http.ResponseWriter, r *http.Request) {
	a.serveTracked(w, r, a.monitor, false)
}

// serveTracked serves r with h as one of the connections counted in
// wsConns, ending it with the current generation; refuseOffline says to
// answer 503 while the dashboard is offline.
func (a *app) serveTracked(w http.ResponseWriter, r *http.Request, h http.Handler, refuseOffline bool) {
	a.mu.Lock()
	if refuseOffline && a.offline {
		a.mu.Unlock()
		http.Error(w, "dashboard: offline", http.StatusServiceUnavailable)
		return
	}
	gen := a.gen
	a.wsConns.Add(1)
	a.mu.Unlock()
	defer a.wsConns.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(gen, cancel)
	defer stop()
	h.ServeHTTP(w, r.WithContext(ctx))
}

// setOffline(true) closes every WebSocket connection ("going away") and
// refuses new ones until setOffline(false). Tests use it to make the page
// reconnect.
func (a *app) setOffline(off bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.offline = off
	if off {
		a.cancelGen()
		a.gen, a.cancelGen = context.WithCancel(context.Background())
	}
}

// historyLimit bounds /api/events.
const (
	defaultHistory = 200
	maxHistory     = 1000
)

// serveEvents answers /api/events?pattern=…&limit=… with the newest
// matching stored events, oldest first, and the bus's epoch and last Seq:
// {"events":[…],"epoch":"…","last_seq":N}. Every stored event matching the
// pattern with Seq up to last_seq is in the answer or older than all of it,
// so a page that loaded it resumes the stream with from=last_seq+1.
func (a *app) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultHistory
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxHistory {
			http.Error(w, fmt.Sprintf("dashboard: limit must be 1..%d", maxHistory), http.StatusBadRequest)
			return
		}
		limit = n
	}
	pattern := q.Get("pattern")
	if pattern == "" {
		pattern = "*"
	}
	// What the bus accepted up to last is in the store once Flush returns.
	epoch, last := a.bus.Epoch(), a.bus.LastSeq()
	if err := a.bus.Flush(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	events, err := a.bus.Query(r.Context(), eventbus.Query{Pattern: pattern, Limit: limit, Newest: true})
	switch {
	case errors.Is(err, eventbus.ErrInvalidQuery), errors.Is(err, eventbus.ErrInvalidPattern):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, eventbus.ErrNoStore):
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if events == nil {
		events = []eventbus.Event{}
	}
	writeJSON(w, map[string]any{"events": events, "epoch": epoch, "last_seq": last})
}

// serveInfo describes the server for the page's header.
func (a *app) serveInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"store": a.storeName, "demo": a.demo})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
