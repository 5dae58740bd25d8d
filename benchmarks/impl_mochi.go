package main

import (
	"io"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochiInline: the broker's inline client. Server.Publish injects a QoS 0
// packet; the broker walks its topic tree and calls every matching inline
// subscription's handler synchronously on the publisher's goroutine (no
// mailbox). Topics are MQTT ("bench/w1", "t/3/17"); the pattern t.<g>.* is
// the filter t/<g>/+ (one level, which is all W3's topics have).
func mochiInline() impl {
	return impl{
		name:  "mochi-mqtt inline",
		notes: "MQTT topic tree, `+`/`#` wildcards (t.<g>.* → t/<g>/+); inline subs are sync callbacks on the publisher goroutine: no mailbox, slow handler stalls publisher; payload bytes only; lossless in-process",
		setup: func(w *workload, f *fixture, c *counters) (target, error) {
			srv := mqtt.New(&mqtt.Options{
				InlineClient: true,
				Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			t := &mochiTarget{srv: srv, f: f}
			for _, topic := range w.topics {
				t.topics = append(t.topics, mqttTopic(topic))
			}
			for i, s := range w.subs {
				h := func(*mqtt.Client, packets.Subscription, packets.Packet) { c.hit(i) }
				// Subscription identifiers must differ: the broker keys inline
				// subscriptions by identifier.
				if err := srv.Subscribe(mqttFilter(s.pattern), i+1, h); err != nil {
					_ = t.close()
					return nil, err
				}
			}
			return t, nil
		},
	}
}

type mochiTarget struct {
	srv    *mqtt.Server
	f      *fixture
	topics []string
}

func (t *mochiTarget) publish(i int) error {
	return t.srv.Publish(t.topics[i], t.f.payload, false, 0)
}

func (t *mochiTarget) flush() error { return nil }
func (t *mochiTarget) close() error { return t.srv.Close() }
