package sqlitestore_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// These tests run a whole bus on an SQLite store: what the bus promises
// about persistence failures, restarts, replay and catch-up, with the
// store underneath being this package's rather than the MemoryStore.

// recvTimeout bounds every wait for an event; generous for -race.
const recvTimeout = 10 * time.Second

// newSQLiteBus starts a bus on st that the test closes when it ends. Call
// it after st has registered its own Close (openTemp does), so that the
// bus is closed first: a store given to WithStore is the caller's.
func newSQLiteBus(t testing.TB, st eventbus.Store, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	quiet := eventbus.WithLogger(slog.New(slog.DiscardHandler))
	bus, err := eventbus.New(append([]eventbus.Option{quiet, eventbus.WithStore(st)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bus.Close()) })
	return bus
}

// errorSink returns an error handler for WithErrorHandler and the channel
// it reports to. It never blocks the bus's reporter: errors beyond the
// channel's room are counted in overflow instead.
func errorSink() (func(error), <-chan error, *atomic.Int64) {
	ch := make(chan error, 64)
	var overflow atomic.Int64
	return func(err error) {
		select {
		case ch <- err:
		default:
			overflow.Add(1)
		}
	}, ch, &overflow
}

// recvWithin receives one event from sub, failing the test after d.
func recvWithin(t testing.TB, sub *eventbus.Subscription, d time.Duration) eventbus.Event {
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

// event returns a new event with a fresh ID, so the test can recognise it.
func event(t testing.TB, topic string, i int) eventbus.Event {
	t.Helper()
	e, err := eventbus.NewEvent(eventbus.WorkerProgress, topic, map[string]int{"i": i}, "test")
	require.NoError(t, err)
	return e
}

// TestBusOnReadOnlyStore runs a bus on a store file without write
// permission: persisted publishes fail with ErrPersist and ErrReadOnly and
// reach nobody, async failures go to the error handler once, and events
// published WithoutPersist still flow.
func TestBusOnReadOnlyStore(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	require.NoError(t, st.Append(ctx, newEvents(t, 1, 3, "worker.task")))
	require.NoError(t, st.Close())
	require.NoError(t, os.Chmod(path, 0o444))

	st, err = sqlitestore.Open(path) // read-only, even for root
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	handler, errs, overflow := errorSink()
	bus := newSQLiteBus(t, st, eventbus.WithErrorHandler(handler))
	sub, err := bus.Subscribe(ctx, "*")
	require.NoError(t, err)
	nothingDelivered := func(t *testing.T) {
		t.Helper()
		stats := sub.Stats()
		assert.Zero(t, stats.Delivered)
		assert.Zero(t, stats.Pending)
		assert.Empty(t, sub.C())
	}

	// Publish acknowledges synchronously: had the event been delivered,
	// it would be in the mailbox when Publish returns.
	err = bus.Publish(ctx, event(t, "worker.task", 4))
	require.ErrorIs(t, err, eventbus.ErrPersist)
	require.ErrorIs(t, err, sqlitestore.ErrReadOnly)
	nothingDelivered(t)

	async := event(t, "worker.task", 5)
	require.NoError(t, bus.PublishAsync(ctx, async))
	require.NoError(t, bus.Flush(ctx))
	nothingDelivered(t)
	select {
	case err := <-errs:
		require.ErrorIs(t, err, eventbus.ErrPersist)
		require.ErrorIs(t, err, sqlitestore.ErrReadOnly)
		var ee *eventbus.EventError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, async.ID, ee.ID)
		assert.Equal(t, async.Topic, ee.Topic)
	case <-time.After(recvTimeout):
		require.FailNow(t, "the failed async publish was not reported")
	}

	// Unpersisted events still flow, synchronously and asynchronously,
	// and persisted ones still fail: the bus keeps running.
	volatile := event(t, "chat.typing", 6)
	require.NoError(t, bus.Publish(ctx, volatile, eventbus.WithoutPersist()))
	got := recvWithin(t, sub, recvTimeout)
	assert.Equal(t, volatile.ID, got.ID)
	assert.Greater(t, got.Seq, uint64(3))
	volatile2 := event(t, "chat.typing", 7)
	require.NoError(t, bus.PublishAsync(ctx, volatile2, eventbus.WithoutPersist()))
	got2 := recvWithin(t, sub, recvTimeout)
	assert.Equal(t, volatile2.ID, got2.ID)
	assert.Greater(t, got2.Seq, got.Seq)
	err = bus.Publish(ctx, event(t, "worker.task", 8))
	require.ErrorIs(t, err, sqlitestore.ErrReadOnly)
	assert.Empty(t, sub.C())

	stored, err := bus.Query(ctx, eventbus.Query{})
	require.NoError(t, err)
	assert.Len(t, stored, 3)
	assert.Equal(t, uint64(3), lastSeq(t, st))
	stats := bus.Stats()
	assert.Zero(t, stats.Persisted)
	assert.Equal(t, uint64(2), stats.Delivered)
	assert.Equal(t, uint64(2), sub.Stats().Delivered)

	// Close delivers every pending report: only the async failure has no
	// caller, so it is the only one; the sync failures were returned.
	require.NoError(t, bus.Close())
	assert.Empty(t, errs, "errors reported besides the async failure")
	assert.Zero(t, overflow.Load())
}

