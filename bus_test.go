package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

const wait = 5 * time.Second

func TestNewInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  eventbus.Option
		err  error
	}{
		{"buffer size zero", eventbus.WithBufferSize(0), eventbus.ErrInvalidOption},
		{"queue size negative", eventbus.WithQueueSize(-1), eventbus.ErrInvalidOption},
		{"unknown overflow", eventbus.WithOverflow(eventbus.Overflow(99)), eventbus.ErrInvalidOption},
		{"negative block timeout", eventbus.WithBlockTimeout(-time.Second), eventbus.ErrInvalidOption},
		{"bad no-persist pattern", eventbus.WithNoPersistTopics("a..b"), eventbus.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := eventbus.New(tt.opt)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, b)
		})
	}
	t.Run("message names the option", func(t *testing.T) {
		_, err := eventbus.New(eventbus.WithBufferSize(0))
		require.EqualError(t, err, "eventbus: invalid option: WithBufferSize(0): must be at least 1")
	})
	t.Run("catch-up needs a store", func(t *testing.T) {
		_, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithOverflow(eventbus.CatchUp))
		require.ErrorIs(t, err, eventbus.ErrInvalidOption)
		require.ErrorIs(t, err, eventbus.ErrNoStore)
	})
	t.Run("nil options are skipped", func(t *testing.T) {
		b := newBus(t, nil)
		_, err := b.Subscribe(t.Context(), "a", nil)
		require.NoError(t, err)
	})
}

func TestSubscribeInvalid(t *testing.T) {
	b := newBus(t)
	noStore := newBus(t, eventbus.WithStore(nil))
	tests := []struct {
		name    string
		bus     *eventbus.Bus
		pattern string
		opts    []eventbus.SubscribeOption
		err     error
	}{
		{"empty pattern", b, "", nil, eventbus.ErrInvalidPattern},
		{"bad pattern", b, "a..*", nil, eventbus.ErrInvalidPattern},
		{"zero buffer", b, "a", []eventbus.SubscribeOption{eventbus.WithBuffer(0)}, eventbus.ErrInvalidOption},
		{"bad overflow", b, "a", []eventbus.SubscribeOption{eventbus.WithOverflow(-1)}, eventbus.ErrInvalidOption},
		{"zero since", b, "a", []eventbus.SubscribeOption{eventbus.Since(time.Time{})}, eventbus.ErrInvalidOption},
		{"replay without store", noStore, "a", []eventbus.SubscribeOption{eventbus.FromSeq(1)}, eventbus.ErrNoStore},
		{"since without store", noStore, "a", []eventbus.SubscribeOption{eventbus.Since(time.Now())}, eventbus.ErrNoStore},
		{"catch-up without store", noStore, "a", []eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.CatchUp)}, eventbus.ErrNoStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := tt.bus.Subscribe(t.Context(), tt.pattern, tt.opts...)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, sub)
		})
	}
	t.Run("cancelled ctx", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := b.Subscribe(ctx, "a")
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("nil handler", func(t *testing.T) {
		_, err := b.Handle(t.Context(), "a", nil)
		require.ErrorIs(t, err, eventbus.ErrInvalidOption)
	})
}

func TestPublishInvalid(t *testing.T) {
	b := newBus(t)
	sub, err := b.Subscribe(t.Context(), "*")
	require.NoError(t, err)
	tests := []struct {
		name string
		e    eventbus.Event
		err  error
	}{
		{"bad topic", ev("a..b"), eventbus.ErrInvalidTopic},
		{"wildcard topic", ev("a.*"), eventbus.ErrInvalidTopic},
		{"no type", eventbus.Event{Topic: "a"}, eventbus.ErrInvalidEventType},
		{"malformed type", eventbus.Event{Type: "Boom!", Topic: "a"}, eventbus.ErrInvalidEventType},
		{"bad payload", eventbus.Event{Type: eventbus.ChatMessage, Topic: "a", Payload: json.RawMessage("{")}, eventbus.ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, b.Publish(t.Context(), tt.e), tt.err)
			require.ErrorIs(t, b.PublishAsync(t.Context(), tt.e), tt.err)
		})
	}
	require.NoError(t, b.Flush(t.Context()))
	assert.Empty(t, pending(sub), "invalid events must not be delivered")
	assert.Zero(t, b.Stats().Published)
}

func TestPublishDelivers(t *testing.T) {
	eachRouteCache(t, func(t *testing.T, opts ...eventbus.Option) {
		b := newBus(t, opts...)
		sub, err := b.Subscribe(t.Context(), "worker.*")
		require.NoError(t, err)
		for i := range 3 {
			require.NoError(t, b.Publish(t.Context(), evp("worker.task", i)))
			// Publish returned: the event is in the mailbox already.
			got := pending(sub)
			require.Len(t, got, 1)
			assert.Equal(t, uint64(i+1), got[0].Seq)
			assert.JSONEq(t, fmt.Sprint(i), string(got[0].Payload))
		}
	})
}

func TestPublishStampsEvent(t *testing.T) {
	b := newBus(t)
	sub, err := b.Subscribe(t.Context(), "*")
	require.NoError(t, err)

	local := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	id := ulid.Make()
	withID := ev("a")
	withID.ID, withID.Timestamp, withID.Seq = id, local, 999
	require.NoError(t, b.Publish(t.Context(), ev("a")))
	require.NoError(t, b.Publish(t.Context(), withID))

	got := pending(sub)
	require.Len(t, got, 2)
	assert.False(t, got[0].ID.IsZero(), "zero ID filled")
	assert.False(t, got[0].Timestamp.IsZero(), "zero Timestamp filled")
	assert.Equal(t, time.UTC, got[0].Timestamp.Location())
	assert.Equal(t, "null", string(got[0].Payload), "nil payload is null")
	assert.Equal(t, id, got[1].ID, "set ID kept")
	assert.True(t, local.Equal(got[1].Timestamp))
	assert.Equal(t, time.UTC, got[1].Timestamp.Location())
	assert.Equal(t, []uint64{1, 2}, seqs(got), "caller's Seq overwritten")
}

func TestSeqContinuesFromStore(t *testing.T) {
	store := eventbus.NewMemoryStore()
	b1, err := eventbus.New(eventbus.WithStore(store))
	require.NoError(t, err)
	for range 5 {
		require.NoError(t, b1.Publish(t.Context(), ev("a")))
	}
	require.NoError(t, b1.Close())

	b2 := newBus(t, eventbus.WithStore(store))
	sub, err := b2.Subscribe(t.Context(), "a")
	require.NoError(t, err)
	require.NoError(t, b2.Publish(t.Context(), ev("a")))
	assert.Equal(t, uint64(6), recvWithin(t, sub, wait).Seq)
	last, err := store.LastSeq(t.Context())
	require.NoError(t, err)
	assert.Equal(t, uint64(6), last)
	require.NoError(t, store.Close())
}

