package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	require.TestingT
	Helper()
}

// eachRouteCache runs f as two subtests, with the route cache on and off;
// opts holds the option that turns it off.
func eachRouteCache(t *testing.T, f func(t *testing.T, opts ...eventbus.Option)) {
	t.Run("cache=on", func(t *testing.T) { f(t) })
	t.Run("cache=off", func(t *testing.T) { f(t, eventbus.WithoutRouteCache()) })
}

// newBus starts a bus that the test closes when it ends.
func newBus(t testing.TB, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	quiet := eventbus.WithLogger(slog.New(slog.DiscardHandler))
	b, err := eventbus.New(append([]eventbus.Option{quiet}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// ev returns an event literal, as users publish them.
func ev(topic string) eventbus.Event {
	return eventbus.Event{Type: eventbus.WorkerProgress, Topic: topic, Source: "test"}
}

// evp returns an event literal with a JSON payload.
func evp(topic string, payload any) eventbus.Event {
	e := ev(topic)
	raw, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	e.Payload = raw
	return e
}

// recvWithin receives one event from sub, failing the test after d.
func recvWithin(t tb, sub *eventbus.Subscription, d time.Duration) eventbus.Event {
	t.Helper()
	select {
	case e, ok := <-sub.C():
		require.True(t, ok, "subscription ended: %v", sub.Err())
		return e
	case <-time.After(d):
		require.FailNow(t, "no event", "within %v", d)
	}
	return eventbus.Event{}
}

// recvN receives n events from sub within d in total.
func recvN(t tb, sub *eventbus.Subscription, n int, d time.Duration) []eventbus.Event {
	t.Helper()
	deadline := time.After(d)
	out := make([]eventbus.Event, 0, n)
	for len(out) < n {
		select {
		case e, ok := <-sub.C():
			require.True(t, ok, "subscription ended after %d events: %v", len(out), sub.Err())
			out = append(out, e)
		case <-deadline:
			require.FailNow(t, "too few events", "got %d of %d within %v", len(out), n, d)
		}
	}
	return out
}

// pending drains what is in sub's mailbox now, without waiting.
func pending(sub *eventbus.Subscription) []eventbus.Event {
	// The first events wait in C, the rest behind it, moving in as C is
	// read: receive as many as Stats says wait, and then what C still
	// holds (events that arrived meanwhile).
	var out []eventbus.Event
	deadline := time.After(10 * time.Second)
	for n := sub.Stats().Pending; n > 0; n-- {
		select {
		case e, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, e)
		case <-deadline:
			panic("pending: events counted in Stats().Pending never reached C")
		}
	}
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			return out
		}
	}
}

// waitClosed waits for sub's mailbox to close, discarding what is left.
func waitClosed(t tb, sub *eventbus.Subscription, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "mailbox not closed", "within %v", d)
		}
	}
}

func topics(events []eventbus.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Topic
	}
	return out
}

func seqs(events []eventbus.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// errSink collects what the bus reports to its error handler.
type errSink struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newErrSink() *errSink { return &errSink{ch: make(chan error, 1000)} }

func (s *errSink) handle(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	s.ch <- err
}

// next waits for the next reported error that matches target.
func (s *errSink) next(t tb, target error, d time.Duration) error {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case err := <-s.ch:
			if errors.Is(err, target) {
				return err
			}
		case <-deadline:
			require.FailNow(t, "no error reported", "want %v within %v", target, d)
		}
	}
}

// failingStore wraps a Store and fails Append while fail is set, and
// Query while failQuery is set.
type failingStore struct {
	eventbus.Store
	mu        sync.Mutex
	fail      bool
	failQuery bool
}

func (f *failingStore) setFailQuery(v bool) {
	f.mu.Lock()
	f.failQuery = v
	f.mu.Unlock()
}

func (f *failingStore) Query(ctx context.Context, q eventbus.Query) ([]eventbus.Event, error) {
	f.mu.Lock()
	fail := f.failQuery
	f.mu.Unlock()
	if fail {
		return nil, errDiskFull
	}
	return f.Store.Query(ctx, q)
}

var errDiskFull = errors.New("disk full")

func (f *failingStore) setFail(v bool) {
	f.mu.Lock()
	f.fail = v
	f.mu.Unlock()
}

func (f *failingStore) Append(ctx context.Context, events []eventbus.Event) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errDiskFull
	}
	return f.Store.Append(ctx, events)
}