// TestBusRestart runs a bus on a file, closes it, and starts another on
// the same file: Seq numbering, Query and FromSeq replay continue from what
// the first bus stored, while the second keeps publishing.
func TestBusRestart(t *testing.T) {
	const n = 1500
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")

	// Run A publishes n events and stops: the bus, then the store.
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	busA, err := eventbus.New(eventbus.WithStore(st), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	runA := make([]eventbus.Event, n)
	for i := range runA {
		runA[i] = event(t, benchTopic(i+1), i)
		require.NoError(t, busA.PublishAsync(ctx, runA[i]))
	}
	require.NoError(t, busA.Flush(ctx))
	require.NoError(t, busA.Close())
	require.NoError(t, st.Close())

	// Run B on the reopened file.
	st, err = sqlitestore.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	bus := newSQLiteBus(t, st)
	next, err := bus.Publisher("run-b").Emit(ctx, eventbus.WorkerSpawned, "worker.w1.spawned", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(n+1), next.Seq, "Seq does not continue after the stored events")

	history, err := bus.Query(ctx, eventbus.Query{Limit: eventbus.MaxQueryLimit})
	require.NoError(t, err)
	require.Len(t, history, n+1)
	for i, e := range runA {
		require.Equal(t, uint64(i+1), history[i].Seq)
		require.Equal(t, e.ID, history[i].ID, "event %d", i+1)
		require.Equal(t, e.Topic, history[i].Topic)
		require.JSONEq(t, string(e.Payload), string(history[i].Payload))
	}
	assert.Equal(t, next.ID, history[n].ID)

	tests := []struct {
		name     string
		pattern  string
		from     uint64
		overflow eventbus.Overflow
		buffer   int
		overlap  bool // the replay exceeds the mailbox: live events are published during it
	}{
		// Many pages of replay into a small mailbox that the live stream
		// then keeps busy: the hand-over may find no room.
		{"long replay, block, small mailbox", "worker.*", 101, eventbus.Block, 64, true},
		// Less than a page of replay; the mailbox holds everything.
		{"short replay, drop-oldest, roomy mailbox", "*", n - 50, eventbus.DropOldest, 1 << 14, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := replayWhilePublishing(t, bus, tt.pattern,
				eventbus.FromSeq(tt.from), eventbus.WithOverflow(tt.overflow), eventbus.WithBuffer(tt.buffer))
			history = append(history, live.published...)
			want := []eventbus.Event{}
			for _, e := range history {
				if e.Seq >= tt.from && eventbus.Match(tt.pattern, e.Topic) {
					want = append(want, e)
				}
			}
			want = want[:len(want)-1] // the end marker, which the reader does not keep
			require.Equal(t, seqsOf(want), seqsOf(live.received), "replay and live stream are not the stored and published events, once each, in order")
			for i := range want {
				require.Equal(t, want[i].ID, live.received[i].ID, "Seq %d", want[i].Seq)
			}
			if tt.overlap {
				assert.True(t, live.laggingAtGate, "events were published after the replay, not during it")
			}
			assert.Zero(t, live.dropped)
		})
	}
}

