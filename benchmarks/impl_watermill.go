package main

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// watermillGoChannel: GoChannel with BlockPublishUntilSubscriberAck, so each
// Publish waits until every subscriber has acked its copy: lossless, ordered
// per subscriber, bounded. (With the default, false, Publish returns at once
// and a goroutine per message × subscriber delivers it: unbounded and
// unordered; with the harness capping deliveries in flight it measured about
// half as fast here.) Each copy is sent by a goroutine of its own, which
// waits for the Ack. Topics are exact: a pattern subscriber subscribes to
// each covered topic and reads the 100 channels with a goroutine each.
func watermillGoChannel() impl {
	return impl{
		name:  "watermill gochannel",
		notes: "exact topics only (pattern subs = 100 Subscribe calls); BlockPublishUntilSubscriberAck: Publish waits for every subscriber's Ack (1 round trip per event), goroutine per message×subscriber; lossless, ordered",
		setup: watermillSetup(gochannel.Config{OutputChannelBuffer: mailbox, BlockPublishUntilSubscriberAck: true}),
	}
}

// watermillSetup subscribes a workload's subscribers to a new GoChannel.
func watermillSetup(cfg gochannel.Config) func(w *workload, f *fixture, c *counters) (target, error) {
	return func(w *workload, f *fixture, c *counters) (target, error) {
		g := gochannel.NewGoChannel(cfg, watermill.NopLogger{})
		ctx, cancel := context.WithCancel(context.Background())
		t := &watermillTarget{g: g, cancel: cancel, f: f, topics: w.topics}
		for i, s := range w.subs {
			for _, ti := range s.topics {
				ch, err := g.Subscribe(ctx, w.topics[ti])
				if err != nil {
					_ = t.close()
					return nil, err
				}
				t.wg.Go(func() {
					for m := range ch {
						m.Ack()
						c.hit(i)
					}
				})
			}
		}
		return t, nil
	}
}

type watermillTarget struct {
	g      *gochannel.GoChannel
	cancel context.CancelFunc
	f      *fixture
	topics []string
	wg     sync.WaitGroup
}

func (t *watermillTarget) publish(i int) error {
	return t.g.Publish(t.topics[i], message.NewMessage("bench", t.f.payload))
}

func (t *watermillTarget) flush() error { return nil }

func (t *watermillTarget) close() error {
	t.cancel()
	err := t.g.Close() // closes the output channels
	t.wg.Wait()
	return err
}
