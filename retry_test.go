package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

func TestWithRetryInvalid(t *testing.T) {
	nop := func(context.Context, eventbus.Event) error { return nil }
	tests := []struct {
		name   string
		handle bool
		opt    eventbus.SubscribeOption
	}{
		{name: "retry on Subscribe", opt: eventbus.WithRetry(eventbus.Retry{Max: 3})},
		{name: "dead letter on Subscribe", opt: eventbus.WithDeadLetter("dead")},
		{name: "zero Max", handle: true, opt: eventbus.WithRetry(eventbus.Retry{})},
		{name: "negative Backoff", handle: true, opt: eventbus.WithRetry(eventbus.Retry{Max: 2, Backoff: -1})},
		{name: "negative MaxBackoff", handle: true, opt: eventbus.WithRetry(eventbus.Retry{Max: 2, MaxBackoff: -1})},
		{name: "MaxBackoff below Backoff", handle: true, opt: eventbus.WithRetry(eventbus.Retry{Max: 2, Backoff: time.Second, MaxBackoff: time.Millisecond})},
		{name: "invalid dead letter topic", handle: true, opt: eventbus.WithDeadLetter("a..b")},
		{name: "dead letter pattern", handle: true, opt: eventbus.WithDeadLetter("dead.*")},
	}
	bus := newBus(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.handle {
				_, err = bus.Handle(t.Context(), "a", nop, tt.opt)
			} else {
				_, err = bus.Subscribe(t.Context(), "a", tt.opt)
			}
			require.ErrorIs(t, err, eventbus.ErrInvalidOption)
		})
	}
}

// quietBus is a bus for a synctest bubble, reporting to errs.
func quietBus(t *testing.T, errs *errSink) *eventbus.Bus {
	bus, err := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)), eventbus.WithErrorHandler(errs.handle))
	require.NoError(t, err)
	return bus
}

func TestRetryTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errs := newErrSink()
		bus := quietBus(t, errs)
		type run struct {
			seq     uint64
			attempt int
			at      time.Duration
		}
		var mu sync.Mutex
		var runs []run
		start := time.Now()
		sub, err := bus.Handle(t.Context(), "job", func(ctx context.Context, e eventbus.Event) error {
			mu.Lock()
			runs = append(runs, run{e.Seq, eventbus.Attempt(ctx), time.Since(start)})
			mu.Unlock()
			if e.Seq == 1 && eventbus.Attempt(ctx) < 4 {
				return errors.New("not yet")
			}
			return nil
		}, eventbus.WithRetry(eventbus.Retry{Max: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}))
		require.NoError(t, err)
		require.NoError(t, bus.Publish(t.Context(), ev("job")))
		require.NoError(t, bus.Publish(t.Context(), ev("job")))
		time.Sleep(time.Second) // fake time: both events are done long before
		synctest.Wait()
		mu.Lock()
		require.Len(t, runs, 5)
		for i, want := range []struct {
			seq      uint64
			attempt  int
			min, max time.Duration // after the previous run
		}{
			{1, 1, 0, 0},
			{1, 2, 50 * time.Millisecond, 100 * time.Millisecond},
			{1, 3, 100 * time.Millisecond, 200 * time.Millisecond},
			{1, 4, 150 * time.Millisecond, 300 * time.Millisecond}, // 400ms capped at 300ms
			{2, 1, 0, 0}, // the next event waited: order kept
		} {
			r := runs[i]
			assert.Equal(t, want.seq, r.seq, "run %d", i)
			assert.Equal(t, want.attempt, r.attempt, "run %d", i)
			if i > 0 {
				gap := r.at - runs[i-1].at
				assert.True(t, gap >= want.min && gap <= want.max, "run %d: gap %v not in [%v, %v]", i, gap, want.min, want.max)
			}
		}
		mu.Unlock()
		st := sub.Stats()
		assert.Equal(t, uint64(2), st.Acked)
		assert.Equal(t, uint64(3), st.Retried)
		assert.Equal(t, uint64(0), st.DeadLettered)
		require.NoError(t, bus.Close())
		errs.mu.Lock()
		assert.Empty(t, errs.errs, "a retry that succeeds reports nothing")
		errs.mu.Unlock()
	})
}