// replayResult is what replayWhilePublishing saw.
type replayResult struct {
	published     []eventbus.Event // by the publisher goroutine, then the end marker, in Seq order
	received      []eventbus.Event // by the subscription, up to and without the end marker
	laggingAtGate bool             // the subscription was still replaying when the reader started
	dropped       uint64           // Stats().Dropped of the subscription at the end
}

// replayWhilePublishing starts a goroutine publishing events one after
// another and subscribes to pattern with opts while it runs. The reader
// starts only once gateAfter more events have been published, so those
// were published during the replay whenever the replay does not fit in the
// mailbox; it reads until the replayed events and a few hundred live ones
// have come, and only then does the publisher stop. An end marker
// published last must be the next event after the publisher's: anything
// else is a duplicate or out of order.
func replayWhilePublishing(t *testing.T, bus *eventbus.Bus, pattern string, opts ...eventbus.SubscribeOption) replayResult {
	const (
		gateAfter = 50  // events published after Subscribe before the reader starts
		stopAfter = 300 // Seqs past Subscribe the reader must see before the publisher stops
	)
	ctx := t.Context()
	pub := bus.Publisher("live")
	var (
		lastSeq   atomic.Uint64
		gateSeq   atomic.Uint64 // 0 until the subscription exists
		subP      atomic.Pointer[eventbus.Subscription]
		pubErr    error
		published []eventbus.Event
	)
	started, stop, pubDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	gate := make(chan bool, 1) // whether the subscription was lagging at the gate
	go func() {
		defer close(pubDone)
		gated := false
		for i := 0; ; i++ {
			e, err := pub.Emit(ctx, eventbus.WorkerProgress, benchTopic(i), map[string]int{"live": i})
			if err != nil {
				pubErr = err
				return
			}
			published = append(published, e)
			lastSeq.Store(e.Seq)
			if i == 0 {
				close(started)
			}
			if g := gateSeq.Load(); !gated && g != 0 && e.Seq >= g {
				gated = true
				gate <- subP.Load().Stats().Lagging
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	// Subscribe while the publisher is under way.
	select {
	case <-started:
	case <-pubDone:
		require.NoError(t, pubErr)
	}
	sub, err := bus.Subscribe(ctx, pattern, opts...)
	require.NoError(t, err)
	defer sub.Close()
	atSubscribe := lastSeq.Load()
	subP.Store(sub)
	gateSeq.Store(atSubscribe + gateAfter)
	end := "worker.end." + sub.ID() // matches the patterns used here

	// The reader is a goroutine of its own: under Block the publisher
	// waits for it.
	type readResult struct {
		events        []eventbus.Event
		laggingAtGate bool
		stopped       bool // the publisher has been told to stop
		err           error
	}
	readDone := make(chan readResult, 1)
	go func() {
		var r readResult
		defer func() { readDone <- r }()
		timeout := time.NewTimer(recvTimeout)
		defer timeout.Stop()
		select {
		case r.laggingAtGate = <-gate:
		case <-timeout.C:
			r.err = fmt.Errorf("the publisher did not reach the gate within %v", recvTimeout)
			return
		}
		var prev uint64
		for {
			timeout.Reset(recvTimeout)
			var (
				e  eventbus.Event
				ok bool
			)
			select {
			case e, ok = <-sub.C():
			case <-timeout.C:
				r.err = fmt.Errorf("no event within %v after Seq %d", recvTimeout, prev)
				return
			}
			if !ok {
				r.err = fmt.Errorf("subscription ended after Seq %d: %w", prev, sub.Err())
				return
			}
			if e.Topic == end {
				return
			}
			r.events = append(r.events, e)
			prev = e.Seq
			// Every Seq up to atSubscribe came before the subscription
			// existed; well past it, the replay is over and the live part
			// has had time to show a gap or a duplicate.
			if !r.stopped && e.Seq > atSubscribe+stopAfter {
				r.stopped = true
				close(stop)
			}
		}
	}()

	select {
	case <-pubDone:
	case read := <-readDone:
		// The reader ends before the end marker only when it fails. Close
		// the subscription so that a Block send lets the publisher go.
		require.NoError(t, sub.Close())
		if !read.stopped {
			close(stop)
		}
		<-pubDone
		require.NoError(t, read.err)
		require.FailNow(t, "the reader ended early")
	}
	require.NoError(t, pubErr)
	marker, err := pub.Emit(ctx, eventbus.SystemHeartbeat, end, nil)
	require.NoError(t, err)
	read := <-readDone
	require.NoError(t, read.err)
	return replayResult{
		published:     append(published, marker),
		received:      read.events,
		laggingAtGate: read.laggingAtGate,
		dropped:       sub.Stats().Dropped,
	}
}

func seqsOf(events []eventbus.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// TestCatchUpFromSQLite lets a CatchUp subscription with a small mailbox
// fall thousands of events behind: it must get every one from the store, in
// order, and rejoin the live stream, while a subscription that keeps up is
// unaffected.
func TestCatchUpFromSQLite(t *testing.T) {
	const n = 5000
	ctx := t.Context()
	st, _ := openTemp(t)
	handler, errs, overflow := errorSink()
	bus := newSQLiteBus(t, st, eventbus.WithErrorHandler(handler))
	slow, err := bus.Subscribe(ctx, "*", eventbus.WithBuffer(16), eventbus.WithOverflow(eventbus.CatchUp), eventbus.WithName("slow"))
	require.NoError(t, err)
	fast, err := bus.Subscribe(ctx, "*", eventbus.WithBuffer(64), eventbus.WithOverflow(eventbus.Block), eventbus.WithName("fast"))
	require.NoError(t, err)

	fastDone := make(chan []eventbus.Event, 1)
	go func() {
		var got []eventbus.Event
		defer func() { fastDone <- got }()
		for len(got) < n {
			select {
			case e, ok := <-fast.C():
				if !ok {
					return
				}
				got = append(got, e)
			case <-time.After(recvTimeout):
				return
			}
		}
	}()

	sent := make([]eventbus.Event, n)
	for i := range sent {
		sent[i] = event(t, benchTopic(i+1), i)
		require.NoError(t, bus.PublishAsync(ctx, sent[i]))
	}
	require.NoError(t, bus.Flush(ctx))
	// Nobody has read slow: its mailbox is full and it reads from the store.
	stats := slow.Stats()
	assert.True(t, stats.Lagging, "a full CatchUp mailbox is not catching up")
	assert.Equal(t, 16, stats.Pending)

	check := func(t *testing.T, name string, got []eventbus.Event) {
		t.Helper()
		require.Len(t, got, n, name)
		for i, e := range got {
			require.Equal(t, uint64(i+1), e.Seq, "%s: event %d", name, i)
			require.Equal(t, sent[i].ID, e.ID, "%s: Seq %d", name, e.Seq)
		}
	}
	var got []eventbus.Event
	for range n {
		got = append(got, recvWithin(t, slow, recvTimeout))
	}
	check(t, "slow", got)
	check(t, "fast", <-fastDone)

	// The hand-over back to live happens on the catch-up goroutine after
	// its last send, with nothing to wait on: poll for it.
	require.Eventually(t, func() bool { return !slow.Stats().Lagging }, recvTimeout, time.Millisecond,
		"the caught-up subscription does not rejoin the live stream")
	live := event(t, "worker.w1.complete", n)
	require.NoError(t, bus.Publish(ctx, live))
	// Publish returned: a live subscription has it in its mailbox already.
	assert.Equal(t, 1, slow.Stats().Pending)
	e := recvWithin(t, slow, recvTimeout)
	assert.Equal(t, live.ID, e.ID)
	assert.Equal(t, uint64(n+1), e.Seq)
	assert.Equal(t, live.ID, recvWithin(t, fast, recvTimeout).ID)

	stats = slow.Stats()
	assert.False(t, stats.Lagging)
	assert.Zero(t, stats.Dropped)
	assert.Zero(t, stats.Pending)
	assert.Equal(t, uint64(n+1), stats.Delivered)
	assert.Zero(t, fast.Stats().Dropped)
	busStats := bus.Stats()
	assert.Zero(t, busStats.Dropped)
	assert.Equal(t, uint64(n+1), busStats.Persisted)

	// Close delivers every pending report: nothing was lost, so nothing
	// may have been reported.
	require.NoError(t, bus.Close())
	for len(errs) > 0 {
		assert.NoError(t, <-errs)
	}
	assert.Zero(t, overflow.Load())
}