func TestPublishAsyncAndFlush(t *testing.T) {
	b := newBus(t)
	sub, err := b.Subscribe(t.Context(), "*", eventbus.WithBuffer(2000))
	require.NoError(t, err)
	for i := range 1000 {
		require.NoError(t, b.PublishAsync(t.Context(), evp("load", i)))
	}
	require.NoError(t, b.Flush(t.Context()))
	got := pending(sub)
	require.Len(t, got, 1000)
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Seq)
		require.JSONEq(t, fmt.Sprint(i), string(e.Payload))
	}
	st := b.Stats()
	assert.Equal(t, uint64(1000), st.Published)
	assert.Equal(t, uint64(1000), st.Persisted)
	assert.Equal(t, uint64(1000), st.Delivered)
}

func TestPublishWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := eventbus.New(eventbus.WithQueueSize(1), eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
		defer b.Close()
		sub, err := b.Subscribe(t.Context(), "*", eventbus.WithBuffer(1))
		require.NoError(t, err)
		// The loop blocks on the full mailbox, then the bus mailbox fills.
		for range 3 {
			require.NoError(t, b.PublishAsync(t.Context(), ev("a")))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.ErrorIs(t, b.PublishAsync(ctx, ev("a")), context.DeadlineExceeded)
		// Reading makes room for everything.
		got := recvN(t, sub, 3, wait)
		assert.Equal(t, []uint64{1, 2, 3}, seqs(got))
	})
}

func TestPersistence(t *testing.T) {
	b := newBus(t, eventbus.WithNoPersistTopics("chat.typing", "system.heartbeat.*"))
	ctx := t.Context()
	require.NoError(t, b.Publish(ctx, ev("chat.message")))
	require.NoError(t, b.Publish(ctx, ev("chat.typing")))
	require.NoError(t, b.Publish(ctx, ev("system.heartbeat.cpu")))
	require.NoError(t, b.Publish(ctx, ev("chat.other"), eventbus.WithoutPersist()))
	require.NoError(t, b.PublishAsync(ctx, ev("chat.async")))
	require.NoError(t, b.Flush(ctx))
	got, err := b.Query(ctx, eventbus.Query{})
	require.NoError(t, err)
	assert.Equal(t, []string{"chat.message", "chat.async"}, topics(got))
	assert.Equal(t, []uint64{1, 5}, seqs(got))
	assert.Equal(t, uint64(2), b.Stats().Persisted)

	t.Run("persist default off", func(t *testing.T) {
		b := newBus(t, eventbus.WithPersistDefault(false))
		require.NoError(t, b.Publish(ctx, ev("a")))
		got, err := b.Query(ctx, eventbus.Query{})
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("no store", func(t *testing.T) {
		b := newBus(t, eventbus.WithStore(nil))
		require.NoError(t, b.Publish(ctx, ev("a")))
		_, err := b.Query(ctx, eventbus.Query{})
		require.ErrorIs(t, err, eventbus.ErrNoStore)
	})
}

func TestQuery(t *testing.T) {
	b := newBus(t)
	ctx := t.Context()
	start := time.Now()
	for i := range 20 {
		topic := "worker.task.progress"
		if i%2 == 1 {
			topic = "chat.room1"
		}
		require.NoError(t, b.Publish(ctx, evp(topic, i)))
	}
	tests := []struct {
		name string
		q    eventbus.Query
		want []uint64
	}{
		{"pattern", eventbus.Query{Pattern: "chat.*", Limit: 3}, []uint64{2, 4, 6}},
		{"newest", eventbus.Query{Pattern: "chat.*", Limit: 3, Newest: true}, []uint64{16, 18, 20}},
		{"after seq", eventbus.Query{Pattern: "worker.*", AfterSeq: 15}, []uint64{17, 19}},
		{"since", eventbus.Query{Pattern: "worker.task.progress", Since: start, Limit: 2}, []uint64{1, 3}},
		{"future since", eventbus.Query{Since: time.Now().Add(time.Hour)}, nil},
		{"all, default limit", eventbus.Query{AfterSeq: 18}, []uint64{19, 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Query(ctx, tt.q)
			require.NoError(t, err)
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)))
		})
	}
	t.Run("invalid", func(t *testing.T) {
		_, err := b.Query(ctx, eventbus.Query{Pattern: "a..b"})
		require.ErrorIs(t, err, eventbus.ErrInvalidQuery)
		_, err = b.Query(ctx, eventbus.Query{Limit: -1})
		require.ErrorIs(t, err, eventbus.ErrInvalidQuery)
	})
}

func nilIfEmpty(s []uint64) []uint64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestWildcardRouting(t *testing.T) {
	published := []string{"worker", "worker.task", "worker.task.complete", "worker.a.b.complete", "workers.x", "chat.room1", "chat.room12", "system.failed", "worker.task.failed"}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*", published},
		{"worker", []string{"worker"}},
		{"worker.*", []string{"worker.task", "worker.task.complete", "worker.a.b.complete", "worker.task.failed"}},
		{"worker.task.*", []string{"worker.task.complete", "worker.task.failed"}},
		{"worker.*.complete", []string{"worker.task.complete", "worker.a.b.complete"}},
		{"*.failed", []string{"system.failed", "worker.task.failed"}},
		{"chat.room?", []string{"chat.room1"}},
		{"nobody.*", nil},
	}
	eachRouteCache(t, func(t *testing.T, opts ...eventbus.Option) {
		b := newBus(t, opts...)
		subs := make([]*eventbus.Subscription, len(tests))
		for i, tt := range tests {
			var err error
			subs[i], err = b.Subscribe(t.Context(), tt.pattern)
			require.NoError(t, err)
		}
		// Twice, so the second round is served from the cache.
		for round := range 2 {
			for _, topic := range published {
				require.NoError(t, b.Publish(t.Context(), ev(topic)))
			}
			for i, tt := range tests {
				got := topics(pending(subs[i]))
				if len(tt.want) == 0 {
					assert.Empty(t, got, "round %d pattern %q", round, tt.pattern)
					continue
				}
				assert.Equal(t, tt.want, got, "round %d pattern %q", round, tt.pattern)
			}
		}
	})
}

func TestRouteCacheBounded(t *testing.T) {
	// A flood of distinct topics nobody listens to, each published twice
	// (a topic published once is not cached): the cache evicts, and routing
	// stays right for a topic that has a listener.
	b := newBus(t, eventbus.WithStore(nil))
	sub, err := b.Subscribe(t.Context(), "*.x")
	require.NoError(t, err)
	for i := range 20000 {
		for range 2 {
			require.NoError(t, b.PublishAsync(t.Context(), ev(fmt.Sprintf("flood.%d", i))))
		}
	}
	require.NoError(t, b.Publish(t.Context(), ev("flood.x")))
	assert.Equal(t, []string{"flood.x"}, topics(pending(sub)))
	require.NoError(t, b.Flush(t.Context()))
	n := eventbus.RouteCacheLen(b)
	assert.LessOrEqual(t, n, eventbus.MaxRouteCache, "the cache stays bounded")
	assert.Positive(t, n, "the cache is in use")
}

