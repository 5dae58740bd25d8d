package eventbus_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/choiros/eventbus"
)

// Three workers share the jobs: each job goes to one of them, the one
// with the most room, while an auditor without a queue group sees all.
func ExampleWithQueueGroup() {
	bus, _ := eventbus.New()
	ctx := context.Background()
	var mu sync.Mutex
	var done sync.WaitGroup
	done.Add(6)
	handled := 0
	for range 3 {
		_, _ = bus.Handle(ctx, "jobs.*", func(context.Context, eventbus.Event) error {
			mu.Lock()
			handled++
			mu.Unlock()
			done.Done()
			return nil
		}, eventbus.WithQueueGroup("workers"))
	}
	audit, _ := bus.Subscribe(ctx, "jobs.*")
	for i := range 6 {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerProgress, Topic: fmt.Sprintf("jobs.%d", i), Source: "example"})
	}
	done.Wait()
	fmt.Println("handled:", handled, "audited:", audit.Stats().Pending)
	for _, g := range bus.QueueGroups() {
		fmt.Println(g.Name, len(g.Members), "members,", g.Delivered, "jobs")
	}
	_ = bus.Close()
	// Output:
	// handled: 6 audited: 6
	// workers 3 members, 6 jobs
}
