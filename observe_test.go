package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

func TestSite(t *testing.T) {
	bus := newBus(t)
	nop := func(context.Context, eventbus.Event) error { return nil }
	sub, err := bus.Subscribe(t.Context(), "a.*") // line A
	require.NoError(t, err)
	h, err := bus.Handle(t.Context(), "a.*", nop)
	require.NoError(t, err)
	hf, err := eventbus.HandleFunc(bus, t.Context(), "a.*", func(context.Context, eventbus.Event, int) error { return nil })
	require.NoError(t, err)
	tests := []struct {
		name string
		sub  *eventbus.Subscription
	}{{"subscribe", sub}, {"handle", h}, {"handlefunc", hf}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := tt.sub.Site()
			assert.True(t, strings.HasPrefix(site, "observe_test.go:"), site)
			assert.Equal(t, site, tt.sub.Stats().Site)
		})
	}
	assert.NotEqual(t, sub.Site(), h.Site())
	infos := bus.Subscriptions()
	require.Len(t, infos, 3)
	for i, s := range []*eventbus.Subscription{sub, h, hf} {
		assert.Equal(t, s.ID(), infos[i].ID)
		assert.Equal(t, s.Site(), infos[i].Site)
		assert.Equal(t, eventbus.DefaultBufferSize, infos[i].Stats.Buffer)
	}
	require.Len(t, bus.Subscribers("a.b"), 3)
	assert.Equal(t, sub.Site(), bus.Subscribers("a.b")[0].Site)
}

func TestMiddleware(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	mark := func(name string) func(eventbus.HandlerFunc) eventbus.HandlerFunc {
		return func(next eventbus.HandlerFunc) eventbus.HandlerFunc {
			return func(ctx context.Context, e eventbus.Event) error {
				mu.Lock()
				trace = append(trace, name)
				mu.Unlock()
				return next(ctx, e)
			}
		}
	}
	errs := make(chan error, 4)
	bus := newBus(t, eventbus.WithMiddleware(mark("bus1"), mark("bus2")),
		eventbus.WithErrorHandler(func(err error) { errs <- err }))
	done := make(chan struct{}, 1)
	_, err := bus.Handle(t.Context(), "a", func(ctx context.Context, e eventbus.Event) error {
		assert.NotNil(t, eventbus.SubscriptionFrom(ctx))
		mu.Lock()
		trace = append(trace, "handler")
		mu.Unlock()
		done <- struct{}{}
		return nil
	}, eventbus.WithMiddleware(mark("sub1"), nil, mark("sub2")))
	require.NoError(t, err)
	// A plain subscription is unaffected; another handler gets only the bus's.
	_, err = bus.Subscribe(t.Context(), "a", eventbus.WithMiddleware(mark("ignored")))
	require.NoError(t, err)
	require.NoError(t, bus.Publish(t.Context(), ev("a")))
	<-done
	mu.Lock()
	assert.Equal(t, []string{"bus1", "bus2", "sub1", "sub2", "handler"}, trace)
	mu.Unlock()

	t.Run("panic in middleware is recovered", func(t *testing.T) {
		bad := func(eventbus.HandlerFunc) eventbus.HandlerFunc {
			return func(context.Context, eventbus.Event) error { panic("boom") }
		}
		_, err := bus.Handle(t.Context(), "b", func(context.Context, eventbus.Event) error { return nil }, eventbus.WithMiddleware(bad))
		require.NoError(t, err)
		require.NoError(t, bus.Publish(t.Context(), ev("b")))
		select {
		case err := <-errs:
			require.ErrorIs(t, err, eventbus.ErrHandler)
		case <-time.After(5 * time.Second):
			t.Fatal("no report")
		}
	})
}

