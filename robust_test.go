package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// panickyStore panics in Append while panics is set.
type panickyStore struct {
	eventbus.Store
	panics atomic.Bool
}

func (p *panickyStore) Append(ctx context.Context, events []eventbus.Event) error {
	if p.panics.Load() {
		panic("store exploded")
	}
	return p.Store.Append(ctx, events)
}

func TestPanickingStore(t *testing.T) {
	store := &panickyStore{Store: eventbus.NewMemoryStore()}
	store.panics.Store(true)
	reports := make(chan error, 16)
	b := newBus(t, eventbus.WithStore(store), eventbus.WithErrorHandler(func(err error) { reports <- err }))
	sub, err := b.Subscribe(t.Context(), "p.*")
	require.NoError(t, err)

	// Acknowledged: the caller gets ErrPersist, the event is not delivered.
	err = b.Publish(t.Context(), ev("p.sync"))
	require.ErrorIs(t, err, eventbus.ErrPersist)
	assert.Contains(t, err.Error(), "store exploded")

	// Async: the error handler gets it.
	require.NoError(t, b.PublishAsync(t.Context(), ev("p.async")))
	require.NoError(t, b.Flush(t.Context()))
	select {
	case err := <-reports:
		require.ErrorIs(t, err, eventbus.ErrPersist)
		var ee *eventbus.EventError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "p.async", ee.Topic)
	case <-time.After(5 * time.Second):
		t.Fatal("no report of the async failure")
	}

	// The bus keeps working once the store does.
	store.panics.Store(false)
	require.NoError(t, b.Publish(t.Context(), ev("p.ok")))
	got := recvWithin(t, sub, time.Second)
	assert.Equal(t, "p.ok", got.Topic)
	assert.Zero(t, sub.Stats().Pending)
}

// TestPanickingStoreProcess runs PublishAsync against a panicking store in
// a child process: before the bus recovered it, the panic killed the
// process.
func TestPanickingStoreProcess(t *testing.T) {
	if os.Getenv("EVENTBUS_PANIC_CHILD") == "1" {
		store := &panickyStore{Store: eventbus.NewMemoryStore()}
		store.panics.Store(true)
		b, err := eventbus.New(eventbus.WithStore(store), eventbus.WithErrorHandler(func(error) {}))
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		for range 10 {
			_ = b.PublishAsync(context.Background(), ev("p.x"))
		}
		_ = b.Flush(context.Background())
		_ = b.Close()
		fmt.Println("child survived")
		os.Exit(0)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPanickingStoreProcess$")
	cmd.Env = append(os.Environ(), "EVENTBUS_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	assert.Contains(t, string(out), "child survived")
}

// hungStore blocks in Append until release is closed.
type hungStore struct {
	eventbus.Store
	release chan struct{}
}

func (h *hungStore) Append(ctx context.Context, events []eventbus.Event) error {
	<-h.release // ignores ctx, as a broken store would
	return h.Store.Append(ctx, events)
}

func TestPublishReturnsAtCtxWithHungStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &hungStore{Store: eventbus.NewMemoryStore(), release: make(chan struct{})}
		b, err := eventbus.New(eventbus.WithStore(store))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = b.Publish(ctx, ev("h.a"))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "returned at its ctx")
		close(store.release)
		// The abandoned acknowledgement does not disturb the next: the
		// loop goroutine does this one's work, the publisher waits for it.
		require.NoError(t, b.Publish(t.Context(), ev("h.b")))
		assert.Equal(t, uint64(2), b.LastSeq())
		require.NoError(t, b.Close())
	})
}

func TestErrorReportsBounded(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var errs, notes int
	var dropped int
	first := make(chan struct{})
	var once sync.Once
	b := newBus(t, eventbus.WithErrorHandler(func(err error) {
		once.Do(func() { close(first); <-release })
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, eventbus.ErrReportsDropped) {
			notes++
			var n int
			_, _ = fmt.Sscanf(err.Error(), "eventbus: error reports dropped: %d", &n)
			dropped += n
			return
		}
		errs++
	}))
	const n = 5000
	done := make(chan struct{})
	var handled atomic.Int64
	_, err := b.Handle(t.Context(), "r.*", func(context.Context, eventbus.Event) error {
		if handled.Add(1) == n {
			close(done)
		}
		return errors.New("nope")
	}, eventbus.WithBuffer(n), eventbus.WithOverflow(eventbus.Block))
	require.NoError(t, err)
	for range n {
		require.NoError(t, b.PublishAsync(t.Context(), ev("r.x")))
	}
	<-first
	<-done
	close(release)
	require.NoError(t, b.Close())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, n, errs+dropped, "every report delivered or counted")
	// At most one batch in the handler's hands and the bound waiting.
	assert.LessOrEqual(t, errs, 2*1024, "at most the bound waited")
	assert.Positive(t, notes, "the drop was said")
}

