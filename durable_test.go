package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

// plainStore hides MemoryStore's CursorStore methods.
type plainStore struct{ eventbus.Store }

// countingStore counts cursor writes.
type countingStore struct {
	*eventbus.MemoryStore
	saves atomic.Int64
}

func (c *countingStore) SaveCursor(ctx context.Context, name string, seq uint64) error {
	c.saves.Add(1)
	return c.MemoryStore.SaveCursor(ctx, name, seq)
}

// openBus starts a bus on store that the test does not close for it.
func openBus(t *testing.T, store eventbus.Store, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	bus, err := eventbus.New(append([]eventbus.Option{eventbus.WithStore(store), eventbus.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	require.NoError(t, err)
	return bus
}

func TestDurableRefused(t *testing.T) {
	tests := []struct {
		name  string
		store eventbus.Store
		opt   eventbus.SubscribeOption
		want  error
	}{
		{name: "no store", store: nil, opt: eventbus.Durable("d"), want: eventbus.ErrNoStore},
		{name: "a store without cursors", store: plainStore{eventbus.NewMemoryStore()}, opt: eventbus.Durable("d"), want: eventbus.ErrNoStore},
		{name: "empty name", store: eventbus.NewMemoryStore(), opt: eventbus.Durable(""), want: eventbus.ErrInvalidOption},
		{name: "control character", store: eventbus.NewMemoryStore(), opt: eventbus.Durable("a\x00"), want: eventbus.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := newBus(t, eventbus.WithStore(tt.store))
			_, err := bus.Subscribe(t.Context(), "a", tt.opt)
			require.ErrorIs(t, err, tt.want)
		})
	}
	t.Run("Ack without Durable", func(t *testing.T) {
		bus := newBus(t)
		sub, err := bus.Subscribe(t.Context(), "a")
		require.NoError(t, err)
		require.ErrorIs(t, sub.Ack(ev("a")), eventbus.ErrInvalidOption)
	})
}

func TestDurableResumes(t *testing.T) {
	store := eventbus.NewMemoryStore()
	bus := openBus(t, store)
	sub, err := bus.Subscribe(t.Context(), "orders.*", eventbus.Durable("billing"))
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, bus.Publish(t.Context(), ev(fmt.Sprintf("orders.%d", i))))
		require.NoError(t, bus.Publish(t.Context(), ev("other"))) // not the consumer's: never holds the cursor back
	}
	got := recvN(t, sub, 10, 5*time.Second)
	require.NoError(t, sub.Ack(got[1])) // out of order: the cursor waits for got[0]
	assert.Equal(t, uint64(0), sub.Stats().Cursor)
	for _, e := range got[:6] {
		require.NoError(t, sub.Ack(e))
	}
	require.NoError(t, sub.Ack(got[0])) // twice: nothing
	// The cursor passes the next event too: it is not the consumer's.
	assert.Equal(t, got[5].Seq+1, sub.Stats().Cursor)
	assert.Equal(t, uint64(6), sub.Stats().Acked, "each once")
	require.NoError(t, bus.Close())

	// A restart: the first unacknowledged event comes again, then the rest,
	// then live ones, once each.
	bus = openBus(t, store)
	defer func() { require.NoError(t, bus.Close()) }()
	sub, err = bus.Subscribe(t.Context(), "orders.*", eventbus.Durable("billing"))
	require.NoError(t, err)
	require.NoError(t, bus.Publish(t.Context(), ev("orders.live")))
	again := recvN(t, sub, 5, 5*time.Second)
	assert.Equal(t, append(seqs(got[6:]), 21), seqs(again))
	for _, e := range again {
		require.NoError(t, sub.Ack(e))
	}
	require.Eventually(t, func() bool { return sub.Stats().Cursor == 21 }, 5*time.Second, time.Millisecond)
	assert.Empty(t, pending(sub))
}

