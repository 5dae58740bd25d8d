package eventbustest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/eventbustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records what the helpers report instead of failing the test, and
// runs its cleanups when asked.
type fakeTB struct {
	mu       sync.Mutex
	errors   []string
	fatals   []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// cleanup runs the cleanups, last registered first, as testing does.
func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// newFake returns a fakeTB whose cleanups run when t ends (if the test did
// not run them itself).
func newFake(t *testing.T) *fakeTB {
	f := &fakeTB{}
	t.Cleanup(f.cleanup)
	return f
}

// pub publishes an acknowledged event; payload is marshalled.
func pub(t *testing.T, bus *eventbus.Bus, typ eventbus.EventType, topic string, payload any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	require.NoError(t, err)
	require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: typ, Topic: topic, Payload: raw, Source: "test"}))
}

func TestExpect(t *testing.T) {
	bus := eventbustest.New(t, eventbus.WithStore(nil))
	rec := eventbustest.Record(t, bus, "worker.*")
	pub(t, bus, eventbus.WorkerSpawned, "worker.1", map[string]int{"n": 1})
	pub(t, bus, eventbus.WorkerProgress, "worker.1", map[string]int{"n": 2})
	pub(t, bus, eventbus.ChatMessage, "chat.room", nil) // not recorded
	pub(t, bus, eventbus.WorkerComplete, "worker.1", map[string]int{"n": 3})

	// Others may come between.
	eventbustest.Expect(t, rec, eventbustest.Type(eventbus.WorkerSpawned), eventbustest.Type(eventbus.WorkerComplete))
	assert.Len(t, rec.Events(), 3)

	// The next Expect starts after what the last one consumed, and waits
	// for an event published after it started.
	go func() {
		_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.WorkerFailed, Topic: "worker.2", Source: "test"})
	}()
	eventbustest.Expect(t, rec, eventbustest.All(eventbustest.Type(eventbus.WorkerFailed), eventbustest.Topic("worker.2")))
}

func TestExpectExactly(t *testing.T) {
	bus := eventbustest.New(t, eventbus.WithStore(nil))
	rec := eventbustest.Record(t, bus, "a.*")
	pub(t, bus, eventbus.UserInput, "a.1", "x")
	pub(t, bus, eventbus.UserCommand, "a.2", "y")
	eventbustest.ExpectExactly(t, rec,
		eventbustest.Topic("a.1"),
		eventbustest.Payload(func(p json.RawMessage) bool { return string(p) == `"y"` }))
	pub(t, bus, eventbus.UserInput, "a.3", nil)
	eventbustest.ExpectExactly(t, rec, eventbustest.Payload(func(p json.RawMessage) bool { return string(p) == "null" }))
	eventbustest.ExpectExactly(t, rec) // nothing more arrived
}

// failed runs f with a fake TB and returns its single Fatalf message.
func failed(t *testing.T, f func(tb *fakeTB)) string {
	t.Helper()
	fake := newFake(t)
	f(fake)
	require.Len(t, fake.fatals, 1, "Fatalf calls: %q", fake.fatals)
	assert.Empty(t, fake.errors)
	return fake.fatals[0]
}

