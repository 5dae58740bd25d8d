package eventbus_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

func TestWithQueueGroupInvalid(t *testing.T) {
	tests := []struct {
		name  string
		group string
	}{
		{name: "empty", group: ""},
		{name: "control character", group: "work\n"},
		{name: "too long", group: strings.Repeat("g", 257)},
	}
	bus := newBus(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bus.Subscribe(t.Context(), "a", eventbus.WithQueueGroup(tt.group))
			require.ErrorIs(t, err, eventbus.ErrInvalidOption)
		})
	}
}

func TestQueueGroup(t *testing.T) {
	eachRouteCache(t, func(t *testing.T, opts ...eventbus.Option) {
		t.Run("one member each, spread evenly, every ungrouped one", func(t *testing.T) {
			bus := newBus(t, opts...)
			var members []*eventbus.Subscription
			for range 3 {
				s, err := bus.Subscribe(t.Context(), "jobs.*", eventbus.WithQueueGroup("workers"))
				require.NoError(t, err)
				members = append(members, s)
			}
			all, err := bus.Subscribe(t.Context(), "jobs.*")
			require.NoError(t, err)
			for i := range 300 {
				require.NoError(t, bus.Publish(t.Context(), ev(fmt.Sprintf("jobs.%d", i%7))))
			}
			assert.Len(t, recvN(t, all, 300, 5*time.Second), 300)
			require.NoError(t, bus.Flush(t.Context()))
			var got []uint64
			for _, m := range members {
				// Nobody read: the one with the most room was the one
				// given the fewest, so each got about a third (the room
				// seen may be one less for a moment while a mailbox moves
				// its backlog into C).
				n := m.Stats().Pending
				assert.InDelta(t, 100, n, 10)
				es := recvN(t, m, n, 5*time.Second)
				assert.True(t, slices.IsSorted(seqs(es)), "member order")
				got = append(got, seqs(es)...)
			}
			slices.Sort(got)
			assert.Len(t, got, 300)
			assert.Equal(t, 300, len(slices.Compact(got)))
			gs := bus.QueueGroups()
			require.Len(t, gs, 1)
			assert.Equal(t, "workers", gs[0].Name)
			assert.Equal(t, uint64(300), gs[0].Delivered)
			assert.Len(t, gs[0].Members, 3)
			var sum uint64
			for _, m := range members {
				sum += gs[0].Distribution[m.ID()]
			}
			assert.Equal(t, uint64(300), sum)
		})
		t.Run("the most free room wins", func(t *testing.T) {
			bus := newBus(t, opts...)
			small, err := bus.Subscribe(t.Context(), "a", eventbus.WithQueueGroup("g"), eventbus.WithBuffer(4))
			require.NoError(t, err)
			big, err := bus.Subscribe(t.Context(), "a", eventbus.WithQueueGroup("g"), eventbus.WithBuffer(100))
			require.NoError(t, err)
			for range 20 {
				require.NoError(t, bus.Publish(t.Context(), ev("a")))
			}
			assert.Equal(t, 0, small.Stats().Pending)
			assert.Equal(t, 20, big.Stats().Pending)
		})
		t.Run("only matching members compete", func(t *testing.T) {
			bus := newBus(t, opts...)
			narrow, err := bus.Subscribe(t.Context(), "a.*", eventbus.WithQueueGroup("g"))
			require.NoError(t, err)
			wide, err := bus.Subscribe(t.Context(), "*", eventbus.WithQueueGroup("g"))
			require.NoError(t, err)
			other, err := bus.Subscribe(t.Context(), "*", eventbus.WithQueueGroup("h"))
			require.NoError(t, err)
			for range 10 {
				require.NoError(t, bus.Publish(t.Context(), ev("b")))
			}
			assert.Equal(t, 0, narrow.Stats().Pending)
			assert.Equal(t, 10, wide.Stats().Pending)
			assert.Equal(t, 10, other.Stats().Pending)
		})
		t.Run("a member that leaves keeps what it has; the rest get the others", func(t *testing.T) {
			bus := newBus(t, opts...)
			a, err := bus.Subscribe(t.Context(), "x", eventbus.WithQueueGroup("g"))
			require.NoError(t, err)
			b, err := bus.Subscribe(t.Context(), "x", eventbus.WithQueueGroup("g"))
			require.NoError(t, err)
			for range 10 {
				require.NoError(t, bus.Publish(t.Context(), ev("x")))
			}
			require.NoError(t, a.Close())
			for range 10 {
				require.NoError(t, bus.Publish(t.Context(), ev("x")))
			}
			assert.Len(t, pending(a), 5)
			assert.Len(t, pending(b), 15)
			gs := bus.QueueGroups()
			require.Len(t, gs, 1)
			assert.Equal(t, []string{b.ID()}, gs[0].Members)
			require.NoError(t, b.Close())
			assert.Empty(t, bus.QueueGroups())
		})
		t.Run("a lagging member is passed over while another is live", func(t *testing.T) {
			gate := make(chan struct{})
			store := &gatedStore{MemoryStore: eventbus.NewMemoryStore(), gate: gate}
			bus := newBus(t, append(opts, eventbus.WithStore(store))...)
			lag, err := bus.Subscribe(t.Context(), "x", eventbus.WithQueueGroup("g"), eventbus.FromSeq(1))
			require.NoError(t, err)
			live, err := bus.Subscribe(t.Context(), "x", eventbus.WithQueueGroup("g"))
			require.NoError(t, err)
			for range 10 {
				require.NoError(t, bus.Publish(t.Context(), ev("x")))
			}
			assert.True(t, lag.Stats().Lagging)
			assert.Len(t, recvN(t, live, 10, 5*time.Second), 10)
			// lag catches up from the store: it is owed nothing the group
			// gave live, and goes live again with nothing.
			close(gate)
			require.Eventually(t, func() bool { return !lag.Stats().Lagging }, 5*time.Second, time.Millisecond)
			require.NoError(t, lag.Close())
			assert.Empty(t, pending(lag))
		})
		t.Run("a member lagging alone gets what it was chosen for from the store", func(t *testing.T) {
			gate := make(chan struct{})
			store := &gatedStore{MemoryStore: eventbus.NewMemoryStore(), gate: gate}
			bus := newBus(t, append(opts, eventbus.WithStore(store))...)
			lag, err := bus.Subscribe(t.Context(), "x", eventbus.WithQueueGroup("g"), eventbus.FromSeq(1))
			require.NoError(t, err)
			for range 5 {
				require.NoError(t, bus.Publish(t.Context(), ev("x")))
			}
			close(gate)
			assert.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs(recvN(t, lag, 5, 5*time.Second)))
		})
	})
}