func TestDurableHandle(t *testing.T) {
	store := &countingStore{MemoryStore: eventbus.NewMemoryStore()}
	bus := openBus(t, store, eventbus.WithErrorHandler(func(error) {}))
	var n atomic.Int64
	sub, err := bus.Handle(t.Context(), "jobs", func(_ context.Context, e eventbus.Event) error {
		n.Add(1)
		if e.Seq%10 == 0 {
			return errors.New("bad job") // the last attempt: acknowledged all the same
		}
		return nil
	}, eventbus.Durable("jobs"), eventbus.WithOverflow(eventbus.Block))
	require.NoError(t, err)
	for range 1000 {
		require.NoError(t, bus.PublishAsync(t.Context(), ev("jobs")))
	}
	require.NoError(t, bus.Flush(t.Context()))
	require.Eventually(t, func() bool { return n.Load() == 1000 }, 5*time.Second, time.Millisecond)
	require.NoError(t, bus.Close())
	assert.Equal(t, uint64(1000), sub.Stats().Cursor)
	assert.Less(t, store.saves.Load(), int64(1000/64+20), "cursor writes are batched")
	c, err := store.LoadCursor(t.Context(), "jobs")
	require.NoError(t, err)
	assert.Equal(t, uint64(1000), c, "Shutdown writes the cursor")

	bus = openBus(t, store)
	defer func() { require.NoError(t, bus.Close()) }()
	var redelivered atomic.Int64
	_, err = bus.Handle(t.Context(), "jobs", func(context.Context, eventbus.Event) error {
		redelivered.Add(1)
		return nil
	}, eventbus.Durable("jobs"))
	require.NoError(t, err)
	require.NoError(t, bus.Flush(t.Context()))
	assert.Zero(t, redelivered.Load(), "a clean restart redelivers nothing acknowledged")
}

func TestDurableShutdownDuringBackoffRedelivers(t *testing.T) {
	store := eventbus.NewMemoryStore()
	bus := openBus(t, store, eventbus.WithErrorHandler(func(error) {}))
	failed := make(chan struct{})
	_, err := bus.Handle(t.Context(), "jobs", func(_ context.Context, e eventbus.Event) error {
		if e.Seq == 2 {
			close(failed)
			return errors.New("down")
		}
		return nil
	}, eventbus.Durable("jobs"), eventbus.WithRetry(eventbus.Retry{Max: 5, Backoff: time.Hour}))
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, bus.Publish(t.Context(), ev("jobs")))
	}
	<-failed
	require.NoError(t, bus.Close())

	bus = openBus(t, store)
	defer func() { require.NoError(t, bus.Close()) }()
	var mu sync.Mutex
	var got []uint64
	_, err = bus.Handle(t.Context(), "jobs", func(_ context.Context, e eventbus.Event) error {
		mu.Lock()
		got = append(got, e.Seq)
		mu.Unlock()
		return nil
	}, eventbus.Durable("jobs"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	}, 5*time.Second, time.Millisecond)
	mu.Lock()
	assert.Equal(t, []uint64{2, 3}, got, "the cancelled event and those after it come again")
	mu.Unlock()
}

func TestDurableQueueGroup(t *testing.T) {
	store := eventbus.NewMemoryStore()
	run := func(workers, jobs int) (handled map[uint64]int, subs []*eventbus.Subscription) {
		bus := openBus(t, store)
		var mu sync.Mutex
		handled = map[uint64]int{}
		for range workers {
			s, err := bus.Handle(t.Context(), "jobs.*", func(_ context.Context, e eventbus.Event) error {
				mu.Lock()
				handled[e.Seq]++
				mu.Unlock()
				return nil
			}, eventbus.Durable("pool"), eventbus.WithQueueGroup("pool"), eventbus.WithOverflow(eventbus.Block))
			require.NoError(t, err)
			subs = append(subs, s)
		}
		for i := range jobs {
			require.NoError(t, bus.PublishAsync(t.Context(), ev(fmt.Sprintf("jobs.%d", i))))
		}
		require.NoError(t, bus.Flush(t.Context()))
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(handled) == jobs
		}, 5*time.Second, time.Millisecond)
		require.NoError(t, bus.Close())
		return handled, subs
	}
	first, subs := run(3, 300)
	for seq, n := range first {
		require.Equal(t, 1, n, "job %d", seq)
	}
	var acked uint64
	for _, s := range subs {
		assert.Equal(t, uint64(300), s.Stats().Cursor, "one cursor for the pool")
		acked += s.Stats().Acked
	}
	assert.Equal(t, uint64(300), acked)
	second, _ := run(2, 100)
	for seq, n := range second {
		require.Equal(t, 1, n, "job %d", seq)
		require.Greater(t, seq, uint64(300), "nothing acknowledged comes again")
	}
}