func TestExpectFailure(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder)
		want []string
	}{
		{
			name: "Expect times out",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				pub(t, bus, eventbus.WorkerSpawned, "w.1", map[string]string{"job": "index"})
				pub(t, bus, eventbus.WorkerProgress, "w.1", 50)
				eventbustest.Expect(tb, rec, eventbustest.Type(eventbus.WorkerSpawned), eventbustest.Type(eventbus.WorkerComplete))
			},
			want: []string{
				`eventbustest.Expect on "w.*": matcher 2, Type(worker_complete), not matched within 50ms`,
				"1. Type(worker_spawned): matched event #1",
				"2. Type(worker_complete): not matched",
				"arrived (2):",
				`#1 seq=1 topic=w.1 type=worker_spawned source="test" payload={"job":"index"}`,
				`#2 seq=2 topic=w.1 type=worker_progress source="test" payload=50`,
			},
		},
		{
			name: "Expect with nothing arrived",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				eventbustest.Expect(tb, rec, eventbustest.Topic("w.9"))
			},
			want: []string{`matcher 1, Topic("w.9"), not matched within 50ms`, "no event arrived"},
		},
		{
			name: "Expect in the wrong order",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				pub(t, bus, eventbus.WorkerComplete, "w.1", nil)
				pub(t, bus, eventbus.WorkerSpawned, "w.1", nil)
				eventbustest.Expect(tb, rec, eventbustest.Type(eventbus.WorkerSpawned), eventbustest.Type(eventbus.WorkerComplete))
			},
			want: []string{"1. Type(worker_spawned): matched event #2", "2. Type(worker_complete): not matched", "#1 seq=1 topic=w.1 type=worker_complete"},
		},
		{
			name: "ExpectExactly mismatch",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				pub(t, bus, eventbus.WorkerSpawned, "w.1", nil)
				pub(t, bus, eventbus.WorkerProgress, "w.1", nil)
				eventbustest.ExpectExactly(tb, rec, eventbustest.Type(eventbus.WorkerSpawned), eventbustest.Type(eventbus.WorkerComplete))
			},
			want: []string{`eventbustest.ExpectExactly on "w.*": event #2 does not match matcher 2, Type(worker_complete)`, "type=worker_progress"},
		},
		{
			name: "ExpectExactly extra event",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				pub(t, bus, eventbus.WorkerSpawned, "w.1", nil)
				require.NoError(t, bus.PublishAsync(t.Context(), eventbus.Event{Type: eventbus.WorkerFailed, Topic: "w.2", Source: "test"}))
				eventbustest.ExpectExactly(tb, rec, eventbustest.Type(eventbus.WorkerSpawned))
			},
			want: []string{"1 more event(s) arrived than the 1 expected", "#2 seq=2 topic=w.2 type=worker_failed"},
		},
		{
			name: "subscription ended",
			run: func(t *testing.T, tb *fakeTB, bus *eventbus.Bus, rec *eventbustest.Recorder) {
				rec.SetTimeout(time.Hour) // the end, not the timeout, stops it
				pub(t, bus, eventbus.WorkerSpawned, "w.1", nil)
				require.NoError(t, bus.Close())
				eventbustest.Expect(tb, rec, eventbustest.Type(eventbus.WorkerSpawned), eventbustest.Type(eventbus.WorkerComplete))
			},
			want: []string{"the recorder's subscription ended", "before matcher 2, Type(worker_complete), matched", "#1 seq=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := failed(t, func(tb *fakeTB) {
				bus := eventbustest.New(t, eventbus.WithStore(nil))
				rec := eventbustest.Record(t, bus, "w.*")
				rec.SetTimeout(50 * time.Millisecond)
				tt.run(t, tb, bus, rec)
			})
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("subscription left open", func(t *testing.T) {
		fake := newFake(t)
		bus := eventbustest.New(fake, eventbus.WithStore(nil))
		eventbustest.Record(fake, bus, "recorded.*") // closed by its own cleanup
		_, err := bus.Subscribe(context.Background(), "left.open")
		require.NoError(t, err)
		_, err = bus.Subscribe(context.Background(), "left.open")
		require.NoError(t, err)
		closed, err := bus.Subscribe(context.Background(), "closed")
		require.NoError(t, err)
		require.NoError(t, closed.Close())
		fake.cleanup()
		require.Len(t, fake.errors, 1)
		assert.Contains(t, fake.errors[0], "left 2 subscription(s) open")
		assert.Contains(t, fake.errors[0], `"left.open"×2`)
		assert.NotContains(t, fake.errors[0], "recorded")
		_, err = bus.Subscribe(context.Background(), "x")
		assert.ErrorIs(t, err, eventbus.ErrClosed, "the bus is shut down at cleanup")
	})
	t.Run("subscriptions ended by their ctx", func(t *testing.T) {
		fake := newFake(t)
		bus := eventbustest.New(fake, eventbus.WithStore(nil))
		ctx, cancel := context.WithCancel(context.Background())
		for range 3 {
			_, err := bus.Subscribe(ctx, "ctx.bound")
			require.NoError(t, err)
		}
		_, err := bus.Handle(ctx, "ctx.handled", func(context.Context, eventbus.Event) error { return nil })
		require.NoError(t, err)
		cancel() // as t.Context() is cancelled just before cleanup
		fake.cleanup()
		assert.Empty(t, fake.errors)
		assert.Empty(t, fake.fatals)
	})
	t.Run("bad option", func(t *testing.T) {
		fake := newFake(t)
		bus := eventbustest.New(fake, eventbus.WithBufferSize(0))
		assert.Nil(t, bus)
		require.Len(t, fake.fatals, 1)
		assert.Contains(t, fake.fatals[0], "WithBufferSize")
	})
	t.Run("bad pattern", func(t *testing.T) {
		fake := newFake(t)
		bus := eventbustest.New(fake)
		assert.Nil(t, eventbustest.Record(fake, bus, "a..b"))
		require.Len(t, fake.fatals, 1)
		assert.Contains(t, fake.fatals[0], `eventbustest.Record("a..b")`)
	})
}

func TestMatchers(t *testing.T) {
	e := eventbus.Event{Type: eventbus.ChatMessage, Topic: "chat.room1", Payload: json.RawMessage(`{"text":"hi"}`), Source: "u"}
	isHi := func(p json.RawMessage) bool { return strings.Contains(string(p), `"hi"`) }
	tests := []struct {
		name  string
		m     eventbustest.Matcher
		match bool
		str   string
	}{
		{name: "type", m: eventbustest.Type(eventbus.ChatMessage), match: true, str: "Type(chat_message)"},
		{name: "other type", m: eventbustest.Type(eventbus.ChatTyping), match: false, str: "Type(chat_typing)"},
		{name: "exact topic", m: eventbustest.Topic("chat.room1"), match: true, str: `Topic("chat.room1")`},
		{name: "topic pattern", m: eventbustest.Topic("chat.*"), match: true},
		{name: "other topic", m: eventbustest.Topic("chat.room2"), match: false},
		{name: "invalid pattern", m: eventbustest.Topic("chat..x"), match: false, str: "matches nothing"},
		{name: "payload", m: eventbustest.Payload(isHi), match: true, str: "Payload(func)"},
		{name: "payload refused", m: eventbustest.Payload(func(json.RawMessage) bool { return false }), match: false},
		{name: "all", m: eventbustest.All(eventbustest.Type(eventbus.ChatMessage), eventbustest.Topic("chat.*")), match: true,
			str: `All(Type(chat_message), Topic("chat.*"))`},
		{name: "all, one fails", m: eventbustest.All(eventbustest.Type(eventbus.ChatMessage), eventbustest.Topic("x")), match: false},
		{name: "all of none", m: eventbustest.All(), match: true},
		{name: "func", m: eventbustest.Func("from u", func(e eventbus.Event) bool { return e.Source == "u" }), match: true, str: "from u"},
		{name: "zero", m: eventbustest.Matcher{}, match: false, str: "matches nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.match, tt.m.Match(e))
			if tt.str != "" {
				assert.Contains(t, tt.m.String(), tt.str)
			}
		})
	}
	t.Run("nil payload is null", func(t *testing.T) {
		var got string
		eventbustest.Payload(func(p json.RawMessage) bool { got = string(p); return true }).Match(eventbus.Event{})
		assert.Equal(t, "null", got)
	})
}
