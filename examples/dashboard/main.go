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
	flag.Func("allow-host", "also answer requests for these `hosts` (comma-separated names or name:port; repeatable); "+
		"by default only the listen address, localhost, 127.0.0.1 and [::1] with its port", func(v string) error {
		hosts, err := parseAllowHosts(v)
		cfg.allowHosts = append(cfg.allowHosts, hosts...)
		return err
	})
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
	// allowHosts are the Host names (or name:port) answered besides the
	// listen address and its loopback names.
	allowHosts []string
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
