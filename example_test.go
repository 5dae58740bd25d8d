package eventbus_test

import (
	"context"
	"fmt"
	"log"

	"github.com/choiros/eventbus"
)

// The quick start: make a bus, subscribe to a pattern, publish, receive.
func Example() {
	ctx := context.Background()
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	sub, err := bus.Subscribe(ctx, "worker.*")
	if err != nil {
		log.Fatal(err)
	}

	worker := bus.Publisher("worker-1")
	if _, err := worker.Emit(ctx, eventbus.WorkerProgress, "worker.task.progress", map[string]int{"pct": 50}); err != nil {
		log.Fatal(err)
	}

	e := <-sub.C()
	fmt.Println(e.Seq, e.Type, e.Topic, e.Source, string(e.Payload))
	// Output: 1 worker_progress worker.task.progress worker-1 {"pct":50}
}

func ExampleNew() {
	bus, err := eventbus.New(
		eventbus.WithBufferSize(256),                               // each subscriber's mailbox
		eventbus.WithOverflow(eventbus.DropOldest),                 // what a full mailbox does
		eventbus.WithNoPersistTopics("chat.typing", "*.heartbeat"), // never stored
	)
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	_, err = eventbus.New(eventbus.WithBufferSize(0))
	fmt.Println(err)
	// Output: eventbus: invalid option: WithBufferSize(0): must be at least 1
}

func ExampleBus_Subscribe() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	defer bus.Close()

	// "*" crosses dots: this sees every topic strictly below "file".
	sub, _ := bus.Subscribe(ctx, "file.*", eventbus.WithName("indexer"))
	for _, topic := range []string{"file.created", "chat.message", "file.src.main.changed"} {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.FileChanged, Topic: topic})
	}
	_ = sub.Close() // C stays readable until drained, then closes
	for e := range sub.C() {
		fmt.Println(e.Seq, e.Topic)
	}
	fmt.Println(sub.Err())
	// Output:
	// 1 file.created
	// 3 file.src.main.changed
	// eventbus: closed
}

func ExampleBus_Handle() {
	ctx := context.Background()
	bus, _ := eventbus.New(eventbus.WithErrorHandler(func(err error) {
		fmt.Println("reported:", err != nil)
	}))

	_, _ = bus.Handle(ctx, "worker.*", func(ctx context.Context, e eventbus.Event) error {
		if e.Type == eventbus.WorkerFailed {
			return fmt.Errorf("worker %s failed", e.Source)
		}
		fmt.Println("handled", e.Topic)
		return nil
	})
	p := bus.Publisher("w1")
	_, _ = p.Emit(ctx, eventbus.WorkerSpawned, "worker.spawned", nil)
	_, _ = p.Emit(ctx, eventbus.WorkerFailed, "worker.failed", nil)
	_, _ = p.Emit(ctx, eventbus.WorkerComplete, "worker.complete", nil)
	_ = bus.Close() // handlers finish their mailboxes first
	// Errors are reported from another goroutine, so the order varies.

	// Unordered output:
	// handled worker.spawned
	// reported: true
	// handled worker.complete
}

func ExampleHandleFunc() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	type progress struct {
		Pct int `json:"pct"`
	}
	_, _ = eventbus.HandleFunc(bus, ctx, "worker.*.progress", func(ctx context.Context, e eventbus.Event, p progress) error {
		fmt.Printf("%s at %d%%\n", e.Source, p.Pct)
		return nil
	})
	_, _ = bus.Publisher("w7").Emit(ctx, eventbus.WorkerProgress, "worker.build.progress", progress{Pct: 75})
	_ = bus.Close()
	// Output: w7 at 75%
}

func ExampleBus_Publisher() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	defer bus.Close()
	sub, _ := bus.Subscribe(ctx, "*")

	job := bus.Publisher("scheduler").WithCorrelationID("job-42")
	e, _ := job.Emit(ctx, eventbus.WorkerSpawned, "worker.spawned", map[string]string{"task": "index"})
	got := <-sub.C()
	fmt.Println(got.ID == e.ID, got.Source, got.CorrelationID)
	// Output: true scheduler job-42
}

// Event types are an open vocabulary: any well-formed name will do, with
// no registration; the constants are the seed's types.
func ExamplePublisher_Emit() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	defer bus.Close()
	sub, _ := bus.Subscribe(ctx, "orders.*")

	shop := bus.Publisher("shop")
	_, _ = shop.Emit(ctx, "order_created", "orders.created", map[string]int{"id": 7})
	_, err := shop.Emit(ctx, "OrderCreated", "orders.created", nil)
	fmt.Println(err)
	e := <-sub.C()
	fmt.Println(e.Type, e.Topic, string(e.Payload))
	// Output:
	// eventbus: invalid event type "OrderCreated": byte 'O' not in [a-z0-9_.:-]
	// order_created orders.created {"id":7}
}

func ExampleBus_PublishAsync() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	defer bus.Close()
	sub, _ := bus.Subscribe(ctx, "metrics.*", eventbus.WithBuffer(100))
	for i := range 3 {
		_ = bus.PublishAsync(ctx, eventbus.Event{Type: eventbus.SystemHeartbeat, Topic: "metrics.cpu", Payload: []byte(fmt.Sprint(i))})
	}
	_ = bus.Flush(ctx) // everything accepted so far is now in the mailbox
	fmt.Println(len(sub.C()))
	// Output: 3
}