func TestQueueGroupHandleSpreadsWork(t *testing.T) {
	bus := newBus(t)
	var mu sync.Mutex
	perWorker := map[int][]uint64{}
	var wg sync.WaitGroup
	wg.Add(400)
	for w := range 4 {
		_, err := bus.Handle(t.Context(), "jobs", func(_ context.Context, e eventbus.Event) error {
			mu.Lock()
			perWorker[w] = append(perWorker[w], e.Seq)
			mu.Unlock()
			wg.Done()
			return nil
		}, eventbus.WithQueueGroup("pool"), eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
	}
	for range 400 {
		require.NoError(t, bus.PublishAsync(t.Context(), ev("jobs")))
	}
	wg.Wait()
	total := 0
	for _, s := range perWorker {
		assert.True(t, slices.IsSorted(s))
		total += len(s)
	}
	assert.Equal(t, 400, total)
}

// groupMachine drives a bus with queue group members that join and leave
// and ungrouped subscriptions, all read by goroutines, and checks that
// each event reached every ungrouped matching subscription and exactly one
// matching member of each group that had one, in Seq order per member,
// with no duplicates. A CatchUp subscription closed while it lags loses
// what its catch-up had not yet delivered (as without queue groups), so
// for those the check is: nothing extra, at most one per group.
type groupMachine struct {
	bus    *eventbus.Bus
	subs   []*groupSub
	events []groupEvent
}

type groupEvent struct {
	seq  uint64
	want map[*groupSub]bool     // ungrouped subscriptions that must get it
	once map[string][]*groupSub // per group: the members that matched
}

type groupSub struct {
	sub     *eventbus.Subscription
	group   string
	pattern string
	block   bool // Block: loses nothing; CatchUp may lose what it owed when closed while lagging
	closed  bool
	done    chan struct{}
	mu      sync.Mutex
	got     []uint64
}

var (
	groupPatterns = []string{"*", "a.*", "b", "a.b"}
	groupTopics   = []string{"a.b", "a.c", "b"}
	groupNames    = []string{"", "g1", "g2"}
)

func (m *groupMachine) Join(t *rapid.T) {
	s := &groupSub{
		group:   rapid.SampledFrom(groupNames).Draw(t, "group"),
		pattern: rapid.SampledFrom(groupPatterns).Draw(t, "pattern"),
		done:    make(chan struct{}),
	}
	overflow := rapid.SampledFrom([]eventbus.Overflow{eventbus.Block, eventbus.CatchUp}).Draw(t, "overflow")
	s.block = overflow == eventbus.Block
	opts := []eventbus.SubscribeOption{
		eventbus.WithBuffer(rapid.IntRange(1, 4).Draw(t, "buffer")),
		eventbus.WithOverflow(overflow),
	}
	if s.group != "" {
		opts = append(opts, eventbus.WithQueueGroup(s.group))
	}
	sub, err := m.bus.Subscribe(context.Background(), s.pattern, opts...)
	require.NoError(t, err)
	s.sub = sub
	go func() {
		defer close(s.done)
		for e := range sub.C() {
			s.mu.Lock()
			s.got = append(s.got, e.Seq)
			s.mu.Unlock()
		}
	}()
	m.subs = append(m.subs, s)
}

func (m *groupMachine) Leave(t *rapid.T) {
	var live []*groupSub
	for _, s := range m.subs {
		if !s.closed {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		t.Skip("no subscription")
	}
	s := rapid.SampledFrom(live).Draw(t, "sub")
	require.NoError(t, s.sub.Close())
	s.closed = true
}

func (m *groupMachine) Publish(t *rapid.T) {
	topic := rapid.SampledFrom(groupTopics).Draw(t, "topic")
	n := rapid.IntRange(1, 20).Draw(t, "n")
	for range n {
		ge := groupEvent{want: map[*groupSub]bool{}, once: map[string][]*groupSub{}}
		for _, s := range m.subs {
			if s.closed || !eventbus.Match(s.pattern, topic) {
				continue
			}
			if s.group == "" {
				ge.want[s] = true
			} else {
				ge.once[s.group] = append(ge.once[s.group], s)
			}
		}
		require.NoError(t, m.bus.Publish(context.Background(), ev(topic)))
		ge.seq = uint64(len(m.events) + 1)
		m.events = append(m.events, ge)
	}
}

func (m *groupMachine) Check(*rapid.T) {}

// finish ends every subscription, waits for the readers and compares.
func (m *groupMachine) finish(t *rapid.T) {
	for _, s := range m.subs {
		require.NoError(t, s.sub.Close())
	}
	for _, s := range m.subs {
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("reader of %s did not end", s.sub.ID())
		}
	}
	has := map[*groupSub]map[uint64]bool{}
	for _, s := range m.subs {
		require.True(t, slices.IsSorted(s.got), "%s out of order: %v", s.sub.ID(), s.got)
		require.Equal(t, len(s.got), len(slices.Compact(slices.Clone(s.got))), "%s duplicates: %v", s.sub.ID(), s.got)
		has[s] = map[uint64]bool{}
		for _, q := range s.got {
			has[s][q] = true
		}
	}
	got := 0
	for _, ge := range m.events {
		for _, s := range m.subs {
			switch {
			case s.group != "":
			case s.block:
				require.Equal(t, ge.want[s], has[s][ge.seq], "event %d, ungrouped %s %q", ge.seq, s.sub.ID(), s.pattern)
			case has[s][ge.seq]:
				require.True(t, ge.want[s], "event %d, ungrouped %s %q", ge.seq, s.sub.ID(), s.pattern)
			}
		}
		for _, g := range groupNames[1:] {
			n, block := 0, true
			for _, s := range ge.once[g] {
				if has[s][ge.seq] {
					n++
				}
				block = block && s.block
			}
			if want := min(1, len(ge.once[g])); block {
				require.Equal(t, want, n, "event %d, group %s", ge.seq, g)
			} else {
				require.LessOrEqual(t, n, want, "event %d, group %s", ge.seq, g)
			}
			got += n
		}
	}
	// No member got an event it did not match or was not there for.
	total := 0
	for _, s := range m.subs {
		if s.group != "" {
			total += len(s.got)
		}
	}
	require.Equal(t, got, total, "members got events beyond their share")
}

func TestQueueGroupProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bus, err := eventbus.New(eventbus.WithStore(eventbus.NewMemoryStore()), eventbus.WithErrorHandler(func(error) {}))
		require.NoError(t, err)
		defer func() { require.NoError(t, bus.Close()) }()
		m := &groupMachine{bus: bus}
		t.Repeat(rapid.StateMachineActions(m))
		m.finish(t)
	})
}

// gatedStore is a MemoryStore whose Query waits until gate is closed, so
// a catch-up stays lagging until the test lets it go.
type gatedStore struct {
	*eventbus.MemoryStore
	gate chan struct{}
}

func (g *gatedStore) Query(ctx context.Context, q eventbus.Query) ([]eventbus.Event, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.MemoryStore.Query(ctx, q)
}
