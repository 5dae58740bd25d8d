package main

import (
	"sync"

	evbus "github.com/asaskevich/EventBus"
	"github.com/choiros/eventbus"
	"github.com/cskr/pubsub"
)

// cskrPubsub: one goroutine owns the registry; Pub hands it the message over
// an unbuffered channel and it sends to every subscriber channel in turn,
// blocking on a full one. Topics are exact strings, so a pattern subscriber
// subscribes its one channel to every topic the pattern covers.
func cskrPubsub() impl {
	return impl{
		name:  "cskr/pubsub",
		notes: "exact topics only (pattern subs = Sub(all 100 covered topics)); blocking send: lossless, ordered per subscriber; subscribers served in map order; boxes msg in interface{}",
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			t := &cskrTarget{ps: pubsub.New(mailbox), f: f}
			for i, s := range w.subs {
				var topics []string
				for _, ti := range s.topics {
					topics = append(topics, w.topics[ti])
				}
				ch := t.ps.Sub(topics...)
				t.wg.Go(func() {
					for range ch {
						c.hit(i)
					}
				})
			}
			t.topics = w.topics
			return t, nil
		},
	}
}

type cskrTarget struct {
	ps     *pubsub.PubSub
	f      *fixture
	topics []string
	wg     sync.WaitGroup
}

func (t *cskrTarget) publish(i int) error {
	t.ps.Pub(&t.f.events[i], t.topics[i])
	return nil
}

func (t *cskrTarget) flush() error { return nil }

func (t *cskrTarget) close() error {
	t.ps.Shutdown() // closes every subscriber channel
	t.wg.Wait()
	return nil
}

// asaskevichEventBus: Publish calls every handler of the exact topic
// synchronously, by reflection, on the publisher's goroutine, under the
// bus mutex. There is no mailbox: delivery is the call.
func asaskevichEventBus() impl {
	return impl{
		name:  "asaskevich/EventBus",
		notes: "exact topics only (pattern subs = Subscribe on each covered topic); sync callbacks on the publisher goroutine via reflection, under one mutex: no mailbox, a slow handler stalls everyone; lossless",
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			t := &asaskevichTarget{bus: evbus.New(), f: f, topics: w.topics}
			for i, s := range w.subs {
				h := func(*eventbus.Event) { c.hit(i) }
				for _, ti := range s.topics {
					if err := t.bus.Subscribe(w.topics[ti], h); err != nil {
						return nil, err
					}
				}
			}
			return t, nil
		},
	}
}

type asaskevichTarget struct {
	bus    evbus.Bus
	f      *fixture
	topics []string
}

func (t *asaskevichTarget) publish(i int) error {
	t.bus.Publish(t.topics[i], &t.f.events[i])
	return nil
}

func (t *asaskevichTarget) flush() error { return nil }
func (t *asaskevichTarget) close() error { return nil }