func TestDeadLetter(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		retry    *eventbus.Retry
		fail     func() error
		attempts string
		retried  uint64
	}{
		{name: "after the last retry", retry: &eventbus.Retry{Max: 3}, fail: func() error { return boom }, attempts: "3", retried: 2},
		{name: "without retry the first error is the last", fail: func() error { return boom }, attempts: "1"},
		{name: "a panic", retry: &eventbus.Retry{Max: 2}, fail: func() error { panic("kaput") }, attempts: "2", retried: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := newErrSink()
			bus := newBus(t, eventbus.WithErrorHandler(errs.handle))
			dead, err := bus.Subscribe(t.Context(), "dead")
			require.NoError(t, err)
			opts := []eventbus.SubscribeOption{eventbus.WithDeadLetter("dead")}
			if tt.retry != nil {
				opts = append(opts, eventbus.WithRetry(*tt.retry))
			}
			sub, err := bus.Handle(t.Context(), "orders.*", func(context.Context, eventbus.Event) error { return tt.fail() }, opts...)
			require.NoError(t, err)
			e := evp("orders.new", map[string]int{"n": 1})
			e.Metadata = map[string]string{"traceparent": "x"}
			require.NoError(t, bus.Publish(t.Context(), e))
			got := recvWithin(t, dead, 5*time.Second)
			assert.Equal(t, "dead", got.Topic)
			assert.JSONEq(t, `{"n":1}`, string(got.Payload))
			assert.Equal(t, "orders.new", got.Metadata["eventbus-original-topic"])
			assert.Equal(t, tt.attempts, got.Metadata["eventbus-attempts"])
			assert.Contains(t, got.Metadata["eventbus-error"], "handler")
			assert.Equal(t, "x", got.Metadata["traceparent"])
			reported := errs.next(t, eventbus.ErrHandler, 5*time.Second)
			var ee *eventbus.EventError
			require.ErrorAs(t, reported, &ee)
			assert.Equal(t, "orders.new", ee.Topic)
			st := sub.Stats()
			assert.Equal(t, uint64(1), st.Acked)
			assert.Equal(t, tt.retried, st.Retried)
			assert.Equal(t, uint64(1), st.DeadLettered)
		})
	}
}

func TestRetryShutdownCancelsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errs := newErrSink()
		bus := quietBus(t, errs)
		var calls sync.WaitGroup
		calls.Add(1)
		sub, err := bus.Handle(t.Context(), "job", func(context.Context, eventbus.Event) error {
			calls.Done()
			return errors.New("down")
		}, eventbus.WithRetry(eventbus.Retry{Max: 10, Backoff: time.Hour}))
		require.NoError(t, err)
		require.NoError(t, bus.Publish(t.Context(), ev("job")))
		calls.Wait()
		synctest.Wait() // the runner waits in its backoff
		start := time.Now()
		require.NoError(t, bus.Close())
		assert.Zero(t, time.Since(start), "Shutdown did not wait for the backoff")
		st := sub.Stats()
		assert.Equal(t, uint64(0), st.Acked, "a cancelled retry is not acknowledged")
		assert.Equal(t, uint64(0), st.Retried)
		require.ErrorIs(t, errs.next(t, eventbus.ErrClosed, time.Second), eventbus.ErrHandler)
	})
}

func TestAttemptOutsideHandler(t *testing.T) {
	assert.Equal(t, 0, eventbus.Attempt(t.Context()))
}

func TestRetryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	bus := newBus(t, eventbus.WithStore(nil))
	done := make(chan struct{}, 1)
	_, err := bus.Handle(t.Context(), "job", func(context.Context, eventbus.Event) error {
		done <- struct{}{}
		return nil
	}, eventbus.WithRetry(eventbus.Retry{Max: 5, Backoff: time.Millisecond}), eventbus.WithDeadLetter("dead"))
	require.NoError(t, err)
	e := benchEvent("job")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		<-done
	})
	assert.LessOrEqual(t, allocs, 0.0, "allocations per event handled with WithRetry when nothing fails")
}

func ExampleWithRetry() {
	reported := make(chan error, 1)
	bus, _ := eventbus.New(eventbus.WithErrorHandler(func(err error) { reported <- err }), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	dead, _ := bus.Subscribe(ctx, "dead")
	_, _ = bus.Handle(ctx, "orders.*", func(ctx context.Context, e eventbus.Event) error {
		fmt.Println("attempt", eventbus.Attempt(ctx))
		return errors.New("payment service down")
	}, eventbus.WithRetry(eventbus.Retry{Max: 3, Backoff: time.Millisecond}), eventbus.WithDeadLetter("dead"))
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerProgress, Topic: "orders.new", Source: "example"})
	d := <-dead.C()
	fmt.Println(d.Topic, d.Metadata["eventbus-original-topic"], d.Metadata["eventbus-attempts"])
	fmt.Println("reported:", errors.Is(<-reported, eventbus.ErrHandler))
	_ = bus.Close()
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// dead orders.new 3
	// reported: true
}