func TestPublishHook(t *testing.T) {
	var topics []string
	bus := newBus(t, eventbus.WithPublishHook(func(ctx context.Context, e *eventbus.Event) {
		topics = append(topics, e.Topic)
		if e.Metadata == nil {
			e.Metadata = map[string]string{}
		}
		e.Metadata["hooked"] = "yes"
		e.Topic = strings.TrimPrefix(e.Topic, "raw.")
	}))
	sub, err := bus.Subscribe(t.Context(), "*")
	require.NoError(t, err)
	tests := []struct {
		name string
		meta map[string]string
		want map[string]string
	}{
		{"nil metadata", nil, map[string]string{"hooked": "yes"}},
		{"caller's map unchanged", map[string]string{"k": "v"}, map[string]string{"k": "v", "hooked": "yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ev("raw.x")
			e.Metadata = tt.meta
			var before map[string]string
			if tt.meta != nil {
				before = map[string]string{"k": "v"}
			}
			require.NoError(t, bus.Publish(t.Context(), e))
			got := recvWithin(t, sub, 5*time.Second)
			assert.Equal(t, "x", got.Topic)
			assert.Equal(t, tt.want, got.Metadata)
			assert.Equal(t, before, tt.meta)
		})
	}
	t.Run("runs before validation", func(t *testing.T) {
		// The hook makes an invalid topic valid.
		require.NoError(t, bus.PublishAsync(t.Context(), ev("raw.y")))
		assert.Equal(t, "y", recvWithin(t, sub, 5*time.Second).Topic)
		_, err := bus.Publisher("p").Emit(t.Context(), eventbus.WorkerProgress, "raw.z", nil)
		require.NoError(t, err)
		assert.Equal(t, "z", recvWithin(t, sub, 5*time.Second).Topic)
	})
	assert.Equal(t, []string{"raw.x", "raw.x", "raw.y", "raw.z"}, topics)
}

func TestAddHooks(t *testing.T) {
	bus := newBus(t)
	calls := make(chan string, 8)
	_, err := bus.Handle(t.Context(), "a", func(context.Context, eventbus.Event) error { calls <- "handler"; return nil })
	require.NoError(t, err)
	remove := bus.AddHooks(eventbus.Hooks{
		Publish: func(_ context.Context, e *eventbus.Event) { calls <- "publish" },
		Middleware: func(next eventbus.HandlerFunc) eventbus.HandlerFunc {
			return func(ctx context.Context, e eventbus.Event) error { calls <- "mw"; return next(ctx, e) }
		},
	})
	require.NoError(t, bus.Publish(t.Context(), ev("a")))
	assert.Equal(t, "publish", <-calls)
	assert.Equal(t, "mw", <-calls)
	assert.Equal(t, "handler", <-calls)
	remove()
	remove()
	require.NoError(t, bus.Publish(t.Context(), ev("a")))
	assert.Equal(t, "handler", <-calls)
}

// TestPublishStart: a PublishStart hook's end runs once, when the
// publish returns, with its error; ends run last first.
func TestPublishStart(t *testing.T) {
	bus := newBus(t)
	sub, err := bus.Subscribe(t.Context(), "a.*", eventbus.WithBuffer(8))
	require.NoError(t, err)
	var log []string
	var errs []error
	start := func(name string) func(context.Context, *eventbus.Event) func(error) {
		return func(_ context.Context, e *eventbus.Event) func(error) {
			log = append(log, name+" start")
			if e.Topic == "a.no-end" {
				return nil
			}
			return func(err error) {
				// A Publish has handed the event over by now.
				log = append(log, fmt.Sprintf("%s end, %d delivered", name, sub.Stats().Delivered))
				errs = append(errs, err)
			}
		}
	}
	defer bus.AddHooks(eventbus.Hooks{PublishStart: start("outer")})()
	defer bus.AddHooks(eventbus.Hooks{PublishStart: start("inner")})()

	tests := []struct {
		name    string
		publish func(context.Context, eventbus.Event, ...eventbus.PublishOption) error
		topic   string
		want    []string
		wantErr error
	}{
		{"publish", bus.Publish, "a.b", []string{"outer start", "inner start", "inner end, 1 delivered", "outer end, 1 delivered"}, nil},
		{"refused", bus.Publish, "a..b", []string{"outer start", "inner start", "inner end, 1 delivered", "outer end, 1 delivered"}, eventbus.ErrInvalidTopic},
		{"no end", bus.Publish, "a.no-end", []string{"outer start", "inner start"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, errs = nil, nil
			err := tt.publish(t.Context(), ev(tt.topic))
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.want, log)
			for _, e := range errs {
				assert.Equal(t, err, e, "the end gets the publish's error")
			}
		})
	}
	t.Run("async", func(t *testing.T) {
		log, errs = nil, nil
		require.NoError(t, bus.PublishAsync(t.Context(), ev("a.c")))
		require.Len(t, log, 4, "the ends ran before PublishAsync returned")
		assert.Equal(t, []error{nil, nil}, errs)
	})
}

