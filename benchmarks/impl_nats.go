package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsEmbedded: a nats-server started in-process on 127.0.0.1 (random
// port) and nats.go clients over loopback TCP: one connection for the
// publisher and one per subscriber, each subscription with an async
// callback (nats.go queues messages per subscription, up to its pending
// limits: 500,000 messages / 64 MiB, then drops them as a slow consumer).
// NATS subjects are dotted like eventbus topics; `*` matches one token,
// which is all W3's topics have below t.<g>.
func natsEmbedded() impl {
	return impl{
		name:  "NATS (embedded server, TCP)",
		notes: "core NATS, at-most-once: slow consumers are dropped, not blocked; `*` one token, `>` many; payload bytes only; loopback TCP, conn per subscriber",
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
			if err != nil {
				return nil, err
			}
			ns.Start()
			t := &natsTarget{ns: ns, f: f, topics: w.topics}
			if !ns.ReadyForConnections(10 * time.Second) {
				_ = t.close()
				return nil, errors.New("nats-server not ready")
			}
			onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrSlowConsumer) {
					t.slow.Add(1)
				}
			})
			t.pub, err = nats.Connect(ns.ClientURL(), onErr)
			if err != nil {
				_ = t.close()
				return nil, err
			}
			for i, s := range w.subs {
				nc, err := nats.Connect(ns.ClientURL(), onErr)
				if err != nil {
					_ = t.close()
					return nil, err
				}
				t.conns = append(t.conns, nc)
				sub, err := nc.Subscribe(s.pattern, func(*nats.Msg) { c.hit(i) })
				if err != nil {
					_ = t.close()
					return nil, err
				}
				t.subs = append(t.subs, sub)
				if err := nc.Flush(); err != nil { // the server has the subscription
					_ = t.close()
					return nil, err
				}
			}
			return t, nil
		},
	}
}

type natsTarget struct {
	ns     *server.Server
	pub    *nats.Conn
	conns  []*nats.Conn
	subs   []*nats.Subscription
	f      *fixture
	topics []string
	slow   atomic.Int64 // slow-consumer errors reported by the clients
}

func (t *natsTarget) publish(i int) error {
	return t.pub.Publish(t.topics[i], t.f.payload)
}

func (t *natsTarget) flush() error { return t.pub.Flush() }

func (t *natsTarget) close() error {
	if t.pub != nil {
		t.pub.Close()
	}
	for _, nc := range t.conns {
		nc.Close()
	}
	t.ns.Shutdown()
	t.ns.WaitForShutdown()
	return nil
}

// dropped returns the messages nats.go dropped for subscriber i as a slow
// consumer.
func (t *natsTarget) dropped(i int) (int64, bool) {
	n, err := t.subs[i].Dropped()
	return int64(n), err == nil
}

// extraNotes reports slow-consumer errors seen during the run.
func (t *natsTarget) extraNotes() string {
	if n := t.slow.Load(); n > 0 {
		return fmt.Sprintf("%d slow-consumer errors", n)
	}
	return ""
}
