package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/choiros/eventbus"
)

// config is one load run, as the flags describe it.
type config struct {
	Rate        int                 // events/s; 0: as fast as possible
	Subs        int                 // subscribers
	Patterns    []string            // given to subscribers round-robin
	Topics      int                 // distinct topics, published round-robin
	Prefix      string              // topics are Prefix.0, Prefix.1, …
	Duration    time.Duration       // how long to publish
	Payload     int                 // payload bytes
	Buffer      int                 // subscriber mailbox size
	Store       string              // none, memory or sqlite:PATH
	Overflow    []eventbus.Overflow // given to subscribers round-robin
	Async       bool                // PublishAsync instead of Publish
	Progress    time.Duration       // interval of progress lines; 0: none
	HeapAt      time.Duration       // when to take the early heap sample
	DrainWithin time.Duration       // how long shutdown may take after publishing
	Baseline    bool                // then run the same load through plain channels

	// The other modes (see doc.go): scale, firehose and sleeper.
	Mode  string // load (the default), scale, firehose or sleeper
	Churn int    // scale: churn pairs per second while measuring; churnMax: as fast as possible
	// ChurnBy is what a churn pair is: churnSubscribe (Subscribe and
	// Close of a subscription) or churnPattern (Add and Remove of a
	// pattern on one subscription).
	ChurnBy string
	Events  int           // scale: publishes per measurement; firehose, sleeper: events published
	Sleep   time.Duration // sleeper: how long the sleeper sleeps per event
	// Set holds the flags given on the command line, so that a mode can
	// keep the bus's own defaults for the others (-buffer, -store,
	// -overflow, -subs).
	Set map[string]bool
}

// churnMax is Churn for "-churn max".
const churnMax = -1

// The values of -churn-by.
const (
	churnSubscribe = "subscription"
	churnPattern   = "pattern"
)

// modes lists the values of -mode.
var modes = []string{"load", "scale", "firehose", "sleeper"}

// defaultConfig returns the configuration the flags start from.
func defaultConfig() config {
	return config{
		Rate:        10000,
		Subs:        100,
		Patterns:    []string{"load.*"},
		Topics:      1,
		Prefix:      "load",
		Duration:    10 * time.Second,
		Payload:     100,
		Buffer:      1024,
		Store:       "none",
		Overflow:    []eventbus.Overflow{eventbus.DropOldest},
		Progress:    time.Second,
		HeapAt:      10 * time.Second,
		DrainWithin: 30 * time.Second,
		Mode:        "load",
		ChurnBy:     churnSubscribe,
		Sleep:       time.Millisecond,
		Set:         map[string]bool{},
	}
}

// overflows maps the flag spellings to policies (they match Overflow.String).
var overflows = map[string]eventbus.Overflow{
	"drop-oldest": eventbus.DropOldest,
	"drop-newest": eventbus.DropNewest,
	"block":       eventbus.Block,
	"disconnect":  eventbus.Disconnect,
	"catch-up":    eventbus.CatchUp,
}

// options are the flags that are not part of a run.
type options struct {
	json       bool
	cpuprofile string
}

