package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// implementations returns every implementation, the baseline first.
func implementations() []impl {
	return []impl{
		channelBaseline(),
		channelPointerBaseline(),
		channel40Baseline(),
		eventbusImpl("eventbus PublishAsync", true, false, nil),
		eventbusImpl("eventbus Publish (sync)", false, false, []string{"W1"}),
		eventbusImpl("eventbus PublishAsync + memory store", true, true, []string{"W1"}),
		cskrPubsub(),
		asaskevichEventBus(),
		watermillGoChannel(),
		mochiInline(),
		natsEmbedded(),
	}
}

// runConfig is what the flags set.
type runConfig struct {
	lossy   lossyConfig // F1 and S1
	events  int
	rounds  int
	lim     limits
	minTime time.Duration // runs shorter than this get more events next round
	only    string        // substring filter on implementation names
	loads   string        // comma list of workload names
	profile string        // CPU profile file
}

// cell is the outcome of one workload × implementation over all rounds.
type cell struct {
	w      *workload
	im     impl
	events int       // events of the next run
	rates  []float64 // deliveries/s of each counted round that delivered everything
	lossy  []result  // rounds that lost deliveries
	errs   []string
	notes  []string
}

func (c *cell) best() float64 {
	if len(c.rates) == 0 {
		return 0
	}
	return slices.Max(c.rates)
}

func (c *cell) median() float64 {
	if len(c.rates) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(c.rates))
	return s[len(s)/2]
}

