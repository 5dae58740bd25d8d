// Command worker is a durable worker pool over SQLite: a queue group of
// workers sharing one durable cursor, so a run killed mid-way (even with
// kill -9) continues where it stopped when started again.
//
//	go build -o worker ./examples/worker
//	./worker -db pool.db &   # publishes 200 jobs, works on them (about 2.5s)
//	sleep 1; kill -9 $!      # mid-run
//	./worker -db pool.db     # resumes after the cursor
//
// (Build it first: kill -9 on "go run" kills the go command and leaves
// the program running.)
//
// The first run publishes the jobs ("jobs.new") into the file once the
// workers are subscribed; later runs publish none. The workers are Handle
// subscriptions with Durable and WithQueueGroup: each job goes to one of
// them, and a resumed run's replay of what was not acknowledged is spread
// over them like live jobs. Each job takes -delay. A worker reports as it
// goes through a Publisher of its own, on "worker.*": worker_progress for
// each step and worker_complete at the end, or worker_failed when a step
// fails (every tenth job fails its first attempt and succeeds on the retry
// WithRetry makes). A monitor, a Handle subscription on "worker.*", keeps
// a tally and prints it at the end.
//
// A job is acknowledged when its handler returns, and the cursor is
// written every 64 acknowledgements (at most every 10ms) or 100ms, so a
// killed run does again at most the jobs of its last unwritten batch (and
// those it was working on), and loses none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

func main() {
	db := flag.String("db", "worker.db", "the SQLite file that keeps the jobs and the cursor")
	jobs := flag.Int("jobs", 200, "jobs the first run publishes")
	workers := flag.Int("workers", 4, "workers in the pool")
	delay := flag.Duration("delay", 50*time.Millisecond, "how long a job takes")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *db, *jobs, *workers, *delay); err != nil {
		log.Fatal(err)
	}
}

type job struct {
	N int `json:"n"`
}

type progress struct {
	Job  int `json:"job"`
	Step int `json:"step"`
	Of   int `json:"of"`
}

// steps is how many progress steps a job reports.
const steps = 3

// run opens the file, publishes jobs if it has none, and works until every
// job is acknowledged; then it prints the monitor's tally of this run.
func run(ctx context.Context, w io.Writer, path string, jobs, workers int, delay time.Duration) error {
	st, err := sqlitestore.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	bus, err := eventbus.New(eventbus.WithStore(st), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	// The workers, the monitor and run print lines from several
	// goroutines: a log.Logger with no prefix or flags writes each whole.
	out := log.New(w, "", 0)
	fresh := bus.LastSeq() == 0

	// The monitor: one handler for everything the workers report.
	var tallyMu sync.Mutex
	tally := map[eventbus.EventType]int{}
	if _, err := bus.Handle(ctx, "worker.*", func(_ context.Context, e eventbus.Event) error {
		tallyMu.Lock()
		tally[e.Type]++
		tallyMu.Unlock()
		return nil
	}, eventbus.WithName("monitor"), eventbus.WithOverflow(eventbus.Block)); err != nil {
		return errors.Join(err, bus.Close())
	}

	var pool []*eventbus.Subscription
	for i := range workers {
		name := fmt.Sprintf("worker-%d", i+1)
		p := bus.Publisher(name)
		sub, err := eventbus.HandleFunc(bus, ctx, "jobs.*", func(ctx context.Context, e eventbus.Event, j job) error {
			rp := p.WithCorrelationID(e.ID.String())
			for step := 1; step <= steps; step++ {
				time.Sleep(delay / steps) // the work
				if j.N%10 == 0 && step == 2 && eventbus.Attempt(ctx) == 1 {
					_, _ = rp.Emit(ctx, eventbus.WorkerFailed, "worker.failed", j)
					return fmt.Errorf("job %d: step %d failed", j.N, step) // WithRetry runs it again
				}
				_, _ = rp.Emit(ctx, eventbus.WorkerProgress, "worker.progress", progress{j.N, step, steps})
			}
			_, _ = rp.Emit(ctx, eventbus.WorkerComplete, "worker.complete", j)
			out.Printf("%s did job %d\n", name, j.N)
			return nil
		},
			eventbus.Durable("worker"), eventbus.WithQueueGroup("worker"), eventbus.WithName(name),
			eventbus.WithRetry(eventbus.Retry{Max: 3, Backoff: 10 * time.Millisecond}),
			// Durable's CatchUp policy, not Block: the handler publishes,
			// and under Block the bus could wait for a full mailbox of a
			// worker whose handler waits for the bus.
			eventbus.WithBuffer(8))
		if err != nil {
			return errors.Join(err, bus.Close())
		}
		pool = append(pool, sub)
	}

	if fresh {
		for n := range jobs {
			e, err := eventbus.NewEvent(eventbus.WorkerSpawned, "jobs.new", job{n + 1}, "worker")
			if err != nil {
				return errors.Join(err, bus.Close())
			}
			if err := bus.PublishAsync(ctx, e); err != nil {
				return errors.Join(err, bus.Close())
			}
		}
		if err := bus.Flush(ctx); err != nil {
			return errors.Join(err, bus.Close())
		}
		out.Printf("published %d jobs\n", jobs)
	}
	all, last, err := jobsAfter(ctx, bus, 0)
	if err != nil {
		return errors.Join(err, bus.Close())
	}
	if !fresh {
		left, _, err := jobsAfter(ctx, bus, pool[0].Stats().Cursor)
		if err != nil {
			return errors.Join(err, bus.Close())
		}
		out.Printf("resuming: %d of %d jobs left\n", left, all)
	}
	// The pool is done when its cursor has passed the last job.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for pool[0].Stats().Cursor < last {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), bus.Close())
		}
	}
	if err := bus.Close(); err != nil { // the monitor handles what is left first
		return err
	}
	tallyMu.Lock()
	defer tallyMu.Unlock()
	out.Printf("done: %d jobs this run, all %d acknowledged\n", tally[eventbus.WorkerComplete], all)
	types := make([]string, 0, len(tally))
	for t := range tally {
		types = append(types, string(t))
	}
	sort.Strings(types)
	for _, t := range types {
		out.Printf("  %-16s %d\n", t, tally[eventbus.EventType(t)])
	}
	return nil
}

// jobsAfter counts the stored jobs after Seq cursor, and returns the Seq of
// the last job.
func jobsAfter(ctx context.Context, bus *eventbus.Bus, cursor uint64) (n int, last uint64, err error) {
	for {
		page, err := bus.Query(ctx, eventbus.Query{Pattern: "jobs.*", AfterSeq: cursor, Limit: eventbus.MaxQueryLimit})
		if err != nil || len(page) == 0 {
			return n, last, err
		}
		n += len(page)
		cursor = page[len(page)-1].Seq
		last = cursor
	}
}