// parseFlags reads args (without the program name) into a config.
func parseFlags(args []string, stderr io.Writer) (config, options, error) {
	cfg := defaultConfig()
	var opt options
	fs := flag.NewFlagSet("busload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "events published per second (0: as fast as possible)")
	fs.IntVar(&cfg.Subs, "subs", cfg.Subs, "number of subscribers")
	patterns := fs.String("patterns", strings.Join(cfg.Patterns, ","), "comma-separated patterns, given to subscribers round-robin")
	fs.IntVar(&cfg.Topics, "topics", cfg.Topics, "number of distinct topics, published round-robin")
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "topics are PREFIX.0, PREFIX.1, ...")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish")
	fs.IntVar(&cfg.Payload, "payload", cfg.Payload, "payload size in bytes")
	fs.IntVar(&cfg.Buffer, "buffer", cfg.Buffer, "subscriber mailbox size")
	fs.StringVar(&cfg.Store, "store", cfg.Store, "none, memory or sqlite:PATH")
	overflow := fs.String("overflow", "drop-oldest", "drop-oldest, drop-newest, block, disconnect or catch-up (a comma list is given to subscribers round-robin)")
	fs.BoolVar(&cfg.Async, "async", false, "publish with PublishAsync instead of Publish")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "after the bus run, run the same load through plain buffered channels and compare")
	fs.BoolVar(&opt.json, "json", false, "print the final report as one JSON object")
	fs.StringVar(&opt.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "load, scale, firehose or sleeper")
	churn := fs.String("churn", "0", "scale: churn pairs per second while publish latency is measured, or max")
	fs.StringVar(&cfg.ChurnBy, "churn-by", cfg.ChurnBy, "scale: what a churn pair is: subscription (Subscribe and Close) or pattern (Add and Remove on one subscription)")
	fs.IntVar(&cfg.Events, "events", 0, "scale: publishes of each kind per latency measurement, paced by -rate (default 10000); firehose: events (default 1000000); sleeper: events (default 50000)")
	fs.DurationVar(&cfg.Sleep, "sleep", cfg.Sleep, "sleeper: how long the slow subscriber sleeps per event")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	fs.Visit(func(f *flag.Flag) { cfg.Set[f.Name] = true })
	switch *churn {
	case "max":
		cfg.Churn = churnMax
	default:
		n, err := strconv.Atoi(*churn)
		if err != nil || n < 0 {
			return cfg, opt, fmt.Errorf("busload: -churn %q: want a number of pairs per second or max", *churn)
		}
		cfg.Churn = n
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("busload: unexpected arguments %q", fs.Args())
	}
	cfg.Patterns = splitList(*patterns)
	cfg.Overflow = nil
	for _, name := range splitList(*overflow) {
		p, ok := overflows[name]
		if !ok {
			return cfg, opt, fmt.Errorf("busload: unknown -overflow %q (want drop-oldest, drop-newest, block, disconnect or catch-up)", name)
		}
		cfg.Overflow = append(cfg.Overflow, p)
	}
	return cfg, opt, cfg.check()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// check reports a configuration that cannot run.
func (c config) check() error {
	if !slices.Contains(modes, c.Mode) {
		return fmt.Errorf("busload: unknown -mode %q (want %s)", c.Mode, strings.Join(modes, ", "))
	}
	switch {
	case c.Events < 0:
		return errors.New("busload: -events must be at least 0")
	case c.Sleep < 0:
		return errors.New("busload: -sleep must not be negative")
	case c.Churn < churnMax:
		return errors.New("busload: -churn must be at least 0")
	case c.ChurnBy != churnSubscribe && c.ChurnBy != churnPattern:
		return fmt.Errorf("busload: -churn-by %q: want %s or %s", c.ChurnBy, churnSubscribe, churnPattern)
	}
	switch {
	case c.Rate < 0:
		return errors.New("busload: -rate must be at least 0")
	case c.Subs < 1:
		return errors.New("busload: -subs must be at least 1")
	case len(c.Patterns) == 0:
		return errors.New("busload: -patterns is empty")
	case c.Topics < 1:
		return errors.New("busload: -topics must be at least 1")
	case c.Duration <= 0:
		return errors.New("busload: -duration must be positive")
	case c.Payload < 0:
		return errors.New("busload: -payload must be at least 0")
	case c.Buffer < 1:
		return errors.New("busload: -buffer must be at least 1")
	case len(c.Overflow) == 0:
		return errors.New("busload: -overflow is empty")
	}
	for _, p := range c.Patterns {
		if err := eventbus.ValidatePattern(p); err != nil {
			return fmt.Errorf("busload: -patterns: %w", err)
		}
	}
	if err := eventbus.ValidateTopic(topicName(c.Prefix, c.Topics-1)); err != nil {
		return fmt.Errorf("busload: -prefix: %w", err)
	}
	if c.Store != "none" && c.Store != "memory" && !strings.HasPrefix(c.Store, "sqlite:") {
		return fmt.Errorf("busload: unknown -store %q (want none, memory or sqlite:PATH)", c.Store)
	}
	return nil
}

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

// mainErr runs busload with args and returns the exit code.
func mainErr(args []string, stdout, stderr io.Writer) int {
	cfg, opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if opt.cpuprofile != "" {
		f, err := os.Create(opt.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "busload:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "busload:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runMode(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if opt.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "busload:", err)
			return 1
		}
		return 0
	}
	rep.writeText(stdout)
	return 0
}

// report is what every mode prints.
type report interface{ writeText(io.Writer) }

// runMode runs the mode cfg.Mode names.
func runMode(ctx context.Context, cfg config, w io.Writer) (report, error) {
	switch cfg.Mode {
	case "scale":
		return runScale(ctx, cfg, w)
	case "firehose":
		return runFirehose(ctx, cfg, w)
	case "sleeper":
		return runSleeper(ctx, cfg, w)
	}
	return run(ctx, cfg, w)
}