func TestUnstoredPayloadsNotRetained(t *testing.T) {
	b := newBus(t)
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = 'a'
	}
	payload[0], payload[len(payload)-1] = '"', '"'
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 64 {
		e := ev("big.x")
		e.Payload = append([]byte(nil), payload...)
		require.NoError(t, b.PublishAsync(t.Context(), e, eventbus.WithoutPersist()))
	}
	require.NoError(t, b.Flush(t.Context()))
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, grown, int64(16<<20), "64 MiB of unstored payloads published to nobody must not stay live")
}

// TestDeliveredPayloadsNotRetained: once a subscriber has received and
// dropped them, events that were not stored leave nothing of theirs in
// the bus (its batches, rings and channels), so their payloads can be
// collected.
func TestDeliveredPayloadsNotRetained(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			b := newBus(t, eventbus.WithStore(nil))
			sub, err := b.Subscribe(t.Context(), "big.*")
			require.NoError(t, err)
			const n = 300 // beyond C, so some go through the mailbox's ring
			got := countN(sub, n)
			weaks := make([]weak.Pointer[byte], n)
			for i := range n {
				e := ev("big.x")
				// Over 16 bytes: smaller ones share blocks of the tiny
				// allocator, which its cache keeps alive.
				e.Payload = []byte(fmt.Sprintf(`{"i":%d,"pad":"past the tiny allocator's 16 bytes"}`, i))
				weaks[i] = weak.Make(&e.Payload[0])
				if async {
					require.NoError(t, b.PublishAsync(t.Context(), e))
				} else {
					require.NoError(t, b.Publish(t.Context(), e))
				}
			}
			require.Equal(t, n, <-got)
			require.NoError(t, b.Flush(t.Context()))
			runtime.GC()
			for i, w := range weaks {
				require.Nil(t, w.Value(), "the payload of event %d is still reachable", i)
			}
		})
	}
}

// countN receives from sub's C until it has n events or C is closed, then
// sends how many it received (the channel holds it, so a test that fails
// first leaves no goroutine behind once the bus closes C).
func countN(sub *eventbus.Subscription, n int) <-chan int {
	got := make(chan int, 1)
	go func() {
		k := 0
		for range sub.C() {
			if k++; k == n {
				break
			}
		}
		got <- k
	}()
	return got
}

func TestPacing(t *testing.T) {
	t.Run("a reader that keeps up loses nothing", func(t *testing.T) {
		// A generous budget: under -race on a busy machine a reader can
		// be descheduled for milliseconds; pacing, not its default
		// budget, is under test here.
		b := newBus(t, eventbus.WithStallBudget(5*time.Second))
		sub, err := b.Subscribe(t.Context(), "f.*", eventbus.WithBuffer(100))
		require.NoError(t, err)
		const n = 50000
		got := make(chan []uint64, 1)
		go func() {
			var seqs []uint64
			for e := range sub.C() {
				seqs = append(seqs, e.Seq)
				if len(seqs) == n {
					break
				}
			}
			got <- seqs
		}()
		for range n {
			require.NoError(t, b.PublishAsync(t.Context(), ev("f.x")))
		}
		seqs := <-got
		require.Len(t, seqs, n)
		for i, s := range seqs {
			require.Equal(t, uint64(i+1), s, "in order, none missing")
		}
		assert.Zero(t, sub.Stats().Dropped)
	})
	t.Run("a stalled reader is slow once and its losses are counted", func(t *testing.T) {
		b := newBus(t, eventbus.WithStallBudget(50*time.Millisecond))
		stalled, err := b.Subscribe(t.Context(), "f.*", eventbus.WithBuffer(100))
		require.NoError(t, err)
		fast, err := b.Subscribe(t.Context(), "f.*", eventbus.WithBuffer(100))
		require.NoError(t, err)
		const n = 20000
		got := countN(fast, n)
		for range n {
			require.NoError(t, b.PublishAsync(t.Context(), ev("f.x")))
		}
		assert.Equal(t, n, <-got, "the fast one got everything")
		require.NoError(t, b.Flush(t.Context()))
		st := stalled.Stats()
		assert.Equal(t, uint64(n), st.Delivered)
		assert.Equal(t, uint64(n-100), st.Dropped, "exactly what it cannot hold")
		assert.Equal(t, 100, st.Pending)
		assert.Zero(t, fast.Stats().Dropped)
	})
}