func ExampleDurable() {
	store := eventbus.NewMemoryStore() // or sqlitestore, to survive the process
	bus, _ := eventbus.New(eventbus.WithStore(store))
	ctx := context.Background()
	sub, _ := bus.Subscribe(ctx, "orders.*", eventbus.Durable("billing"))
	for _, t := range []string{"orders.1", "orders.2", "orders.3"} {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerProgress, Topic: t, Source: "example"})
	}
	_ = sub.Ack(<-sub.C()) // orders.1 is done; the others are not
	_ = bus.Close()

	// After a restart, the consumer resumes after its cursor.
	bus, _ = eventbus.New(eventbus.WithStore(store))
	sub, _ = bus.Subscribe(ctx, "orders.*", eventbus.Durable("billing"))
	fmt.Println((<-sub.C()).Topic)
	fmt.Println((<-sub.C()).Topic)
	_ = bus.Close()
	// Output:
	// orders.2
	// orders.3
}

// TestDurableProperty acknowledges a random subset of a durable
// subscription's events in a random order, restarts the bus on the same
// store, and checks that exactly the matching events after the longest
// acknowledged prefix come again, in order: none acknowledged in that
// prefix, none lost.
func TestDurableProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		store := eventbus.NewMemoryStore()
		quiet := eventbus.WithLogger(slog.New(slog.DiscardHandler))
		bus, err := eventbus.New(eventbus.WithStore(store), quiet)
		require.NoError(t, err)
		sub, err := bus.Subscribe(context.Background(), "a.*", eventbus.Durable("d"))
		require.NoError(t, err)
		topics := rapid.SliceOfN(rapid.SampledFrom([]string{"a.x", "a.y", "b"}), 1, 60).Draw(t, "topics")
		matching := []uint64{}
		for i, topic := range topics {
			require.NoError(t, bus.Publish(context.Background(), ev(topic)))
			if topic != "b" {
				matching = append(matching, uint64(i+1))
			}
		}
		got := make([]eventbus.Event, 0, len(matching))
		for range matching {
			got = append(got, <-sub.C())
		}
		require.Equal(t, matching, seqs(got))
		acked := map[uint64]bool{}
		order := rapid.Permutation(indexes(len(got))).Draw(t, "order")
		n := rapid.IntRange(0, len(order)).Draw(t, "acks")
		for _, i := range order[:n] {
			require.NoError(t, sub.Ack(got[i]))
			acked[got[i].Seq] = true
		}
		require.NoError(t, bus.Close())

		want := []uint64{} // the matching events after the acknowledged prefix
		prefix := true
		for _, seq := range matching {
			prefix = prefix && acked[seq]
			if !prefix {
				want = append(want, seq)
			}
		}
		bus, err = eventbus.New(eventbus.WithStore(store), quiet)
		require.NoError(t, err)
		defer func() { require.NoError(t, bus.Close()) }()
		sub, err = bus.Subscribe(context.Background(), "a.*", eventbus.Durable("d"))
		require.NoError(t, err)
		again := make([]uint64, 0, len(want))
		for range want {
			again = append(again, (<-sub.C()).Seq)
		}
		require.NoError(t, bus.Flush(context.Background()))
		require.Equal(t, want, again)
		select {
		case e := <-sub.C():
			t.Fatalf("event %d came again beyond those", e.Seq)
		case <-time.After(10 * time.Millisecond):
		}
	})
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
