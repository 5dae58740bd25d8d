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

// A handler error with no WithRetry is the last attempt: the event goes
// to the dead-letter topic with the failure in its Metadata.
func ExampleWithDeadLetter() {
	bus, _ := eventbus.New(eventbus.WithErrorHandler(func(error) {}))
	ctx := context.Background()
	dead, _ := bus.Subscribe(ctx, "dead")
	_, _ = bus.Handle(ctx, "orders.*", func(context.Context, eventbus.Event) error {
		return fmt.Errorf("no such customer")
	}, eventbus.WithDeadLetter("dead"))
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerProgress, Topic: "orders.new", Source: "example"})
	d := <-dead.C()
	fmt.Println(d.Metadata["eventbus-original-topic"], d.Metadata["eventbus-attempts"])
	fmt.Println(d.Metadata["eventbus-error"])
	_ = bus.Close()
	// Output:
	// orders.new 1
	// eventbus: handler failed: no such customer
}

// Ack moves a durable consumer's cursor once every earlier event it
// matches is acknowledged too.
func ExampleSubscription_Ack() {
	bus, _ := eventbus.New(eventbus.WithStore(eventbus.NewMemoryStore()))
	ctx := context.Background()
	sub, _ := bus.Subscribe(ctx, "jobs", eventbus.Durable("jobs"))
	for range 3 {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerProgress, Topic: "jobs", Source: "example"})
	}
	first, second := <-sub.C(), <-sub.C()
	_ = sub.Ack(second)
	fmt.Println("cursor:", sub.Stats().Cursor) // the first is not acknowledged yet
	_ = sub.Ack(first)
	fmt.Println("cursor:", sub.Stats().Cursor)
	_ = bus.Close()
	// Output:
	// cursor: 0
	// cursor: 2
}