func TestAddRemove(t *testing.T) {
	eachRouteCache(t, func(t *testing.T, opts ...eventbus.Option) {
		b := newBus(t, opts...)
		ctx := t.Context()
		sub, err := b.Subscribe(ctx, "worker.*")
		require.NoError(t, err)
		require.NoError(t, sub.Add("*.complete"))
		require.NoError(t, sub.Add("worker.task.complete"))
		require.NoError(t, sub.Add("*.complete"), "adding twice is a no-op")
		assert.Equal(t, []string{"worker.*", "*.complete", "worker.task.complete"}, sub.Patterns())

		require.NoError(t, b.Publish(ctx, ev("worker.task.complete"))) // matches all three: once
		require.NoError(t, b.Publish(ctx, ev("chat.complete")))
		assert.Equal(t, []string{"worker.task.complete", "chat.complete"}, topics(pending(sub)))

		require.NoError(t, sub.Remove("worker.*"))
		require.ErrorIs(t, sub.Remove("worker.*"), eventbus.ErrInvalidPattern)
		require.ErrorIs(t, sub.Add("a..b"), eventbus.ErrInvalidPattern)
		require.NoError(t, b.Publish(ctx, ev("worker.task")))
		require.NoError(t, b.Publish(ctx, ev("worker.task.complete")))
		assert.Equal(t, []string{"worker.task.complete"}, topics(pending(sub)))

		require.NoError(t, sub.Close())
		require.ErrorIs(t, sub.Add("x"), eventbus.ErrClosed)
		require.ErrorIs(t, sub.Remove("*.complete"), eventbus.ErrClosed)
	})
}

func TestWithPatterns(t *testing.T) {
	b := newBus(t)
	ctx := t.Context()
	for _, topic := range []string{"chat.room1", "worker.task", "file.x", "worker.task"} {
		require.NoError(t, b.Publish(ctx, ev(topic)))
	}
	sub, err := b.Subscribe(ctx, "chat.*", eventbus.WithPatterns("worker.*", "*.task", "chat.*"), eventbus.FromSeq(1))
	require.NoError(t, err)
	assert.Equal(t, []string{"chat.*", "worker.*", "*.task"}, sub.Patterns())
	require.NoError(t, b.Publish(ctx, ev("worker.task")))
	assert.Equal(t, []uint64{1, 2, 4, 5}, seqs(recvN(t, sub, 4, wait)), "replayed and live, once each")

	_, err = b.Subscribe(ctx, "a", eventbus.WithPatterns("b", "c..d"))
	require.ErrorIs(t, err, eventbus.ErrInvalidPattern)
	denyB := eventbus.AuthorizerFunc(func(ctx context.Context, a eventbus.Access) error {
		if a.Pattern == "b" {
			return eventbus.ErrForbidden
		}
		return nil
	})
	ab := newBus(t, eventbus.WithAuthorizer(denyB))
	_, err = ab.Subscribe(ctx, "a", eventbus.WithPatterns("b"))
	require.ErrorIs(t, err, eventbus.ErrForbidden)
}

func TestSubscriptionEnds(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		b := newBus(t)
		sub, err := b.Subscribe(t.Context(), "a", eventbus.WithName("reader"))
		require.NoError(t, err)
		assert.Equal(t, "reader", sub.Name())
		assert.NotEmpty(t, sub.ID())
		require.NoError(t, sub.Err())
		require.NoError(t, b.Publish(t.Context(), ev("a")))
		require.NoError(t, sub.Close())
		require.NoError(t, sub.Close(), "closing twice")
		require.ErrorIs(t, sub.Err(), eventbus.ErrClosed)
		// What was in the mailbox stays readable, then C is closed.
		e, ok := <-sub.C()
		require.True(t, ok)
		assert.Equal(t, "a", e.Topic)
		_, ok = <-sub.C()
		require.False(t, ok)
		require.NoError(t, b.Publish(t.Context(), ev("a")))
		assert.Empty(t, b.Subscribers("a"))
	})
	t.Run("ctx", func(t *testing.T) {
		b := newBus(t)
		ctx, cancel := context.WithCancel(t.Context())
		sub, err := b.Subscribe(ctx, "a")
		require.NoError(t, err)
		cancel()
		waitClosed(t, sub, wait)
		require.ErrorIs(t, sub.Err(), context.Canceled)
		select {
		case <-sub.Done():
		default:
			t.Fatal("Done not closed")
		}
		assert.Empty(t, b.Subscribers("a"))
	})
	t.Run("shutdown", func(t *testing.T) {
		b, err := eventbus.New()
		require.NoError(t, err)
		sub, err := b.Subscribe(t.Context(), "a")
		require.NoError(t, err)
		require.NoError(t, b.Close())
		waitClosed(t, sub, wait)
		require.ErrorIs(t, sub.Err(), eventbus.ErrClosed)
		require.NoError(t, sub.Close())
	})
}

// TestChannelCapacity: C holds 12 events under the policies that keep the
// rest in the mailbox's ring, and a Block subscription's whole bound, up
// to 1,024.
func TestChannelCapacity(t *testing.T) {
	b := newBus(t, eventbus.WithStore(eventbus.NewMemoryStore()))
	tests := []struct {
		opts []eventbus.SubscribeOption
		want int
	}{
		{nil, 12},
		{[]eventbus.SubscribeOption{eventbus.WithBuffer(5)}, 5},
		{[]eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.DropNewest)}, 12},
		{[]eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.CatchUp)}, 12},
		{[]eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block)}, 1000},
		{[]eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block), eventbus.WithBuffer(50)}, 50},
		{[]eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block), eventbus.WithBuffer(5000)}, 1024},
	}
	for i, tt := range tests {
		sub, err := b.Subscribe(t.Context(), "a", tt.opts...)
		require.NoError(t, err)
		assert.Equal(t, tt.want, cap(sub.C()), "case %d", i)
	}
}

