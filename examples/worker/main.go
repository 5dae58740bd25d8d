// Command worker runs a small pool of workers that report their progress on
// the bus, and a monitor that follows them through the pattern "worker.*".
//
//	go run ./examples/worker
//
// Each worker emits worker_spawned, worker_progress and then
// worker_complete or worker_failed through its own Publisher; the monitor
// is a supervised Handle subscription that keeps a tally. The program
// prints what happened and exits 0.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"sync"

	"github.com/choiros/eventbus"
)

func main() {
	if err := run(context.Background(), os.Stdout, 4, 3); err != nil {
		log.Fatal(err)
	}
}

type task struct {
	ID    string `json:"id"`
	Steps int    `json:"steps"`
}

type progress struct {
	Task string `json:"task"`
	Step int    `json:"step"`
	Of   int    `json:"of"`
}

// run starts workers that each do tasksPerWorker tasks, and prints the
// monitor's view of them to w.
func run(ctx context.Context, w io.Writer, workers, tasksPerWorker int) error {
	bus, err := eventbus.New()
	if err != nil {
		return err
	}

	// The monitor: one handler for everything below "worker".
	var mu sync.Mutex
	counts := map[eventbus.EventType]int{}
	var failures []string
	_, err = bus.Handle(ctx, "worker.*", func(ctx context.Context, e eventbus.Event) error {
		mu.Lock()
		defer mu.Unlock()
		counts[e.Type]++
		if e.Type == eventbus.WorkerFailed {
			var t task
			if err := e.Decode(&t); err != nil {
				return err
			}
			failures = append(failures, fmt.Sprintf("%s failed %s", e.Source, t.ID))
		}
		return nil
	}, eventbus.WithName("monitor"), eventbus.WithOverflow(eventbus.Block))
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("worker-%d", i+1)
			p := bus.Publisher(name)
			for n := range tasksPerWorker {
				t := task{ID: fmt.Sprintf("%s/task-%d", name, n+1), Steps: 4}
				job := p.WithCorrelationID(t.ID)
				if _, err := job.Emit(ctx, eventbus.WorkerSpawned, "worker.task.spawned", t); err != nil {
					log.Print(err)
					return
				}
				for step := 1; step <= t.Steps; step++ {
					if _, err := job.Emit(ctx, eventbus.WorkerProgress, "worker.task.progress", progress{t.ID, step, t.Steps}); err != nil {
						log.Print(err)
						return
					}
				}
				// Every third task of worker-2 fails, to show the path.
				typ, topic := eventbus.WorkerComplete, "worker.task.complete"
				if i == 1 && n%3 == 2 {
					typ, topic = eventbus.WorkerFailed, "worker.task.failed"
				}
				if _, err := job.Emit(ctx, typ, topic, t); err != nil {
					log.Print(err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Close drains: the monitor handles every event before it returns.
	if err := bus.Close(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "%d workers ran %d tasks\n", workers, workers*tasksPerWorker)
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, string(t))
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(w, "  %-16s %d\n", t, counts[eventbus.EventType(t)])
	}
	sort.Strings(failures)
	for _, f := range failures {
		fmt.Fprintf(w, "  %s\n", f)
	}
	return nil
}
