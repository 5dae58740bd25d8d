package main

import (
	"context"
	"sync"
	"unsafe"

	"github.com/choiros/eventbus"
)

// mailbox is the subscriber mailbox size every queueing implementation gets.
const mailbox = 1024

// baselineName and pointerBaselineName are the implementations the ratios
// are computed against: the Event by value, and a pointer-size message.
const (
	baselineName        = "channel baseline"
	pointerBaselineName = "channel baseline, *Event"
)

// channelBaseline is the hand-written fan-out the others are compared with:
// a buffered channel and a goroutine per subscriber, and a precomputed
// topic → channels table the publisher sends the event value on.
func channelBaseline() impl {
	return impl{
		name:  baselineName,
		notes: "hand-written: chan eventbus.Event per subscriber (1024), precomputed topic→[]chan, the 144-byte Event sent by value; blocking send: lossless, ordered, no routing or validation",
		setup: chanSetup(func(f *fixture, i int) eventbus.Event { return f.events[i] }),
	}
}

// channelPointerBaseline is the baseline sending *Event, a pointer-size
// message: the limit users compare a bus with. Beside the by-value
// baseline it also shows what copying the Event into every mailbox costs.
func channelPointerBaseline() impl {
	return impl{
		name:  pointerBaselineName,
		notes: "as the baseline, but sends a pointer to the shared event (8 bytes) instead of the 144-byte value: the pointer-size limit users compare a bus with",
		setup: chanSetup(func(f *fixture, i int) *eventbus.Event { return &f.events[i] }),
	}
}

// message40 is a 40-byte message, the size the channel fan-out of the
// harness quoted in the firehose issue sends.
type message40 struct {
	seq   uint64
	topic string
	at, n int64
}

var _ = [1]struct{}{}[unsafe.Sizeof(message40{})-40] // 40 bytes exactly

// channel40Baseline is the baseline sending a 40-byte message: between
// the pointer and the Event, and what the firehose issue's first figures
// were measured against.
func channel40Baseline() impl {
	return impl{
		name:  baselineName + ", 40-byte message",
		notes: "as the baseline, but sends a 40-byte struct (Seq, topic, two integers): the message size of the harness quoted in the firehose issue",
		setup: chanSetup(func(f *fixture, i int) message40 {
			return message40{seq: uint64(i), topic: f.events[i].Topic, at: int64(i), n: 1}
		}),
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
			return t, t.subscribe(w, c)
		},
	}
}

// eventbusConfigured measures the bus as New(opts...) configures it (with
// the logger and error handler quiet): PublishAsync, mailboxes of the
// default size (1,000), a goroutine per subscription reading C. With no
// opts it is the default configuration: DropOldest, a MemoryStore of
// 10,000 events.
func eventbusConfigured(name, notes string, opts ...eventbus.Option) impl {
	return impl{
		name:  name,
		notes: notes,
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			quiet := []eventbus.Option{eventbus.WithLogger(nil), eventbus.WithErrorHandler(func(error) {})}
			bus, err := eventbus.New(append(quiet, opts...)...)
			if err != nil {
				return nil, err
			}
			t := &busTarget{bus: bus, f: f, pub: bus.PublishAsync}
			return t, t.subscribe(w, c)
		},
	}
}

type busTarget struct {
	bus  *eventbus.Bus
	f    *fixture
	pub  func(context.Context, eventbus.Event, ...eventbus.PublishOption) error
	subs []*eventbus.Subscription
	wg   sync.WaitGroup
}

// subscribe subscribes w's subscribers, each read by a goroutine of its
// own; on an error it closes t.
func (t *busTarget) subscribe(w *workload, c *counters) error {
	for i, s := range w.subs {
		sub, err := t.bus.Subscribe(context.Background(), s.pattern)
		if err != nil {
			_ = t.close()
			return err
		}
		t.subs = append(t.subs, sub)
		t.wg.Go(func() {
			for range sub.C() {
				c.hit(i)
			}
		})
	}
	return nil
}

// dropped returns what subscriber i's subscription counted as dropped.
func (t *busTarget) dropped(i int) (int64, bool) { return int64(t.subs[i].Stats().Dropped), true }

func (t *busTarget) publish(i int) error {
	return t.pub(context.Background(), t.f.events[i])
}

func (t *busTarget) flush() error { return nil }

func (t *busTarget) close() error {
	err := t.bus.Close()
	t.wg.Wait()
	return err
}
