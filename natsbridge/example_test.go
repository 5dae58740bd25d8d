package natsbridge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

// Two buses bridged through a NATS server: an event published on one
// arrives on the other with its identity, source and payload.
func Example() {
	// A NATS server in this process, on a random loopback port.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	srv.Start()
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(5 * time.Second) {
		panic("nats-server not ready")
	}

	// Two buses, each with its own connection, sharing worker events.
	bridge := func(name string) (*eventbus.Bus, func()) {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
		if err != nil {
			panic(err)
		}
		bus, err := eventbus.New()
		if err != nil {
			panic(err)
		}
		br, err := natsbridge.New(bus, nc, natsbridge.WithPatterns("worker.*"))
		if err != nil {
			panic(err)
		}
		return bus, func() { br.Close(); bus.Close(); nc.Close() }
	}
	busA, closeA := bridge("a")
	defer closeA()
	busB, closeB := bridge("b")
	defer closeB()

	ctx := context.Background()
	sub, err := busB.Subscribe(ctx, "worker.*")
	if err != nil {
		panic(err)
	}
	e, err := busA.Publisher("worker-7").Emit(ctx, eventbus.WorkerComplete, "worker.7.complete",
		map[string]int{"files": 3})
	if err != nil {
		panic(err)
	}

	got := <-sub.C()
	fmt.Println(got.Topic, got.Type, got.Source, string(got.Payload))
	fmt.Println("same event:", got.ID == e.ID)
	// Output:
	// worker.7.complete worker_complete worker-7 {"files":3}
	// same event: true
}