func TestOverflow(t *testing.T) {
	ctx := t.Context()
	publish := func(t *testing.T, b *eventbus.Bus, n int) {
		for i := range n {
			require.NoError(t, b.Publish(t.Context(), evp("a", i)))
		}
	}
	payloads := func(events []eventbus.Event) []string {
		out := make([]string, len(events))
		for i, e := range events {
			out[i] = string(e.Payload)
		}
		return out
	}
	t.Run("drop oldest is the default", func(t *testing.T) {
		b := newBus(t)
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(2))
		require.NoError(t, err)
		publish(t, b, 5)
		assert.Equal(t, []string{"3", "4"}, payloads(pending(sub)))
		st := sub.Stats()
		assert.Equal(t, uint64(3), st.Dropped)
		assert.Equal(t, uint64(5), st.Delivered)
		assert.Equal(t, uint64(3), b.Stats().Dropped)
	})
	t.Run("drop newest", func(t *testing.T) {
		b := newBus(t, eventbus.WithOverflow(eventbus.DropNewest))
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(2))
		require.NoError(t, err)
		publish(t, b, 5)
		assert.Equal(t, []string{"0", "1"}, payloads(pending(sub)))
		assert.Equal(t, uint64(3), sub.Stats().Dropped)
		assert.Equal(t, uint64(2), sub.Stats().Delivered)
	})
	t.Run("block waits for the reader", func(t *testing.T) {
		b := newBus(t)
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(1), eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			publish(t, b, 50)
		}()
		got := recvN(t, sub, 50, wait)
		<-done
		for i, e := range got {
			require.Equal(t, fmt.Sprint(i), string(e.Payload))
		}
		assert.Zero(t, sub.Stats().Dropped)
	})
	t.Run("block times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errs := newErrSink()
			b, err := eventbus.New(eventbus.WithOverflow(eventbus.Block), eventbus.WithBlockTimeout(time.Second), eventbus.WithErrorHandler(errs.handle))
			require.NoError(t, err)
			defer b.Close()
			sub, err := b.Subscribe(t.Context(), "a", eventbus.WithBuffer(1))
			require.NoError(t, err)
			start := time.Now()
			publish(t, b, 3)
			assert.Equal(t, 2*time.Second, time.Since(start), "two events waited one timeout each")
			assert.Equal(t, []string{"0"}, payloads(pending(sub)))
			assert.Equal(t, uint64(2), sub.Stats().Dropped)
			errs.next(t, eventbus.ErrSlowConsumer, wait)
		})
	})
	t.Run("disconnect", func(t *testing.T) {
		b := newBus(t, eventbus.WithOverflow(eventbus.Disconnect))
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(2))
		require.NoError(t, err)
		publish(t, b, 3)
		require.ErrorIs(t, sub.Err(), eventbus.ErrSlowConsumer)
		assert.Equal(t, uint64(1), sub.Stats().Dropped, "the event that did not fit")
		assert.Equal(t, []string{"0", "1"}, payloads(pending(sub)))
		_, ok := <-sub.C()
		assert.False(t, ok, "mailbox closed")
		assert.Empty(t, b.Subscribers("a"))
		publish(t, b, 1) // the bus goes on
	})
	t.Run("an episode ends when the mailbox is half empty", func(t *testing.T) {
		errs := newErrSink()
		b := newBus(t, eventbus.WithErrorHandler(errs.handle))
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(4))
		require.NoError(t, err)
		publish(t, b, 5) // episode 1
		recvN(t, sub, 1, wait)
		publish(t, b, 2) // fits once, then drops: still episode 1
		recvN(t, sub, 4, wait)
		publish(t, b, 5) // fits after a drain: episode 2
		require.NoError(t, b.Close())
		n := 0
		errs.mu.Lock()
		for _, err := range errs.errs {
			if errors.Is(err, eventbus.ErrSlowConsumer) {
				n++
			}
		}
		errs.mu.Unlock()
		assert.Equal(t, 2, n)
	})
	t.Run("slow consumer reported once per episode", func(t *testing.T) {
		errs := newErrSink()
		b := newBus(t, eventbus.WithErrorHandler(errs.handle))
		sub, err := b.Subscribe(ctx, "a", eventbus.WithBuffer(1))
		require.NoError(t, err)
		publish(t, b, 10)
		require.NoError(t, b.Close())
		errs.mu.Lock()
		defer errs.mu.Unlock()
		require.Len(t, errs.errs, 1)
		require.ErrorIs(t, errs.errs[0], eventbus.ErrSlowConsumer)
		assert.Equal(t, uint64(9), sub.Stats().Dropped)
	})
}

func TestCatchUp(t *testing.T) {
	ctx := t.Context()
	b := newBus(t, eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(100000))))
	slow, err := b.Subscribe(ctx, "load.*", eventbus.WithBuffer(16), eventbus.WithOverflow(eventbus.CatchUp))
	require.NoError(t, err)
	fast, err := b.Subscribe(ctx, "load.*", eventbus.WithBuffer(30000))
	require.NoError(t, err)

	// The slow subscriber stalls for 20,000 events.
	const n = 20000
	for i := range n {
		opts := []eventbus.PublishOption(nil)
		if i%1000 == 999 {
			opts = append(opts, eventbus.WithoutPersist())
		}
		require.NoError(t, b.PublishAsync(ctx, evp("load.x", i), opts...))
	}
	require.NoError(t, b.Flush(ctx))
	assert.True(t, slow.Stats().Lagging)

	// The fast one was never slowed: it has everything, in order.
	got := pending(fast)
	require.Len(t, got, n)
	assert.Zero(t, fast.Stats().Dropped)

	// The slow one resumes and gets every persisted event in order, then live ones.
	want := make([]uint64, 0, n)
	for i := range n {
		if i%1000 != 999 || i < 16 {
			want = append(want, uint64(i+1))
		}
	}
	gotSlow := recvN(t, slow, len(want), 30*time.Second)
	require.Equal(t, want, seqs(gotSlow))
	require.NoError(t, b.Publish(ctx, ev("load.live")))
	assert.Equal(t, "load.live", recvWithin(t, slow, wait).Topic)
	st := slow.Stats()
	assert.False(t, st.Lagging)
	assert.Equal(t, uint64(20), st.Dropped, "only the events published without persistence are lost")
	assert.Empty(t, pending(slow))
}

func TestHandleCatchUp(t *testing.T) {
	// A handler that stalls under CatchUp gets every event, in order, from
	// the store and then live, through the handler's own mailbox.
	ctx := t.Context()
	b := newBus(t)
	release := make(chan struct{})
	got := make(chan uint64, 200)
	sub, err := b.Handle(ctx, "job.*", func(ctx context.Context, e eventbus.Event) error {
		<-release
		got <- e.Seq
		return nil
	}, eventbus.WithBuffer(2), eventbus.WithOverflow(eventbus.CatchUp))
	require.NoError(t, err)
	for range 100 {
		require.NoError(t, b.Publish(ctx, ev("job.x")))
	}
	assert.True(t, sub.Stats().Lagging)
	close(release)
	require.NoError(t, b.Publish(ctx, ev("job.live"))) // store or live, in order either way
	for want := uint64(1); want <= 101; want++ {
		select {
		case seq := <-got:
			require.Equal(t, want, seq)
		case <-time.After(wait):
			t.Fatalf("handler stopped at %d", want-1)
		}
	}
	assert.Zero(t, sub.Stats().Dropped)
}