func ExampleBus_Query() {
	ctx := context.Background()
	bus, _ := eventbus.New() // the default in-memory store keeps the newest 10,000 events
	defer bus.Close()
	for _, topic := range []string{"chat.room1", "worker.spawned", "chat.room2", "chat.room1"} {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.ChatMessage, Topic: topic})
	}
	events, _ := bus.Query(ctx, eventbus.Query{Pattern: "chat.*", Limit: 2, Newest: true})
	for _, e := range events {
		fmt.Println(e.Seq, e.Topic)
	}
	// Output:
	// 3 chat.room2
	// 4 chat.room1
}

func ExampleFromSeq() {
	ctx := context.Background()
	bus, _ := eventbus.New()
	defer bus.Close()
	for i := range 3 {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.room1", Payload: []byte(fmt.Sprint(i))})
	}
	// Replay from Seq 2, then continue live with no gap and no duplicate.
	sub, _ := bus.Subscribe(ctx, "chat.*", eventbus.FromSeq(2))
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.room1", Payload: []byte("3")})
	for range 3 {
		e := <-sub.C()
		fmt.Println(e.Seq, string(e.Payload))
	}
	// Output:
	// 2 1
	// 3 2
	// 4 3
}

func ExampleMatch() {
	for _, c := range [][2]string{
		{"worker.*", "worker.task.complete"},
		{"worker.*", "worker"},
		{"worker.*.complete", "worker.a.b.complete"},
		{"chat.room?", "chat.room1"},
		{"chat.room?", "chat.room12"},
	} {
		fmt.Println(c[0], c[1], eventbus.Match(c[0], c[1]))
	}
	// Output:
	// worker.* worker.task.complete true
	// worker.* worker false
	// worker.*.complete worker.a.b.complete true
	// chat.room? chat.room1 true
	// chat.room? chat.room12 false
}

func ExampleWithAuthorizer() {
	ctx := context.Background()
	onlyOwnRoom := eventbus.AuthorizerFunc(func(ctx context.Context, a eventbus.Access) error {
		if a.Action == eventbus.ActionPublish && a.Topic != "chat."+a.Principal {
			return eventbus.ErrForbidden
		}
		return nil
	})
	bus, _ := eventbus.New(eventbus.WithAuthorizer(onlyOwnRoom))
	defer bus.Close()
	alice := eventbus.WithPrincipal(ctx, "alice")
	fmt.Println(bus.Publish(alice, eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.alice"}))
	fmt.Println(bus.Publish(alice, eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.bob"}))
	// Output:
	// <nil>
	// eventbus: forbidden
}

// An Authorizer that decides on patterns by what they can match, not by
// their text: a principal allowed "public.*" cannot widen it with a glob.
func ExampleAuthorizeWithin() {
	ctx := context.Background()
	auth := eventbus.AuthorizeWithin(func(principal string, action eventbus.Action) []string {
		if action == eventbus.ActionPublish {
			return []string{"chat." + principal}
		}
		return []string{"public.*", "chat.*"}
	})
	bus, _ := eventbus.New(eventbus.WithAuthorizer(auth))
	defer bus.Close()
	alice := eventbus.WithPrincipal(ctx, "alice")
	for _, pattern := range []string{"public.news.*", "chat.room?", "*", "s?cret.*", "*ecret*"} {
		_, err := bus.Subscribe(alice, pattern)
		fmt.Println(pattern, err)
	}
	fmt.Println(bus.Publish(alice, eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.bob"}))
	// Output:
	// public.news.* <nil>
	// chat.room? <nil>
	// * eventbus: forbidden: principal "alice" may not subscribe to "*"
	// s?cret.* eventbus: forbidden: principal "alice" may not subscribe to "s?cret.*"
	// *ecret* eventbus: forbidden: principal "alice" may not subscribe to "*ecret*"
	// eventbus: forbidden: principal "alice" may not publish on "chat.bob"
}

func ExamplePatternWithin() {
	for _, pattern := range []string{"public.a.*", "public.?", "public", "*", "s?cret.*", "*ecret*", "pub*"} {
		fmt.Println(pattern, eventbus.PatternWithin(pattern, "public.*"))
	}
	// Output:
	// public.a.* true
	// public.? true
	// public false
	// * false
	// s?cret.* false
	// *ecret* false
	// pub* false
}

func ExampleNewMemoryStore() {
	ctx := context.Background()
	store := eventbus.NewMemoryStore(eventbus.WithMaxEvents(2))
	bus, _ := eventbus.New(eventbus.WithStore(store))
	for range 3 {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.SystemHeartbeat, Topic: "system.heartbeat"})
	}
	_ = bus.Close() // a store passed in is the caller's to close
	events, _ := store.Query(ctx, eventbus.Query{})
	last, _ := store.LastSeq(ctx)
	fmt.Println(len(events), events[0].Seq, last)
	_ = store.Close()
	// Output: 2 2 3
}
