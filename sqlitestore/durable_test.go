package sqlitestore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// durableChildEnv names the file TestDurableChild consumes from; set only
// in the child process TestDurableKilledConsumerResumes starts.
const durableChildEnv = "SQLITESTORE_DURABLE_CHILD_DB"

const (
	durableJobs     = 2000 // events published before the consumer starts
	durableKilledAt = 600  // the child stops handling (and is killed) after these
)

// durablePool subscribes a pool of two durable Handle workers to "jobs",
// calling h for each event.
func durablePool(t *testing.T, bus *eventbus.Bus, h func(eventbus.Event)) {
	for range 2 {
		_, err := bus.Handle(context.Background(), "jobs", func(_ context.Context, e eventbus.Event) error {
			h(e)
			return nil
		}, eventbus.Durable("pool"), eventbus.WithQueueGroup("pool"), eventbus.WithBuffer(16), eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
	}
}

func quiet() eventbus.Option { return eventbus.WithLogger(slog.New(slog.DiscardHandler)) }

// TestDurableKilledConsumerResumes runs a durable worker pool in a child
// process, kills it with SIGKILL in the middle of the stream, and resumes
// the pool on the same file: every event is handled, the events up to the
// stored cursor are not handled again, and what is handled twice is at
// most the last unwritten cursor batch (plus what the workers held).
func TestDurableKilledConsumerResumes(t *testing.T) {
	if os.Getenv(durableChildEnv) != "" {
		t.Skip("inside the child")
	}
	path := filepath.Join(t.TempDir(), "durable.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	bus, err := eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	for i := range durableJobs {
		require.NoError(t, bus.PublishAsync(t.Context(), eventbus.Event{Type: eventbus.WorkerProgress, Topic: "jobs", Source: "test", Payload: []byte(strconv.Itoa(i))}))
	}
	require.NoError(t, bus.Close())
	require.NoError(t, st.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestDurableChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), durableChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	first := map[uint64]bool{}
	lines := bufio.NewScanner(out)
	for len(first) < durableKilledAt && lines.Scan() {
		if s, ok := strings.CutPrefix(lines.Text(), "handled "); ok {
			seq, err := strconv.ParseUint(s, 10, 64)
			require.NoError(t, err)
			first[seq] = true
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	require.Len(t, first, durableKilledAt, "the child stopped early")

	st, err = sqlitestore.Open(path)
	require.NoError(t, err)
	defer st.Close()
	cursor, err := st.LoadCursor(t.Context(), "pool")
	require.NoError(t, err)
	require.NotZero(t, cursor, "no cursor batch was written before the kill")
	for seq := uint64(1); seq <= cursor; seq++ {
		require.True(t, first[seq], "event %d is below the cursor but was never handled", seq)
	}

	bus, err = eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	var mu sync.Mutex
	second := map[uint64]int{}
	durablePool(t, bus, func(e eventbus.Event) {
		mu.Lock()
		second[e.Seq]++
		mu.Unlock()
	})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(second) == durableJobs-int(cursor)
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, bus.Close())
	again := 0
	for seq, n := range second {
		require.Equal(t, 1, n, "event %d handled twice after the restart", seq)
		require.Greater(t, seq, cursor, "event %d at or below the cursor came again", seq)
		if first[seq] {
			again++
		}
	}
	t.Logf("cursor %d after %d handled; %d handled again", cursor, durableKilledAt, again)
	assert.LessOrEqual(t, again, 64+2*16+2, "more came again than one cursor batch and the workers' mailboxes")
	c, err := st.LoadCursor(t.Context(), "pool")
	require.NoError(t, err)
	assert.Equal(t, uint64(durableJobs), c, "Shutdown writes the cursor")
}

// TestDurableChild is the consumer TestDurableKilledConsumerResumes kills:
// a durable pool that prints each event it handles, and stops handling
// after durableKilledAt of them. Each worker takes a millisecond per
// event, so that the cursor's batch conditions (64 acknowledgements and
// 10 ms, or 100 ms) are met many times before the kill: unpaced, two
// workers handle 600 events in a few milliseconds and the kill can come
// before the first write.
func TestDurableChild(t *testing.T) {
	path := os.Getenv(durableChildEnv)
	if path == "" {
		t.Skip("helper process for TestDurableKilledConsumerResumes")
	}
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	bus, err := eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	var n atomic.Int64
	var out sync.Mutex
	durablePool(t, bus, func(e eventbus.Event) {
		if n.Add(1) > durableKilledAt {
			select {} // killed here
		}
		out.Lock()
		fmt.Fprintf(os.Stdout, "handled %d\n", e.Seq)
		out.Unlock()
		time.Sleep(time.Millisecond)
	})
	select {}
}

func TestCursorsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cursor.db")
	for round := range 2 {
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		bus, err := eventbus.New(eventbus.WithStore(st), quiet())
		require.NoError(t, err)
		sub, err := bus.Subscribe(t.Context(), "a", eventbus.Durable("reader"))
		require.NoError(t, err)
		require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: eventbus.WorkerProgress, Topic: "a", Source: "test"}))
		e := <-sub.C()
		assert.Equal(t, uint64(round+1), e.Seq, "round %d: the acknowledged event came again", round)
		require.NoError(t, sub.Ack(e))
		require.NoError(t, bus.Close())
		require.NoError(t, st.Close())
	}
}