func TestCatchUpPastRetention(t *testing.T) {
	// The store keeps 100 events; the subscriber falls 1,000 behind. What
	// left the store before it caught up is counted as dropped and
	// reported, never lost silently.
	errs := newErrSink()
	ctx := t.Context()
	b := newBus(t, eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(100))), eventbus.WithErrorHandler(errs.handle))
	sub, err := b.Subscribe(ctx, "*", eventbus.WithBuffer(4), eventbus.WithOverflow(eventbus.CatchUp))
	require.NoError(t, err)
	const n = 1000
	for range n {
		require.NoError(t, b.PublishAsync(ctx, ev("a")))
	}
	require.NoError(t, b.Flush(ctx))
	// Read until the subscription is live again and has the last event.
	var got []eventbus.Event
	for len(got) == 0 || got[len(got)-1].Seq != n {
		got = append(got, recvWithin(t, sub, wait))
	}
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i].Seq, got[i-1].Seq, "in order, no duplicate")
	}
	require.NoError(t, b.Publish(ctx, ev("a"))) // live again
	assert.Equal(t, uint64(n+1), recvWithin(t, sub, wait).Seq)
	st := sub.Stats()
	assert.False(t, st.Lagging)
	assert.Equal(t, uint64(n), uint64(len(got))+st.Dropped, "every event delivered or counted")
	assert.Positive(t, st.Dropped)
	errs.next(t, eventbus.ErrSlowConsumer, wait)
}

func TestCatchUpStoreFailure(t *testing.T) {
	// The store cannot be read while a subscription lags: it waits and
	// retries, reports once, and catches up when the store recovers.
	store := &failingStore{Store: eventbus.NewMemoryStore()}
	errs := newErrSink()
	ctx := t.Context()
	b := newBus(t, eventbus.WithStore(store), eventbus.WithErrorHandler(errs.handle))
	sub, err := b.Subscribe(ctx, "*", eventbus.WithBuffer(2), eventbus.WithOverflow(eventbus.CatchUp))
	require.NoError(t, err)
	store.setFailQuery(true)
	for range 10 {
		require.NoError(t, b.Publish(ctx, ev("a")))
	}
	assert.Equal(t, []uint64{1, 2}, seqs(recvN(t, sub, 2, wait)))
	errs.next(t, errDiskFull, wait)
	store.setFailQuery(false)
	assert.Equal(t, []uint64{3, 4, 5, 6, 7, 8, 9, 10}, seqs(recvN(t, sub, 8, wait)))
	require.NoError(t, b.Publish(ctx, ev("a")))
	assert.Equal(t, uint64(11), recvWithin(t, sub, wait).Seq)
	assert.Zero(t, sub.Stats().Dropped)
	require.NoError(t, store.Close())
}

// TestReplayPastUnstoredTail: a replay whose store read ends before a
// run of unpersisted events longer than the loop's tail goes live at once,
// rather than asking the loop again and again while nothing new is stored.
func TestReplayPastUnstoredTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b, err := eventbus.New()
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.Publish(ctx, ev("u.stored")))
		for range 2000 { // more than the tail holds
			require.NoError(t, b.PublishAsync(ctx, ev("u.memory"), eventbus.WithoutPersist()))
		}
		require.NoError(t, b.Flush(ctx))
		sub, err := b.Subscribe(ctx, "u.*", eventbus.FromSeq(1))
		require.NoError(t, err)
		assert.Equal(t, "u.stored", recvWithin(t, sub, wait).Topic)
		synctest.Wait() // the catch-up goroutine has finished or sleeps
		require.False(t, sub.Stats().Lagging, "stuck catching up")
		require.NoError(t, b.Publish(ctx, ev("u.live"), eventbus.WithoutPersist()))
		assert.Equal(t, "u.live", recvWithin(t, sub, wait).Topic)
	})
}

// TestPublishHandsOverAtFullBlockMailbox: a synchronous Publish that does
// the loop's work itself never waits for a subscriber. At a Block mailbox
// with no room it hands the batch to the loop goroutine, so its ctx still
// bounds its wait, and the event is delivered once there is room.
func TestPublishHandsOverAtFullBlockMailbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := eventbus.New(eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
		sub, err := b.Subscribe(t.Context(), "full.*", eventbus.WithBuffer(1))
		require.NoError(t, err)
		require.NoError(t, b.Publish(t.Context(), ev("full.first")))

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		err = b.Publish(ctx, ev("full.second"))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "Publish waited for its ctx, no longer")

		// The loop goroutine carries on with it: both arrive, in order.
		assert.Equal(t, []string{"full.first", "full.second"}, topics(recvN(t, sub, 2, wait)))
		require.NoError(t, b.Publish(t.Context(), ev("full.third")))
		assert.Equal(t, "full.third", recvWithin(t, sub, wait).Topic)
		assert.Zero(t, sub.Stats().Dropped)
		require.NoError(t, b.Close())
	})
}

func TestReplay(t *testing.T) {
	ctx := t.Context()
	b := newBus(t)
	for i := range 10 {
		require.NoError(t, b.Publish(ctx, evp(fmt.Sprintf("r.%d", i%2), i)))
	}
	t.Run("from seq", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "r.0", eventbus.FromSeq(4))
		require.NoError(t, err)
		assert.Equal(t, []uint64{5, 7, 9}, seqs(recvN(t, sub, 3, wait)))
		require.NoError(t, sub.Close())
	})
	t.Run("from zero replays everything", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "r.*", eventbus.FromSeq(0))
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, seqs(recvN(t, sub, 10, wait)))
		require.NoError(t, sub.Close())
	})
	t.Run("since", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "r.1", eventbus.Since(time.Now().Add(-time.Hour)))
		require.NoError(t, err)
		assert.Equal(t, []uint64{2, 4, 6, 8, 10}, seqs(recvN(t, sub, 5, wait)))
		require.NoError(t, sub.Close())
	})
	t.Run("then live without gap or duplicate", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "r.*", eventbus.FromSeq(9))
		require.NoError(t, err)
		require.NoError(t, b.Publish(ctx, ev("r.live")))
		assert.Equal(t, []uint64{9, 10, 11}, seqs(recvN(t, sub, 3, wait)))
		require.NoError(t, sub.Close())
		assert.Empty(t, pending(sub))
	})
	t.Run("future seq waits for it", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "f", eventbus.FromSeq(1000))
		require.NoError(t, err)
		require.NoError(t, b.Publish(ctx, ev("f")))
		require.NoError(t, b.Flush(ctx))
		require.NoError(t, sub.Close())
		assert.Empty(t, pending(sub))
	})
}

