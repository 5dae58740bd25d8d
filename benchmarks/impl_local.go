package main

import (
	"context"
	"sync"

	"github.com/choiros/eventbus"
)

// mailbox is the subscriber mailbox size every queueing implementation gets.
const mailbox = 1024

// baselineName is the implementation the ratios are computed against.
const baselineName = "channel baseline"

// channelBaseline is the hand-written fan-out the others are compared with:
// a buffered channel and a goroutine per subscriber, and a precomputed
// topic → channels table the publisher sends the event value on.
func channelBaseline() impl {
	return impl{
		name:  baselineName,
		notes: "hand-written: chan eventbus.Event per subscriber (1024), precomputed topic→[]chan, the 136-byte Event sent by value; blocking send: lossless, ordered, no routing or validation",
		setup: chanSetup(func(f *fixture, i int) eventbus.Event { return f.events[i] }),
	}
}

// channelPointerBaseline is the baseline sending *Event: it shows what the
// by-value copy into every mailbox costs (eventbus's C() is a chan Event).
func channelPointerBaseline() impl {
	return impl{
		name:  "channel baseline, *Event",
		notes: "as the baseline, but sends a pointer to the shared event (8 bytes) instead of the 136-byte value; for reference (eventbus's `<-chan Event` is by value)",
		setup: chanSetup(func(f *fixture, i int) *eventbus.Event { return &f.events[i] }),
	}
}

// chanSetup builds the hand-written fan-out for messages of type M.
func chanSetup[M any](msg func(*fixture, int) M) func(*workload, *fixture, *counters) (target, error) {
	return func(w *workload, f *fixture, c *counters) (target, error) {
		t := &chanTarget[M]{}
		for i := range f.events {
			t.msgs = append(t.msgs, msg(f, i))
		}
		chans := make([]chan M, len(w.subs))
		for i := range chans {
			ch := make(chan M, mailbox)
			chans[i] = ch
			t.wg.Go(func() {
				for range ch {
					c.hit(i)
				}
			})
		}
		t.chans = chans
		for _, subs := range w.routes() {
			var out []chan M
			for _, i := range subs {
				out = append(out, chans[i])
			}
			t.routes = append(t.routes, out)
		}
		return t, nil
	}
}

type chanTarget[M any] struct {
	msgs   []M
	chans  []chan M
	routes [][]chan M
	wg     sync.WaitGroup
}

func (t *chanTarget[M]) publish(i int) error {
	m := t.msgs[i]
	for _, ch := range t.routes[i] {
		ch <- m
	}
	return nil
}

func (t *chanTarget[M]) flush() error { return nil }

func (t *chanTarget[M]) close() error {
	for _, ch := range t.chans {
		close(ch)
	}
	t.wg.Wait()
	return nil
}

// eventbusImpl measures this repository's bus: Block policy, mailboxes of
// 1024, a goroutine per subscription reading C.
func eventbusImpl(name string, async, memoryStore bool, only []string) impl {
	notes := "PublishAsync, Block, no store: lossless, per-topic order, `*` patterns routed natively"
	switch {
	case !async:
		notes = "sync Publish (returns once in every mailbox), Block, no store: lossless, ordered"
	case memoryStore:
		notes = "PublishAsync, Block, default MemoryStore (10,000 newest): every event persisted before delivery"
	}
	return impl{
		name:  name,
		notes: notes,
		only:  only,
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			opts := []eventbus.Option{
				eventbus.WithOverflow(eventbus.Block),
				eventbus.WithBufferSize(mailbox),
				eventbus.WithLogger(nil),
			}
			if !memoryStore {
				opts = append(opts, eventbus.WithStore(nil))
			}
			bus, err := eventbus.New(opts...)
			if err != nil {
				return nil, err
			}
			t := &busTarget{bus: bus, f: f, pub: bus.PublishAsync}
			if !async {
				t.pub = bus.Publish
			}
			for i, s := range w.subs {
				sub, err := bus.Subscribe(context.Background(), s.pattern)
				if err != nil {
					_ = t.close()
					return nil, err
				}
				t.wg.Go(func() {
					for range sub.C() {
						c.hit(i)
					}
				})
			}
			return t, nil
		},
	}
}

type busTarget struct {
	bus *eventbus.Bus
	f   *fixture
	pub func(context.Context, eventbus.Event, ...eventbus.PublishOption) error
	wg  sync.WaitGroup
}

func (t *busTarget) publish(i int) error {
	return t.pub(context.Background(), t.f.events[i])
}

func (t *busTarget) flush() error { return nil }

func (t *busTarget) close() error {
	err := t.bus.Close()
	t.wg.Wait()
	return err
}