// BenchmarkDurableHandle is a Handle subscription on a sqlitestore bus,
// durable or not: what the cursor costs per event.
func BenchmarkDurableHandle(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			bus, err := eventbus.New(eventbus.WithStore(st), quiet())
			if err != nil {
				b.Fatal(err)
			}
			var done sync.WaitGroup
			opts := []eventbus.SubscribeOption{eventbus.WithOverflow(eventbus.Block)}
			if durable {
				opts = append(opts, eventbus.Durable("bench"))
			}
			sub, err := bus.Handle(context.Background(), "jobs", func(context.Context, eventbus.Event) error {
				done.Done()
				return nil
			}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			e := eventbus.Event{Type: eventbus.WorkerProgress, Topic: "jobs", Source: "bench", Payload: []byte(`{"n":1}`)}
			// A new durable consumer first replays the store (empty here)
			// and then goes live. Timed from then on: a flood published
			// while it still replays is read back from SQLite, which
			// measures catch-up, not the cursor.
			done.Add(1)
			if err := bus.Publish(context.Background(), e); err != nil {
				b.Fatal(err)
			}
			done.Wait()
			// Nothing announces the hand-over: look until it has happened,
			// for at most 10 s.
			for deadline := time.Now().Add(10 * time.Second); sub.Stats().Lagging; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("the durable consumer still replays after 10s")
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			done.Add(b.N)
			for range b.N {
				if err := bus.PublishAsync(context.Background(), e); err != nil {
					b.Fatal(err)
				}
			}
			done.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if err := bus.Close(); err != nil {
				b.Fatal(err)
			}
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestDurableGroupReplaySpreads restarts a durable worker pool on a
// SQLite file: what the first life left unacknowledged is replayed over
// the second life's members like live events, each event to one member,
// in Seq order per member, none at or below the cursor. Every member's
// handler holds its first event until all four have one, so the replay
// can only go on by giving events to the members that joined after it
// began.
func TestDurableGroupReplaySpreads(t *testing.T) {
	const jobs, acked, workers = 100, 30, 4
	path := filepath.Join(t.TempDir(), "spread.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	bus, err := eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	sub, err := bus.Subscribe(t.Context(), "jobs", eventbus.Durable("pool"), eventbus.WithQueueGroup("pool"))
	require.NoError(t, err)
	for i := range jobs {
		require.NoError(t, bus.PublishAsync(t.Context(), eventbus.Event{Type: eventbus.WorkerProgress, Topic: "jobs", Source: "test", Payload: []byte(strconv.Itoa(i))}))
	}
	for range acked {
		require.NoError(t, sub.Ack(recvWithin(t, sub, 5*time.Second)))
	}
	require.NoError(t, bus.Close())
	require.NoError(t, st.Close())

	st, err = sqlitestore.Open(path)
	require.NoError(t, err)
	defer st.Close()
	bus, err = eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		got     = make([][]uint64, workers)
		handled = make(chan uint64, jobs)
		started = make(chan int, workers)
		gate    = make(chan struct{})
		open    = sync.OnceFunc(func() { close(gate) })
	)
	defer func() {
		open() // a failing test lets the handlers go, so Close returns
		require.NoError(t, bus.Close())
	}()
	for w := range workers {
		_, err := bus.Handle(t.Context(), "jobs", func(ctx context.Context, e eventbus.Event) error {
			mu.Lock()
			got[w] = append(got[w], e.Seq)
			first := len(got[w]) == 1
			mu.Unlock()
			if first {
				started <- w
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			handled <- e.Seq
			return nil
		}, eventbus.Durable("pool"), eventbus.WithQueueGroup("pool"), eventbus.WithBuffer(1), eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
	}
	deadline := time.After(10 * time.Second)
	for range workers {
		select {
		case <-started:
		case <-deadline:
			t.Fatal("not every member got a replayed event while the others held theirs")
		}
	}
	open()
	seen := map[uint64]bool{}
	for len(seen) < jobs-acked {
		select {
		case seq := <-handled:
			require.False(t, seen[seq], "event %d handled twice", seq)
			require.Greater(t, seq, uint64(acked), "event %d was acknowledged before the restart", seq)
			seen[seq] = true
		case <-deadline:
			t.Fatalf("%d of %d replayed events handled", len(seen), jobs-acked)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for w, seqs := range got {
		assert.NotEmpty(t, seqs, "member %d", w)
		assert.True(t, slices.IsSorted(seqs), "member %d out of Seq order: %v", w, seqs)
	}
	t.Logf("replayed events per member: %d %d %d %d", len(got[0]), len(got[1]), len(got[2]), len(got[3]))
}