func TestPersistFailure(t *testing.T) {
	store := &failingStore{Store: eventbus.NewMemoryStore()}
	errs := newErrSink()
	b := newBus(t, eventbus.WithStore(store), eventbus.WithErrorHandler(errs.handle))
	ctx := t.Context()
	sub, err := b.Subscribe(ctx, "*")
	require.NoError(t, err)

	store.setFail(true)
	err = b.Publish(ctx, ev("a"))
	require.ErrorIs(t, err, eventbus.ErrPersist)
	require.ErrorIs(t, err, errDiskFull)
	require.NoError(t, b.PublishAsync(ctx, ev("async")))
	reported := errs.next(t, eventbus.ErrPersist, wait)
	var ee *eventbus.EventError
	require.ErrorAs(t, reported, &ee)
	assert.Equal(t, "async", ee.Topic)
	require.NoError(t, b.Publish(ctx, ev("volatile"), eventbus.WithoutPersist()), "events not persisted still flow")
	assert.Equal(t, []string{"volatile"}, topics(pending(sub)), "failed events are not delivered")

	store.setFail(false)
	require.NoError(t, b.Publish(ctx, ev("b")))
	assert.Equal(t, []string{"b"}, topics(pending(sub)))
	require.NoError(t, store.Close())
}

func TestHandle(t *testing.T) {
	errs := newErrSink()
	b := newBus(t, eventbus.WithErrorHandler(errs.handle))
	ctx := t.Context()
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	sub, err := b.Handle(ctx, "job.*", func(ctx context.Context, e eventbus.Event) error {
		mu.Lock()
		seen = append(seen, e.Topic)
		mu.Unlock()
		switch e.Topic {
		case "job.fail":
			return errors.New("boom")
		case "job.panic":
			panic("kaboom")
		case "job.last":
			close(done)
		}
		return nil
	})
	require.NoError(t, err)
	for _, topic := range []string{"job.a", "job.fail", "job.b", "job.panic", "job.c", "job.last"} {
		require.NoError(t, b.Publish(ctx, ev(topic)))
	}
	<-done
	mu.Lock()
	assert.Equal(t, []string{"job.a", "job.fail", "job.b", "job.panic", "job.c", "job.last"}, seen)
	mu.Unlock()

	var ee *eventbus.EventError
	first := errs.next(t, eventbus.ErrHandler, wait)
	require.ErrorAs(t, first, &ee)
	assert.Equal(t, "job.fail", ee.Topic)
	assert.False(t, ee.ID.IsZero())
	second := errs.next(t, eventbus.ErrHandler, wait)
	var pe *eventbus.PanicError
	require.ErrorAs(t, second, &pe)
	assert.Equal(t, "kaboom", pe.Value)
	assert.NotEmpty(t, pe.Stack)

	st := sub.Stats()
	assert.Equal(t, uint64(6), st.Delivered)
	require.NoError(t, sub.Close())
	waitClosed(t, sub, wait)
}

func TestHandleFunc(t *testing.T) {
	errs := newErrSink()
	b := newBus(t, eventbus.WithErrorHandler(errs.handle))
	type progress struct{ Pct int }
	got := make(chan int, 10)
	_, err := eventbus.HandleFunc(b, t.Context(), "p", func(ctx context.Context, e eventbus.Event, p progress) error {
		got <- p.Pct
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(t.Context(), evp("p", "not an object")))
	require.NoError(t, b.Publish(t.Context(), evp("p", progress{Pct: 40})))
	assert.Equal(t, 40, <-got)
	reported := errs.next(t, eventbus.ErrInvalidPayload, wait)
	var ee *eventbus.EventError
	require.ErrorAs(t, reported, &ee)
	assert.Equal(t, "p", ee.Topic)
	_, err = eventbus.HandleFunc[progress](b, t.Context(), "p", nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidOption)
}

func TestPublishFromHandlerNoDeadlock(t *testing.T) {
	// A handler and a subscriber loop that publish synchronously, with
	// small mailboxes under the default policy, must never wedge the bus.
	b := newBus(t, eventbus.WithBufferSize(2), eventbus.WithQueueSize(2))
	ctx := t.Context()
	var handled atomic.Int64
	h, err := b.Handle(ctx, "ping.*", func(ctx context.Context, e eventbus.Event) error {
		handled.Add(1)
		return b.Publish(ctx, ev("pong."+e.Topic[len("ping."):]))
	})
	require.NoError(t, err)
	echo, err := b.Subscribe(ctx, "pong.*")
	require.NoError(t, err)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for e := range echo.C() {
			if err := b.Publish(ctx, ev("echo."+e.Topic)); err != nil {
				return
			}
		}
	}()
	for i := range 200 {
		require.NoError(t, b.Publish(ctx, ev(fmt.Sprintf("ping.%d", i))))
	}
	require.NoError(t, b.Close())
	<-loopDone
	// DropOldest loses events for the tiny handler mailbox; every ping was
	// either handled or counted.
	st := h.Stats()
	assert.Equal(t, uint64(200), st.Delivered)
	assert.Equal(t, int64(st.Delivered-st.Dropped), handled.Load())
}