func TestHistogramBound(t *testing.T) {
	tests := []struct {
		name   string
		bucket int
		want   time.Duration
	}{
		{"zero", 0, 0},
		{"one ns", 1, 1},
		{"up to 3 ns", 2, 3},
		{"about a microsecond", 10, 1023},
		{"last bounded", eventbus.HistogramBuckets - 2, 1<<38 - 1},
		{"last", eventbus.HistogramBuckets - 1, time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, eventbus.HistogramBound(tt.bucket))
		})
	}
}

func TestStall(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		run     time.Duration
		want    int // reports: stalled then recovered
	}{
		{"quick handler", 10 * time.Second, time.Second, 0},
		{"stalls and recovers", 10 * time.Second, 30 * time.Second, 2},
		{"watch off", 0, time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var got []*eventbus.StallError
				opts := []eventbus.Option{eventbus.WithErrorHandler(func(err error) {
					var se *eventbus.StallError
					if errors.As(err, &se) {
						mu.Lock()
						got = append(got, se)
						mu.Unlock()
					}
				})}
				if tt.timeout != eventbus.DefaultStallTimeout {
					opts = append(opts, eventbus.WithStallTimeout(tt.timeout))
				}
				bus := newBus(t, opts...)
				release := make(chan struct{})
				sub, err := bus.Handle(t.Context(), "slow", func(ctx context.Context, e eventbus.Event) error {
					<-release
					return nil
				}, eventbus.WithName("slowpoke"))
				require.NoError(t, err)
				e := ev("slow")
				e.Metadata = map[string]string{"x": "1"}
				require.NoError(t, bus.Publish(t.Context(), e))
				time.Sleep(tt.run) // fake time inside the bubble
				synctest.Wait()
				if tt.want > 0 {
					assert.GreaterOrEqual(t, sub.Stats().StalledFor, tt.timeout)
				} else {
					assert.Zero(t, sub.Stats().StalledFor)
				}
				close(release)
				synctest.Wait()
				require.NoError(t, bus.Close())
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, got, tt.want)
				if tt.want == 0 {
					return
				}
				assert.False(t, got[0].Recovered)
				assert.True(t, got[1].Recovered)
				for _, se := range got {
					assert.Equal(t, "slowpoke", se.Subscription)
					assert.Equal(t, sub.Site(), se.Site)
					assert.Equal(t, "slow", se.Topic)
					assert.False(t, se.EventID.IsZero())
					assert.Contains(t, se.Error(), `"slowpoke"`)
					assert.ErrorIs(t, se, eventbus.ErrStalled)
				}
				assert.GreaterOrEqual(t, got[0].Duration, tt.timeout)
				assert.Less(t, got[0].Duration, tt.timeout+time.Second+time.Millisecond)
				assert.Equal(t, tt.run, got[1].Duration)
			})
		})
	}
	t.Run("invalid", func(t *testing.T) {
		_, err := eventbus.New(eventbus.WithStallTimeout(-1))
		require.ErrorIs(t, err, eventbus.ErrInvalidOption)
	})
}

func TestSelfDeadlock(t *testing.T) {
	tests := []struct {
		name    string
		opts    []eventbus.SubscribeOption
		topic   string
		ctxOf   string // "handler" or "background"
		wantErr bool
	}{
		{"own full Block mailbox", []eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block)}, "loop.b", "handler", true},
		{"a topic it does not match", []eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block)}, "other", "handler", false},
		{"with a block timeout", []eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block), eventbus.WithBlockTimeout(time.Millisecond)}, "loop.b", "handler", false},
		{"DropOldest", nil, "loop.b", "handler", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := newBus(t)
			release := make(chan struct{})
			result := make(chan error, 1)
			first := true
			_, err := bus.Handle(t.Context(), "loop.*", func(ctx context.Context, e eventbus.Event) error {
				if !first {
					return nil
				}
				first = false
				<-release
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				result <- bus.Publish(pctx, ev(tt.topic))
				return nil
			}, append([]eventbus.SubscribeOption{eventbus.WithBuffer(1), eventbus.WithName("looper")}, tt.opts...)...)
			require.NoError(t, err)
			require.NoError(t, bus.Publish(t.Context(), ev("loop.a"))) // the handler takes it and waits
			require.NoError(t, bus.Publish(t.Context(), ev("loop.a"))) // fills the mailbox
			close(release)
			err = <-result
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrDeadlock)
			assert.Contains(t, err.Error(), `"looper"`)
			assert.Contains(t, err.Error(), "observe_test.go:")
		})
	}
}
