// Command dashboard serves a live view of an event bus in the browser: the
// event stream through wsbridge, a topic filter, counts per event type,
// events per second, and history from the store.
//
//	go run ./examples/dashboard                 # http://127.0.0.1:8080, demo events, in-memory store
//	go run ./examples/dashboard -db events.db   # persist to SQLite; history survives restarts
//	go run ./examples/dashboard -demo=false     # only what you publish yourself
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step, nothing fetched from elsewhere). It connects to /ws, loads
// history from /api/events?pattern=…&limit=…, and after a lost connection
// resumes from the last Seq it saw, so it misses nothing the store kept.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg := defaultConfig()
	flag.StringVar(&cfg.addr, "addr", cfg.addr, "listen address")
	flag.StringVar(&cfg.db, "db", cfg.db, "SQLite file to persist events to (default: keep the newest 10,000 in memory)")
	flag.IntVar(&cfg.keep, "keep", cfg.keep, "with -db, how many events the file keeps")
	flag.BoolVar(&cfg.demo, "demo", cfg.demo, "run demo workers that publish events")
	flag.Float64Var(&cfg.speed, "speed", cfg.speed, "demo speed factor (1 is about 15 events/s)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.ready = func(a *app) {
		cfg.logger.Info("dashboard: serving", "url", "http://"+a.addr, "store", a.storeName, "demo", cfg.demo)
	}
	if err := run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

// config is what run needs; main fills it from flags, tests directly.
type config struct {
	addr   string
	db     string
	keep   int
	demo   bool
	speed  float64
	logger *slog.Logger
	// ready, if set, is called once the server is listening.
	ready func(*app)
}

func defaultConfig() config {
	return config{
		addr:   "127.0.0.1:8080",
		keep:   100_000,
		demo:   true,
		speed:  1,
		logger: slog.Default(),
	}
}