func TestShutdown(t *testing.T) {
	t.Run("drains accepted events", func(t *testing.T) {
		b, err := eventbus.New()
		require.NoError(t, err)
		ctx := t.Context()
		sub, err := b.Subscribe(ctx, "*", eventbus.WithBuffer(5000))
		require.NoError(t, err)
		var handled atomic.Int64
		_, err = b.Handle(ctx, "*", func(ctx context.Context, e eventbus.Event) error {
			handled.Add(1)
			return nil
		}, eventbus.WithBuffer(5000))
		require.NoError(t, err)
		for range 3000 {
			require.NoError(t, b.PublishAsync(ctx, ev("a")))
		}
		require.NoError(t, b.Shutdown(ctx))
		assert.Equal(t, int64(3000), handled.Load(), "handlers finish their mailboxes")
		n := 0
		for range sub.C() {
			n++
		}
		assert.Equal(t, 3000, n)

		require.ErrorIs(t, b.Publish(ctx, ev("a")), eventbus.ErrClosed)
		require.ErrorIs(t, b.PublishAsync(ctx, ev("a")), eventbus.ErrClosed)
		require.ErrorIs(t, b.Flush(ctx), eventbus.ErrClosed)
		_, err = b.Subscribe(ctx, "a")
		require.ErrorIs(t, err, eventbus.ErrClosed)
		_, err = b.Query(ctx, eventbus.Query{})
		require.ErrorIs(t, err, eventbus.ErrClosed)
		require.NoError(t, b.Close(), "twice")
	})
	t.Run("racing publishers", func(t *testing.T) {
		// Acknowledged publishers do the loop's work themselves when it is
		// free; whatever any publisher got accepted before Shutdown closed
		// the bus is delivered, in each publisher's order.
		b, err := eventbus.New(eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
		sub, err := b.Subscribe(t.Context(), "race.*", eventbus.WithBuffer(1<<16))
		require.NoError(t, err)
		const publishers = 6
		accepted := make([][]int, publishers)
		var wg, running sync.WaitGroup
		running.Add(publishers)
		for p := range publishers {
			wg.Go(func() {
				counted := false // running is told once, even if this one stops early
				defer func() {
					if !counted {
						running.Done()
					}
				}()
				publish := b.Publish
				if p%2 == 1 {
					publish = b.PublishAsync
				}
				for n := 0; n < 5000; n++ {
					e := evp(fmt.Sprintf("race.%d", p), n)
					if err := publish(context.Background(), e); err != nil {
						assert.ErrorIs(t, err, eventbus.ErrClosed)
						return
					}
					accepted[p] = append(accepted[p], n)
					if n == 100 {
						running.Done()
						counted = true
					}
				}
			})
		}
		// The reader keeps reading across Shutdown: what waits behind C
		// is handed on as long as it is read.
		got := make([][]int, publishers)
		read := make(chan error, 1)
		go func() {
			for e := range sub.C() {
				var p, n int
				if _, err := fmt.Sscanf(e.Topic, "race.%d", &p); err != nil {
					read <- err
					return
				}
				if err := e.Decode(&n); err != nil {
					read <- err
					return
				}
				got[p] = append(got[p], n)
			}
			read <- nil
		}()
		running.Wait() // all are publishing
		require.NoError(t, b.Shutdown(t.Context()))
		wg.Wait()
		require.NoError(t, <-read)
		for p := range publishers {
			assert.Equal(t, accepted[p], got[p], "publisher %d", p)
		}
	})
	t.Run("concurrent callers", func(t *testing.T) {
		b, err := eventbus.New()
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { assert.NoError(t, b.Close()) })
		}
		wg.Wait()
	})
	t.Run("ctx ends first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, err := eventbus.New()
			require.NoError(t, err)
			started := make(chan struct{})
			cause := make(chan error, 1)
			var calls atomic.Int64
			_, err = b.Handle(t.Context(), "*", func(ctx context.Context, e eventbus.Event) error {
				if calls.Add(1) == 1 {
					close(started)
					<-ctx.Done()
					cause <- context.Cause(ctx)
				}
				return nil
			})
			require.NoError(t, err)
			for range 5 {
				require.NoError(t, b.Publish(t.Context(), ev("a")))
			}
			<-started
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			require.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
			require.ErrorIs(t, <-cause, eventbus.ErrClosed)
			require.NoError(t, b.Close())
			assert.Equal(t, int64(1), calls.Load(), "events left after the deadline are dropped")
		})
	})
}

func TestAuthorizer(t *testing.T) {
	var asked []eventbus.Access
	var mu sync.Mutex
	within := eventbus.AuthorizeWithin(func(principal string, action eventbus.Action) []string {
		switch {
		case principal == "admin":
			return []string{"*"}
		case action == eventbus.ActionPublish:
			return []string{"public.*", "chat." + principal}
		}
		return []string{"public.*", "chat.*"}
	})
	auth := eventbus.AuthorizerFunc(func(ctx context.Context, a eventbus.Access) error {
		mu.Lock()
		asked = append(asked, a)
		mu.Unlock()
		if a.Principal == "mallory" {
			return errors.New("banned") // not wrapping ErrForbidden
		}
		return within.Authorize(ctx, a)
	})
	b := newBus(t, eventbus.WithAuthorizer(auth))
	alice := eventbus.WithPrincipal(t.Context(), "alice")
	admin := eventbus.WithPrincipal(t.Context(), "admin")
	assert.Equal(t, "alice", eventbus.PrincipalFrom(alice))
	assert.Equal(t, "", eventbus.PrincipalFrom(t.Context()))

	t.Run("publish", func(t *testing.T) {
		tests := []struct {
			name  string
			ctx   context.Context
			topic string
			ok    bool
		}{
			{"below an allowed prefix", alice, "public.news", true},
			{"an allowed topic", alice, "chat.alice", true},
			{"another's topic", alice, "chat.bob", false},
			{"outside", alice, "secret", false},
			{"the prefix itself", alice, "public", false},
			{"admin anywhere", admin, "secret", true},
			{"no principal", t.Context(), "public.news", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, publish := range []func(context.Context, eventbus.Event, ...eventbus.PublishOption) error{b.Publish, b.PublishAsync} {
					err := publish(tt.ctx, ev(tt.topic))
					if tt.ok {
						require.NoError(t, err)
						continue
					}
					require.ErrorIs(t, err, eventbus.ErrForbidden)
				}
			})
		}
	})

	t.Run("subscribe", func(t *testing.T) {
		tests := []struct {
			name    string
			pattern string
			ok      bool
		}{
			{"allowed prefix", "public.*", true},
			{"deeper prefix", "public.a.*", true},
			{"one level below", "public.?", true},
			{"glob below", "chat.*.typing", true},
			{"exact below", "public.news", true},
			{"everything", "*", false},
			{"question mark bypass", "s?cret.*", false},
			{"inner star bypass", "*ecret*", false},
			{"denied prefix", "secret.*", false},
			{"wider prefix", "pub*", false},
			{"question mark crossing the dot", "public?news", false},
			{"first letter wild", "?ublic.*", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sub, err := b.Subscribe(alice, tt.pattern)
				if tt.ok {
					require.NoError(t, err)
					require.NoError(t, sub.Close())
					return
				}
				require.ErrorIs(t, err, eventbus.ErrForbidden)
				_, err = b.Subscribe(alice, tt.pattern, eventbus.FromSeq(1))
				require.ErrorIs(t, err, eventbus.ErrForbidden, "no replay of what cannot be subscribed")
			})
		}
	})

	sub, err := b.Subscribe(alice, "public.*")
	require.NoError(t, err)
	require.ErrorIs(t, sub.Add("*"), eventbus.ErrForbidden, "Add is checked with the subscription's principal")
	require.ErrorIs(t, sub.Add("s?cret.*"), eventbus.ErrForbidden)
	require.NoError(t, sub.Add("chat.*"))
	_, err = b.Subscribe(admin, "*")
	require.NoError(t, err)
	_, err = b.Subscribe(eventbus.WithPrincipal(t.Context(), "mallory"), "public.*")
	require.ErrorIs(t, err, eventbus.ErrForbidden, "other errors are wrapped in ErrForbidden")

	err = within.Authorize(t.Context(), eventbus.Access{Action: eventbus.ActionSubscribe, Principal: "alice", Pattern: "*ecret*"})
	require.EqualError(t, err, `eventbus: forbidden: principal "alice" may not subscribe to "*ecret*"`)
	err = within.Authorize(t.Context(), eventbus.Access{Action: eventbus.ActionPublish, Principal: "alice", Topic: "secret"})
	require.EqualError(t, err, `eventbus: forbidden: principal "alice" may not publish on "secret"`)
	require.ErrorIs(t, within.Authorize(t.Context(), eventbus.Access{Principal: "admin"}), eventbus.ErrForbidden, "an unknown action is denied")
	none := eventbus.AuthorizeWithin(nil)
	require.ErrorIs(t, none.Authorize(t.Context(), eventbus.Access{Action: eventbus.ActionPublish, Topic: "a"}), eventbus.ErrForbidden)

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, asked, eventbus.Access{Action: eventbus.ActionPublish, Principal: "alice", Topic: "secret"})
	assert.Contains(t, asked, eventbus.Access{Action: eventbus.ActionSubscribe, Principal: "alice", Pattern: "*"})
	assert.Equal(t, "publish", eventbus.ActionPublish.String())
	assert.Equal(t, "subscribe", eventbus.ActionSubscribe.String())
}