func main() {
	var cfg runConfig
	flag.IntVar(&cfg.events, "events", 200000, "events published in W1; W2 publishes events/10 (to 100 subscribers), W3 events/2")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds; the table shows the best (and the median)")
	flag.DurationVar(&cfg.lim.stall, "stall", 2*time.Second, "after publishing, no delivery for this long means the rest is lost")
	flag.DurationVar(&cfg.lim.deadline, "deadline", 60*time.Second, "longest a single run may take")
	flag.DurationVar(&cfg.minTime, "mintime", 300*time.Millisecond, "runs shorter than this are repeated with more events (at most 50× -events)")
	flag.StringVar(&cfg.only, "only", "", "run only implementations whose name contains this (the two channel baselines always run)")
	flag.StringVar(&cfg.loads, "workloads", "W1,W2,W3,F1,S1", "comma list of workloads")
	flag.IntVar(&cfg.lossy.firehose, "firehose", 1_000_000, "events in F1 (firehose)")
	flag.IntVar(&cfg.lossy.sleeper, "sleeper", 50_000, "events in S1 (sleeper)")
	flag.IntVar(&cfg.lossy.subs, "sleeper-subs", 10, "subscribers in S1, the sleeper included (at least 2)")
	flag.DurationVar(&cfg.lossy.sleep, "sleep", time.Millisecond, "how long the sleeper in S1 sleeps per event")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if cfg.profile != "" {
		f, err := os.Create(cfg.profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if cfg.lossy.subs < 2 {
		fmt.Fprintln(os.Stderr, "-sleeper-subs must be at least 2")
		os.Exit(2)
	}
	cells := runAll(cfg, os.Stderr)
	f1, s1 := runLossy(cfg, cfg.lossy, strings.Split(cfg.loads, ","), os.Stderr)
	writeTable(os.Stdout, cfg, cells)
	writeLossyTables(os.Stdout, cfg.lossy, f1, s1)
}

// runAll runs every selected workload × implementation cfg.rounds times,
// interleaved so background load spreads over all of them.
func runAll(cfg runConfig, log io.Writer) []*cell {
	var cells []*cell
	for _, w := range workloads() {
		if !slices.Contains(strings.Split(cfg.loads, ","), w.name) {
			continue
		}
		for _, im := range implementations() {
			if !im.runs(w) || (cfg.only != "" && !strings.HasPrefix(im.name, baselineName) && !strings.Contains(im.name, cfg.only)) {
				continue
			}
			cells = append(cells, &cell{w: w, im: im, events: w.eventsFor(cfg.events)})
		}
	}
	// Round 0 warms up and sizes the runs: a run shorter than -mintime
	// gets proportionally more events in the next round, so that fast
	// implementations are not timed over a few milliseconds. It is not
	// counted.
	for r := range cfg.rounds + 1 {
		for _, c := range cells {
			n := c.events
			res := measure(c.im, c.w, n, cfg.lim, func() {}, func() {})
			if res.err == nil && !res.lossy && res.elapsed < cfg.minTime {
				grow := 1.2 * float64(cfg.minTime) / float64(max(res.elapsed, time.Millisecond))
				c.events = min(int(float64(n)*grow), 50*c.w.eventsFor(cfg.events))
			}
			status := "ok"
			if r == 0 {
				status = "warm-up, not counted"
			}
			switch {
			case res.err != nil:
				status = "error: " + res.err.Error()
				c.errs = append(c.errs, res.err.Error())
			case res.lossy:
				status = fmt.Sprintf("LOSSY %d of %d", res.received, res.expected)
				c.lossy = append(c.lossy, res)
			case res.extra > 0:
				status = fmt.Sprintf("DUPLICATES %d", res.extra)
				c.errs = append(c.errs, status)
			case r > 0:
				c.rates = append(c.rates, res.rate())
			}
			if res.notes != "" && !slices.Contains(c.notes, res.notes) {
				c.notes = append(c.notes, res.notes)
			}
			fmt.Fprintf(log, "round %d  %-3s %-38s %8d events %10d deliveries %8.3fs %12.0f/s  %s\n",
				r, c.w.name, c.im.name, n, res.received, res.elapsed.Seconds(), res.rate(), status)
			runtime.GC() // leave no garbage to the next run
		}
	}
	return cells
}

// human formats a rate with an SI suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// cpuModel returns the CPU model name, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeTable prints the results as Markdown.
func writeTable(w io.Writer, cfg runConfig, cells []*cell) {
	fmt.Fprintf(w, "%s, %s/%s, GOMAXPROCS=%d, CPU: %s (%d logical)\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), cpuModel(), runtime.NumCPU())
	if len(cells) == 0 {
		return
	}
	fmt.Fprintf(w, "-events %d (W1 %d events, W2 %d, W3 %d; runs shorter than %v get more, up to 50×), best of %d rounds after a warm-up (median in parentheses)\n\n",
		cfg.events, cfg.events, max(cfg.events/10, 1), max(cfg.events/2, 1), cfg.minTime, cfg.rounds)
	for _, wl := range workloads() {
		fmt.Fprintf(w, "- %s: %s\n", wl.name, wl.desc)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload | implementation | deliveries/s | ratio to channel baseline | ratio to `*Event` baseline | semantics notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|")
	base, ptr := map[string]float64{}, map[string]float64{}
	for _, c := range cells {
		switch c.im.name {
		case baselineName:
			base[c.w.name] = c.best()
		case pointerBaselineName:
			ptr[c.w.name] = c.best()
		}
	}
	for _, c := range cells {
		rate, ratio, ratioPtr := "—", "—", "—"
		if len(c.rates) > 0 {
			rate = fmt.Sprintf("%s (%s)", human(c.best()), human(c.median()))
			if b := base[c.w.name]; b > 0 {
				ratio = fmt.Sprintf("%.2f", c.best()/b)
			}
			if b := ptr[c.w.name]; b > 0 {
				ratioPtr = fmt.Sprintf("%.2f", c.best()/b)
			}
		}
		notes := c.im.notes
		if len(c.lossy) > 0 {
			worst := c.lossy[0]
			for _, r := range c.lossy {
				if r.received < worst.received {
					worst = r
				}
			}
			notes = fmt.Sprintf("**LOSSY in %d of %d rounds** (worst: %d of %d delivered, %s/s before stalling); ",
				len(c.lossy), cfg.rounds, worst.received, worst.expected, human(worst.rate())) + notes
		}
		for _, e := range c.errs {
			notes = "**" + e + "**; " + notes
		}
		for _, n := range c.notes {
			notes += "; " + n
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", c.w.name, c.im.name, rate, ratio, ratioPtr, strings.ReplaceAll(notes, "|", "\\|"))
	}
}
