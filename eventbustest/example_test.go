package eventbustest_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/eventbustest"
)

// printTB stands in for the *testing.T a test would pass: it prints the
// first line of each failure.
type printTB struct{ cleanups []func() }

func (p *printTB) Helper()                           {}
func (p *printTB) Errorf(format string, args ...any) { p.print("Errorf", format, args) }
func (p *printTB) Fatalf(format string, args ...any) { p.print("Fatalf", format, args) }
func (p *printTB) Cleanup(f func())                  { p.cleanups = append(p.cleanups, f) }

func (p *printTB) print(kind, format string, args []any) {
	first, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Println(kind+":", first)
}

// end runs the cleanups as the end of a test does, last registered first.
func (p *printTB) end() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}

// A test records what a worker publishes and expects its events in order;
// others may come between. ExpectExactly also fails on any other event.
func Example() {
	t := &printTB{} // in a test: the *testing.T
	defer t.end()

	bus := eventbustest.New(t, eventbus.WithStore(nil))
	rec := eventbustest.Record(t, bus, "worker.*")

	p := bus.Publisher("worker-1")
	ctx := context.Background()
	_, _ = p.Emit(ctx, eventbus.WorkerSpawned, "worker.task", nil)
	_, _ = p.Emit(ctx, eventbus.WorkerProgress, "worker.task", map[string]int{"pct": 50})
	_, _ = p.Emit(ctx, eventbus.WorkerComplete, "worker.task", nil)

	eventbustest.Expect(t, rec,
		eventbustest.Type(eventbus.WorkerSpawned),
		eventbustest.All(eventbustest.Type(eventbus.WorkerComplete), eventbustest.Topic("worker.*")),
	)
	fmt.Println("expected events arrived")

	_, _ = p.Emit(ctx, eventbus.WorkerSpawned, "worker.task2", nil)
	_, _ = p.Emit(ctx, eventbus.WorkerFailed, "worker.task2", nil)
	eventbustest.ExpectExactly(t, rec,
		eventbustest.Type(eventbus.WorkerSpawned),
		eventbustest.Type(eventbus.WorkerComplete),
	)
	// Output:
	// expected events arrived
	// Fatalf: eventbustest.ExpectExactly on "worker.*": event #2 does not match matcher 2, Type(worker_complete)
}
