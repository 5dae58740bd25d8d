package eventbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

// replayMember is a member of a durable queue group in the replay tests:
// a reader that records what it gets and acknowledges it (unless told
// not to), until C closes.
type replayMember struct {
	sub  *eventbus.Subscription
	done chan struct{}
	mu   sync.Mutex
	got  []uint64
}

// joinReplayGroup subscribes one more member of the durable queue group
// "pool" on "jobs.*"; each Seq it gets goes to seen as well.
func joinReplayGroup(t require.TestingT, bus *eventbus.Bus, seen chan<- uint64, noAck func(uint64) bool, opts ...eventbus.SubscribeOption) *replayMember {
	opts = append([]eventbus.SubscribeOption{eventbus.Durable("pool"), eventbus.WithQueueGroup("pool")}, opts...)
	sub, err := bus.Subscribe(context.Background(), "jobs.*", opts...)
	require.NoError(t, err)
	m := &replayMember{sub: sub, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for e := range sub.C() {
			m.mu.Lock()
			m.got = append(m.got, e.Seq)
			m.mu.Unlock()
			if !noAck(e.Seq) {
				_ = sub.Ack(e)
			}
			seen <- e.Seq
		}
	}()
	return m
}

// replayRun is one bus's life in TestDurableGroupReplayProperty: members
// join and leave and events are published in a drawn order, while the
// store holds the replay back until a drawn step.
type replayRun struct {
	bus     *eventbus.Bus
	gate    chan struct{}
	members []*replayMember
	left    map[*replayMember]bool
	seen    chan uint64
}

// TestDurableGroupReplayProperty runs a durable queue group over two
// lives of a bus on one store. In each, events are published before any
// member, members join (and, with Block, leave) among further publishes,
// and the store lets the group's replay read only from a drawn step on,
// so members join while it runs. It checks that every event the group is
// owed — the matching events after the acknowledged prefix, then the live
// ones — reaches exactly one member, that each member gets its events in
// Seq order (so none gets a live event before a replayed one), and that
// nothing is lost across the replay's hand-over to live delivery.
func TestDurableGroupReplayProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		store := eventbus.NewMemoryStore()
		quiet := eventbus.WithLogger(slog.New(slog.DiscardHandler))
		topicOf := map[uint64]string{}
		noAck := map[uint64]bool{}
		for _, q := range rapid.SliceOfN(rapid.Uint64Range(1, 120), 0, 3).Draw(t, "noAck") {
			noAck[q] = true
		}
		owedFrom := uint64(1) // the first matching Seq not acknowledged: the replay starts there
		for life := range 2 {
			block := rapid.Bool().Draw(t, fmt.Sprintf("block%d", life))
			gated := &gatedStore{MemoryStore: store, gate: make(chan struct{})}
			bus, err := eventbus.New(eventbus.WithStore(gated), quiet)
			require.NoError(t, err)
			r := &replayRun{bus: bus, gate: gated.gate, left: map[*replayMember]bool{}, seen: make(chan uint64, 4096)}
			publish := func(n int) {
				for range n {
					topic := rapid.SampledFrom([]string{"jobs.a", "jobs.b", "other"}).Draw(t, "topic")
					require.NoError(t, bus.Publish(context.Background(), ev(topic)))
					topicOf[uint64(len(topicOf)+1)] = topic
				}
			}
			join := func() {
				opts := []eventbus.SubscribeOption{eventbus.WithBuffer(rapid.IntRange(1, 4).Draw(t, "buffer"))}
				if block {
					opts = append(opts, eventbus.WithOverflow(eventbus.Block))
				}
				r.members = append(r.members, joinReplayGroup(t, bus, r.seen, func(q uint64) bool { return noAck[q] }, opts...))
			}
			publish(rapid.IntRange(0, 20).Draw(t, "before"))
			join()
			steps := rapid.IntRange(0, 8).Draw(t, "steps")
			openAt := rapid.IntRange(0, steps).Draw(t, "openAt")
			for step := range steps {
				if step == openAt {
					close(r.gate)
				}
				switch rapid.IntRange(0, 2).Draw(t, "action") {
				case 0:
					join()
				case 1:
					publish(rapid.IntRange(1, 10).Draw(t, "n"))
				case 2:
					if !block || step <= openAt {
						// A CatchUp member closed while it lags loses what
						// it was owed; and Close waits for the replay's
						// reader, which the store holds back until openAt.
						continue
					}
					var live []*replayMember
					for _, m := range r.members {
						if !r.left[m] {
							live = append(live, m)
						}
					}
					if len(live) < 2 {
						continue // one stays, to take what is owed
					}
					m := live[rapid.IntRange(0, len(live)-1).Draw(t, "leave")]
					require.NoError(t, m.sub.Close())
					r.left[m] = true
				}
			}
			if openAt == steps {
				close(r.gate)
			}

			var want []uint64 // what the group is owed in this life
			for q := owedFrom; q <= uint64(len(topicOf)); q++ {
				if topicOf[q] != "other" {
					want = append(want, q)
				}
			}
			r.check(t, want)

			// The next life resumes at the first event not acknowledged,
			// and acknowledges everything.
			owedFrom = uint64(len(topicOf)) + 1
			for _, q := range want {
				if noAck[q] {
					owedFrom = q
					break
				}
			}
			clear(noAck)
		}
	})
}

// check waits until the members have got as many events as want holds,
// shuts the bus down, drains the members and compares.
func (r *replayRun) check(t *rapid.T, want []uint64) {
	deadline := time.After(10 * time.Second)
	for n := 0; n < len(want); n++ {
		select {
		case <-r.seen:
		case <-deadline:
			var info []string
			for _, m := range r.members {
				m.mu.Lock()
				info = append(info, fmt.Sprintf("%v %+v", m.got, m.sub.Stats()))
				m.mu.Unlock()
			}
			t.Fatalf("got %d of %d events %v: %v", n, len(want), want, info)
		}
	}
	require.NoError(t, r.bus.Close())
	var all []uint64
	for i, m := range r.members {
		<-m.done
		require.True(t, slices.IsSorted(m.got), "member %d out of Seq order: %v", i, m.got)
		all = append(all, m.got...)
	}
	slices.Sort(all)
	require.Equal(t, want, all, "each owed event to exactly one member")
}
