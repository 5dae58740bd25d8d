// Command workpool is a durable worker pool over SQLite: a queue group of
// workers sharing one durable cursor, so a run killed mid-way (even with
// kill -9) continues where it stopped when started again.
//
//	go run ./examples/workpool -db pool.db &   # publishes 200 jobs, works on them
//	sleep 2; kill -9 $!                        # mid-run
//	go run ./examples/workpool -db pool.db     # resumes after the cursor
//
// The first run publishes the jobs into the file once the workers are
// subscribed, so the pool shares them; later runs publish none. What a
// resumed run replays from the file goes to the first worker (the pool's
// replaying member); jobs published meanwhile are shared.
// Each job takes -delay; a job is acknowledged when its handler returns,
// and the cursor is written every 64 acknowledgements or 100ms, so a
// killed run does again at most the jobs of its last unwritten batch.
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
	"sync"
	"time"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

func main() {
	db := flag.String("db", "workpool.db", "the SQLite file that keeps the jobs and the cursor")
	jobs := flag.Int("jobs", 200, "jobs the first run publishes")
	workers := flag.Int("workers", 4, "workers in the pool")
	delay := flag.Duration("delay", 20*time.Millisecond, "how long a job takes")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *db, *jobs, *workers, *delay); err != nil {
		log.Fatal(err)
	}
}

type job struct {
	N int `json:"n"`
}

// run opens the file, publishes jobs if it has none, and works until every
// job is acknowledged.
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
	fresh := bus.LastSeq() == 0

	var mu sync.Mutex
	var subs []*eventbus.Subscription
	handled := 0
	for i := range workers {
		name := fmt.Sprintf("worker-%d", i+1)
		sub, err := eventbus.HandleFunc(bus, ctx, "jobs.*", func(_ context.Context, e eventbus.Event, j job) error {
			time.Sleep(delay) // the work
			mu.Lock()
			handled++
			fmt.Fprintf(w, "%s did job %d\n", name, j.N)
			mu.Unlock()
			return nil
		}, eventbus.Durable("workpool"), eventbus.WithQueueGroup("workpool"), eventbus.WithName(name), eventbus.WithOverflow(eventbus.Block), eventbus.WithBuffer(8))
		if err != nil {
			return errors.Join(err, bus.Close())
		}
		subs = append(subs, sub)
	}
	if fresh {
		for n := range jobs {
			e, err := eventbus.NewEvent(eventbus.WorkerSpawned, "jobs.new", job{n + 1}, "workpool")
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
		mu.Lock()
		fmt.Fprintf(w, "published %d jobs\n", jobs)
		mu.Unlock()
	}
	last := bus.LastSeq()
	if !fresh {
		mu.Lock() // handlers write to w too
		fmt.Fprintf(w, "resuming after job Seq %d of %d\n", subs[0].Stats().Cursor, last)
		mu.Unlock()
	}
	for subs[0].Stats().Cursor < last {
		time.Sleep(10 * time.Millisecond)
	}
	if err := bus.Close(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "done: %d jobs this run, all %d acknowledged\n", handled, last)
	return nil
}