func TestPublisher(t *testing.T) {
	b := newBus(t)
	sub, err := b.Subscribe(t.Context(), "worker.*")
	require.NoError(t, err)
	p := b.Publisher("worker-7")
	e, err := p.Emit(t.Context(), eventbus.WorkerProgress, "worker.task.progress", map[string]int{"pct": 10})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), e.Seq)
	assert.Equal(t, "worker-7", e.Source)
	got := recvWithin(t, sub, wait)
	assert.Equal(t, e, got)

	pc := p.WithCorrelationID("job-1")
	_, err = pc.Emit(t.Context(), eventbus.WorkerComplete, "worker.task.complete", nil)
	require.NoError(t, err)
	assert.Equal(t, "job-1", recvWithin(t, sub, wait).CorrelationID)
	assert.Equal(t, "worker-7", pc.Source())
	_, err = p.Emit(t.Context(), eventbus.WorkerComplete, "worker..x", nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidTopic)
}

func TestSubscribersAndStats(t *testing.T) {
	b := newBus(t)
	ctx := t.Context()
	made := time.Now()
	a, err := b.Subscribe(ctx, "worker.*", eventbus.WithName("a"))
	require.NoError(t, err)
	madeBy := time.Now()
	require.NoError(t, a.Add("*"))
	_, err = b.Subscribe(ctx, "worker.*", eventbus.WithName("b"))
	require.NoError(t, err)
	_, err = b.Subscribe(ctx, "chat.*", eventbus.WithName("c"))
	require.NoError(t, err)

	infos := b.Subscribers("worker.task")
	names := map[string][]string{}
	for _, in := range infos {
		names[in.Name] = in.Patterns
		if in.Name == "a" {
			assert.False(t, in.Created.Before(made) || in.Created.After(madeBy), "Created %v", in.Created)
		}
	}
	assert.Equal(t, map[string][]string{"a": {"worker.*", "*"}, "b": {"worker.*"}}, names)
	assert.Nil(t, b.Subscribers("a..b"))

	require.NoError(t, b.Publish(ctx, ev("worker.task")))
	st := b.Stats()
	assert.Equal(t, 3, st.Subscriptions)
	assert.Equal(t, map[string]int{"worker.*": 2, "*": 1, "chat.*": 1}, st.Patterns)
	assert.Equal(t, uint64(1), st.Published)
	assert.Equal(t, uint64(2), st.Delivered)
	assert.Zero(t, st.QueueDepth)
	sst := a.Stats()
	assert.Equal(t, 1, sst.Pending)
	assert.Equal(t, uint64(1), sst.Delivered)
	assert.Positive(t, sst.LatencyMax)
	assert.LessOrEqual(t, sst.LatencyP50, sst.LatencyMax)
	// The histogram behind them: one event, whose latency is its sum and
	// its maximum, in the bucket whose bounds hold it.
	h := sst.Latency
	assert.Equal(t, uint64(1), h.Count())
	assert.Equal(t, sst.LatencyMax, h.Max)
	assert.Equal(t, h.Max, h.Sum)
	i := slices.IndexFunc(h.Buckets[:], func(c uint64) bool { return c > 0 })
	require.Positive(t, i)
	assert.LessOrEqual(t, h.Max, eventbus.HistogramBound(i))
	assert.Greater(t, h.Max, eventbus.HistogramBound(i-1))
}

func TestEpoch(t *testing.T) {
	store := eventbus.NewMemoryStore()
	b1 := newBus(t, eventbus.WithStore(store))
	require.NoError(t, b1.Publish(t.Context(), eventbus.Event{Type: eventbus.ChatMessage, Topic: "e.a"}))
	assert.Equal(t, uint64(1), b1.LastSeq())
	require.NoError(t, b1.Close())

	// A bus on the same store continues its numbering: same epoch.
	b2 := newBus(t, eventbus.WithStore(store))
	assert.Equal(t, b1.Epoch(), b2.Epoch())
	assert.Equal(t, uint64(1), b2.LastSeq())

	// A new store or no store starts numbering again: a new epoch.
	b3 := newBus(t)
	b4 := newBus(t, eventbus.WithStore(nil))
	assert.NotEmpty(t, b3.Epoch())
	assert.NotEqual(t, b1.Epoch(), b3.Epoch())
	assert.NotEqual(t, b3.Epoch(), b4.Epoch())
	assert.NotEmpty(t, b4.Epoch())
}

// TestLatencyCountsEveryDelivery: runs of events that share a batch, and
// so most often a latency, are counted in the histogram one run at a
// time; each delivery still counts once, and the sum is that of what was
// counted.
func TestLatencyCountsEveryDelivery(t *testing.T) {
	const n = 3000
	ctx := t.Context()
	b := newBus(t, eventbus.WithStore(nil))
	sub, err := b.Subscribe(ctx, "lat.*", eventbus.WithBuffer(n), eventbus.WithOverflow(eventbus.Block))
	require.NoError(t, err)
	for range n {
		require.NoError(t, b.PublishAsync(ctx, ev("lat.a")))
	}
	require.NoError(t, b.Flush(ctx))
	st := sub.Stats()
	assert.Equal(t, uint64(n), st.Delivered)
	h := st.Latency
	assert.Equal(t, uint64(n), h.Count(), "every delivery counted once")
	assert.GreaterOrEqual(t, h.Sum, h.Max)
	assert.LessOrEqual(t, h.Sum, time.Duration(n)*h.Max)
	// Each counted latency is above its bucket's lower bound, so the sum
	// is at least the sum of those bounds.
	var least time.Duration
	for i, c := range h.Buckets {
		if i > 0 {
			least += time.Duration(c) * eventbus.HistogramBound(i-1)
		}
	}
	assert.GreaterOrEqual(t, h.Sum, least)
}
