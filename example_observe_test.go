package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/choiros/eventbus"
)

// Middleware times every handler call; the bus's wraps the subscription's.
func ExampleWithMiddleware() {
	ctx := context.Background()
	logCalls := func(name string) func(eventbus.HandlerFunc) eventbus.HandlerFunc {
		return func(next eventbus.HandlerFunc) eventbus.HandlerFunc {
			return func(ctx context.Context, e eventbus.Event) error {
				fmt.Println(name, "before", e.Topic)
				err := next(ctx, e)
				fmt.Println(name, "after", e.Topic)
				return err
			}
		}
	}
	bus, err := eventbus.New(eventbus.WithMiddleware(logCalls("bus")))
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	_, err = bus.Handle(ctx, "orders.*", func(ctx context.Context, e eventbus.Event) error {
		fmt.Println("handler", e.Topic)
		close(done)
		return nil
	}, eventbus.WithMiddleware(logCalls("sub")))
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.Publish(ctx, eventbus.Event{Type: "order_created", Topic: "orders.new"}); err != nil {
		log.Fatal(err)
	}
	<-done
	bus.Close()
	// Output:
	// bus before orders.new
	// sub before orders.new
	// handler orders.new
	// sub after orders.new
	// bus after orders.new
}

// A publish hook stamps a header on every event, as a tracer adds trace
// context.
func ExampleWithPublishHook() {
	ctx := context.Background()
	bus, err := eventbus.New(eventbus.WithPublishHook(func(ctx context.Context, e *eventbus.Event) {
		if e.Metadata == nil {
			e.Metadata = map[string]string{}
		}
		e.Metadata["region"] = "eu-west"
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	sub, err := bus.Subscribe(ctx, "orders.*")
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.Publish(ctx, eventbus.Event{Type: "order_created", Topic: "orders.new"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println((<-sub.C()).Metadata["region"])
	// Output: eu-west
}

// A handler stuck on one event is reported, with the subscription's name
// and where it was made, and again when it returns.
func ExampleWithStallTimeout() {
	ctx := context.Background()
	reports := make(chan *eventbus.StallError, 2)
	bus, err := eventbus.New(
		eventbus.WithStallTimeout(20*time.Millisecond),
		eventbus.WithLogger(nil),
		eventbus.WithErrorHandler(func(err error) {
			var se *eventbus.StallError
			if errors.As(err, &se) {
				reports <- se
			}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	release := make(chan struct{})
	_, err = bus.Handle(ctx, "jobs.*", func(ctx context.Context, e eventbus.Event) error {
		<-release
		return nil
	}, eventbus.WithName("indexer"))
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.Publish(ctx, eventbus.Event{Type: "job_queued", Topic: "jobs.reindex"}); err != nil {
		log.Fatal(err)
	}
	se := <-reports
	fmt.Println(se.Subscription, se.Topic, se.Recovered, strings.HasPrefix(se.Site, "example_observe_test.go:"))
	close(release)
	se = <-reports
	fmt.Println(se.Subscription, se.Topic, se.Recovered)
	bus.Close()
	// Output:
	// indexer jobs.reindex false true
	// indexer jobs.reindex true
}

// Subscriptions lists every live subscription, with where it was made.
func ExampleBus_Subscriptions() {
	ctx := context.Background()
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	if _, err := bus.Subscribe(ctx, "orders.*", eventbus.WithName("audit")); err != nil {
		log.Fatal(err)
	}
	for _, info := range bus.Subscriptions() {
		fmt.Println(info.Name, info.Patterns, strings.HasPrefix(info.Site, "example_observe_test.go:"), info.Stats.Buffer)
	}
	// Output: audit [orders.*] true 1000
}

// AddHooks instruments a running bus, as otelbus does.
func ExampleBus_AddHooks() {
	ctx := context.Background()
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	published := 0
	remove := bus.AddHooks(eventbus.Hooks{Publish: func(context.Context, *eventbus.Event) { published++ }})
	for range 3 {
		if err := bus.Publish(ctx, eventbus.Event{Type: "tick", Topic: "clock.tick"}); err != nil {
			log.Fatal(err)
		}
	}
	remove()
	if err := bus.Publish(ctx, eventbus.Event{Type: "tick", Topic: "clock.tick"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(published)
	// Output: 3
}
