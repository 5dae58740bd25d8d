package eventbus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/choiros/eventbus"
)

var (
	propTopics   = []string{"a", "a.b", "a.b.c", "a.c", "b.c", "b.x.c", "c1", "c2"}
	propPatterns = []string{"*", "a", "a.*", "a.b.*", "*.c", "b.*.c", "c?", "a.?", "x.*"}
)

// busMachine is a rapid state machine that drives a bus and a model of it:
// every subscription must receive exactly the events whose topics matched
// its patterns when they were published, in publish order, once each.
type busMachine struct {
	t    *rapid.T
	bus  *eventbus.Bus
	subs []*modelSub
	seq  uint64
}

type modelSub struct {
	sub      *eventbus.Subscription
	patterns []string
	want     []uint64
	closed   bool
}

func (m *modelSub) matches(topic string) bool {
	for _, p := range m.patterns {
		if eventbus.Match(p, topic) {
			return true
		}
	}
	return false
}

func (m *busMachine) live() []*modelSub {
	var out []*modelSub
	for _, s := range m.subs {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

func (m *busMachine) Subscribe(t *rapid.T) {
	p := rapid.SampledFrom(propPatterns).Draw(t, "pattern")
	sub, err := m.bus.Subscribe(t.Context(), p, eventbus.WithBuffer(10000))
	require.NoError(t, err)
	m.subs = append(m.subs, &modelSub{sub: sub, patterns: []string{p}})
}

func (m *busMachine) pick(t *rapid.T) *modelSub {
	live := m.live()
	if len(live) == 0 {
		t.Skip("no live subscription")
	}
	return rapid.SampledFrom(live).Draw(t, "sub")
}

func (m *busMachine) Add(t *rapid.T) {
	s := m.pick(t)
	p := rapid.SampledFrom(propPatterns).Draw(t, "pattern")
	require.NoError(t, s.sub.Add(p))
	if !slices.Contains(s.patterns, p) {
		s.patterns = append(s.patterns, p)
	}
}

func (m *busMachine) Remove(t *rapid.T) {
	s := m.pick(t)
	if len(s.patterns) == 0 {
		t.Skip("no pattern to remove")
	}
	p := rapid.SampledFrom(s.patterns).Draw(t, "pattern")
	require.NoError(t, s.sub.Remove(p))
	s.patterns = slices.DeleteFunc(s.patterns, func(q string) bool { return q == p })
	if len(s.patterns) == 0 {
		s.patterns = nil
	}
}

func (m *busMachine) Close(t *rapid.T) {
	s := m.pick(t)
	require.NoError(t, s.sub.Close())
	s.closed = true
	// What was delivered before Close stays readable.
	m.checkSub(t, s)
}

func (m *busMachine) Publish(t *rapid.T) {
	topic := rapid.SampledFrom(propTopics).Draw(t, "topic")
	async := rapid.Bool().Draw(t, "async")
	if async {
		require.NoError(t, m.bus.PublishAsync(t.Context(), ev(topic)))
	} else {
		require.NoError(t, m.bus.Publish(t.Context(), ev(topic)))
	}
	m.seq++
	for _, s := range m.live() {
		if s.matches(topic) {
			s.want = append(s.want, m.seq)
		}
	}
}

func (m *busMachine) checkSub(t *rapid.T, s *modelSub) {
	got := seqs(pending(s.sub))
	require.Equal(t, nilIfEmpty(s.want), nilIfEmpty(got), "subscription %s patterns %v", s.sub.ID(), s.patterns)
	s.want = nil
}

func (m *busMachine) Check(t *rapid.T) {
	require.NoError(t, m.bus.Flush(t.Context()))
	for _, s := range m.live() {
		m.checkSub(t, s)
	}
}

func TestBusModel(t *testing.T) {
	eachRouteCache(t, func(t *testing.T, opts ...eventbus.Option) {
		rapid.Check(t, func(t *rapid.T) {
			b, err := eventbus.New(append(opts, eventbus.WithStore(nil))...)
			require.NoError(t, err)
			defer func() { require.NoError(t, b.Close()) }()
			m := &busMachine{t: t, bus: b}
			t.Repeat(rapid.StateMachineActions(m))
		})
	})
}

// TestOrderingProperty publishes from several goroutines at once to
// subscriptions with different patterns: each subscription gets exactly
// the matching events, in Seq order, each publisher's in its own order.
func TestOrderingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		publishers := rapid.IntRange(1, 4).Draw(t, "publishers")
		perPublisher := rapid.IntRange(1, 300).Draw(t, "perPublisher")
		patterns := rapid.SliceOfN(rapid.SampledFrom(propPatterns), 1, 5).Draw(t, "patterns")
		// Synchronous publishers do the loop's work themselves when it is
		// free and hand it back at a full mailbox; async ones never do.
		acked := rapid.SliceOfN(rapid.Bool(), publishers, publishers).Draw(t, "acknowledged")
		b, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithOverflow(eventbus.Block), eventbus.WithBufferSize(16))
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()

		type result struct {
			got []eventbus.Event
		}
		subs := make([]*eventbus.Subscription, len(patterns))
		results := make([]result, len(patterns))
		var readers sync.WaitGroup
		for i, p := range patterns {
			subs[i], err = b.Subscribe(t.Context(), p)
			require.NoError(t, err)
			readers.Go(func() {
				for e := range subs[i].C() {
					results[i].got = append(results[i].got, e)
				}
			})
		}
		var pubs sync.WaitGroup
		for p := range publishers {
			pubs.Go(func() {
				for n := range perPublisher {
					e := evp(propTopics[(p+n)%len(propTopics)], n)
					e.Source = fmt.Sprint(p)
					publish := b.PublishAsync
					if acked[p] {
						publish = b.Publish
					}
					if err := publish(t.Context(), e); err != nil {
						panic(err)
					}
				}
			})
		}
		pubs.Wait()
		require.NoError(t, b.Close())
		readers.Wait()

		for i, p := range patterns {
			got := results[i].got
			want := 0
			for pub := range publishers {
				for n := range perPublisher {
					if eventbus.Match(p, propTopics[(pub+n)%len(propTopics)]) {
						want++
					}
				}
			}
			require.Len(t, got, want, "pattern %q", p)
			last := map[string]int{}
			for j, e := range got {
				if j > 0 {
					require.Greater(t, e.Seq, got[j-1].Seq, "Seq order")
				}
				var n int
				require.NoError(t, e.Decode(&n))
				if prev, ok := last[e.Source]; ok {
					require.Greater(t, n, prev, "publisher %s order", e.Source)
				}
				last[e.Source] = n
				require.True(t, eventbus.Match(p, e.Topic))
			}
		}
	})
}

// TestReplayProperty subscribes with FromSeq while publishers keep going:
// the subscription must see every matching event from the cursor on, once,
// in order — the stored ones, then the live ones.
func TestReplayProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		before := rapid.IntRange(0, 600).Draw(t, "before")
		during := rapid.IntRange(0, 600).Draw(t, "during")
		from := rapid.Uint64Range(0, uint64(before)+5).Draw(t, "from")
		pattern := rapid.SampledFrom(propPatterns).Draw(t, "pattern")
		buffer := rapid.IntRange(1, 64).Draw(t, "buffer")
		policy := rapid.SampledFrom([]eventbus.Overflow{eventbus.Block, eventbus.CatchUp}).Draw(t, "policy")
		checkReplay(t, before, during, from, pattern, buffer, policy)
	})
}

// checkReplay publishes before events, then subscribes with FromSeq(from)
// while during more are published, and checks the subscription gets every
// matching event from the cursor on, once, in order, losing nothing.
func checkReplay(t ctxTB, before, during int, from uint64, pattern string, buffer int, policy eventbus.Overflow) {
	t.Helper()
	b, err := eventbus.New(eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(0))))
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()

	topicOf := func(i int) string { return propTopics[i%len(propTopics)] }
	var want []uint64
	for i := range before + during {
		seq := uint64(i + 1)
		if seq >= from && eventbus.Match(pattern, topicOf(i)) {
			want = append(want, seq)
		}
	}
	for i := range before {
		require.NoError(t, b.PublishAsync(t.Context(), ev(topicOf(i))))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := before; i < before+during; i++ {
			if err := b.PublishAsync(t.Context(), ev(topicOf(i))); err != nil {
				panic(err)
			}
		}
	}()
	sub, err := b.Subscribe(t.Context(), pattern, eventbus.FromSeq(from), eventbus.WithBuffer(buffer), eventbus.WithOverflow(policy))
	require.NoError(t, err)
	// Read while the publishers run: under Block they wait for us.
	got := recvN(t, sub, len(want), 10*time.Second)
	<-done
	require.NoError(t, b.Flush(t.Context()))
	require.Equal(t, nilIfEmpty(want), nilIfEmpty(seqs(got)), "no gap")
	require.NoError(t, sub.Close())
	require.Empty(t, pending(sub), "no duplicate")
	require.Zero(t, sub.Stats().Dropped)
}

// TestCatchUpProperty stalls a CatchUp subscriber for a random number of
// events at random points: it must still receive every persisted event
// once, in order.
func TestCatchUpProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		buffer := rapid.IntRange(1, 32).Draw(t, "buffer")
		bursts := rapid.SliceOfN(rapid.IntRange(1, 400), 1, 5).Draw(t, "bursts")
		checkCatchUp(t, buffer, bursts)
	})
}

// checkCatchUp publishes bursts to a CatchUp subscription that reads half
// of each burst, then all the rest: it must get every event once, in order,
// with nothing counted as dropped.
func checkCatchUp(t ctxTB, buffer int, bursts []int) {
	t.Helper()
	b, err := eventbus.New(eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(0))))
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	sub, err := b.Subscribe(t.Context(), "*", eventbus.WithBuffer(buffer), eventbus.WithOverflow(eventbus.CatchUp))
	require.NoError(t, err)
	var next uint64 = 1
	for _, n := range bursts {
		for range n {
			require.NoError(t, b.PublishAsync(t.Context(), ev("a")))
		}
		// Read half of the burst, so the subscriber is sometimes behind.
		for _, e := range recvN(t, sub, n/2, 10*time.Second) {
			require.Equal(t, next, e.Seq)
			next++
		}
	}
	total := uint64(0)
	for _, n := range bursts {
		total += uint64(n)
	}
	for _, e := range recvN(t, sub, int(total-next+1), 10*time.Second) {
		require.Equal(t, next, e.Seq)
		next++
	}
	require.NoError(t, b.Flush(t.Context()))
	assert.Zero(t, sub.Stats().Dropped)
}

// TestLagRegressions holds the shrunk failures the properties above found,
// as named cases.
func TestLagRegressions(t *testing.T) {
	t.Run("catch-up: the event that starts the lag is owed, not lost", func(t *testing.T) {
		checkCatchUp(t, 25, []int{2, 373})
	})
	t.Run("replay: events at or below the cursor are not owed", func(t *testing.T) {
		checkReplay(t, 1, 11, 6, "a.?", 10, eventbus.Block)
	})
	t.Run("replay under DropOldest-sized buffer with Block", func(t *testing.T) {
		checkReplay(t, 1, 366, 6, "b.*.c", 28, eventbus.Block)
	})
}

// ctxTB is what the property bodies need of a *testing.T or a *rapid.T.
type ctxTB interface {
	tb
	Context() context.Context
}

// TestNoLossUnderLoad: 100 subscribers each receive all 10,000 events, in
// order, while the publisher runs at full speed.
func TestNoLossUnderLoad(t *testing.T) {
	const subsN, events = 100, 10000
	b := newBus(t, eventbus.WithStore(nil), eventbus.WithOverflow(eventbus.Block))
	var wg sync.WaitGroup
	counts := make([]int, subsN)
	for i := range subsN {
		sub, err := b.Subscribe(t.Context(), "load.*")
		require.NoError(t, err)
		wg.Go(func() {
			var last uint64
			for e := range sub.C() {
				if e.Seq != last+1 {
					panic(fmt.Sprintf("subscriber %d: got Seq %d after %d", i, e.Seq, last))
				}
				last = e.Seq
				counts[i]++
			}
		})
	}
	for range events {
		require.NoError(t, b.PublishAsync(t.Context(), ev("load.x")))
	}
	require.NoError(t, b.Close())
	wg.Wait()
	for i, n := range counts {
		require.Equal(t, events, n, "subscriber %d", i)
	}
	assert.Equal(t, uint64(subsN*events), b.Stats().Delivered)
}

// TestIsolation: a subscriber that never reads loses its own events under
// the default policy, and neither the publisher nor a fast subscriber
// beside it loses anything.
func TestIsolation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := rapid.IntRange(1, 5000).Draw(t, "events")
		buffer := rapid.IntRange(1, 100).Draw(t, "buffer")
		b, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithLogger(nil))
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		stuck, err := b.Subscribe(t.Context(), "*", eventbus.WithBuffer(buffer))
		require.NoError(t, err)
		fast, err := b.Subscribe(t.Context(), "*", eventbus.WithOverflow(eventbus.Block))
		require.NoError(t, err)
		got := make(chan int)
		go func() {
			n := 0
			for e := range fast.C() {
				n++
				if e.Seq != uint64(n) {
					panic("fast subscriber out of order")
				}
			}
			got <- n
		}()
		for range events {
			require.NoError(t, b.PublishAsync(t.Context(), ev("x")))
		}
		require.NoError(t, b.Flush(t.Context()))
		st := stuck.Stats()
		require.Equal(t, uint64(max(events-buffer, 0)), st.Dropped)
		require.Equal(t, min(events, buffer), st.Pending)
		require.NoError(t, fast.Close())
		require.Equal(t, events, <-got)
	})
}

// TestPacingProperty: concurrent publishers (acknowledged and async)
// outrun every subscriber; under pacing, readers that keep up get every
// event of their topics in Seq order and in each publisher's order, losing
// none.
func TestPacingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		publishers := rapid.IntRange(1, 4).Draw(t, "publishers")
		perPub := rapid.IntRange(1, 2000).Draw(t, "events per publisher")
		buffer := rapid.IntRange(1, 64).Draw(t, "buffer")
		readers := rapid.IntRange(1, 3).Draw(t, "readers")
		// A budget no reader that keeps up misses, even descheduled for a
		// long while under -race on a busy machine: pacing, not its
		// default budget, is under test.
		b, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithLogger(nil), eventbus.WithStallBudget(time.Minute))
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		total := publishers * perPub
		type result struct {
			byPub [][]int
			err   string
		}
		results := make([]chan result, readers)
		for r := range readers {
			sub, err := b.Subscribe(t.Context(), "p.*", eventbus.WithBuffer(buffer))
			require.NoError(t, err)
			results[r] = make(chan result, 1)
			go func() {
				res := result{byPub: make([][]int, publishers)}
				var last uint64
				for n := 0; n < total; n++ {
					e, ok := <-sub.C()
					if !ok {
						res.err = fmt.Sprintf("closed after %d", n)
						break
					}
					if e.Seq <= last {
						res.err = fmt.Sprintf("Seq %d after %d", e.Seq, last)
						break
					}
					last = e.Seq
					var p, i int
					if _, err := fmt.Sscanf(e.Topic, "p.%d", &p); err != nil {
						res.err = err.Error()
						break
					}
					if err := e.Decode(&i); err != nil {
						res.err = err.Error()
						break
					}
					res.byPub[p] = append(res.byPub[p], i)
				}
				if st := sub.Stats(); st.Dropped > 0 && res.err == "" {
					res.err = fmt.Sprintf("dropped %d", st.Dropped)
				}
				results[r] <- res
			}()
		}
		publishAll(b, publishers, perPub)
		want := make([]int, perPub)
		for i := range want {
			want[i] = i
		}
		for r := range readers {
			res := <-results[r]
			require.Empty(t, res.err, "reader %d", r)
			for p := range publishers {
				require.Equal(t, want, res.byPub[p], "reader %d, publisher %d", r, p)
			}
		}
	})
}

// TestPacingDropsProperty: a subscriber that never reads, under concurrent
// publishers, is paced once (one short budget) and then loses exactly what
// does not fit in its mailbox, counted, under either dropping policy.
func TestPacingDropsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		publishers := rapid.IntRange(1, 4).Draw(t, "publishers")
		perPub := rapid.IntRange(1, 2000).Draw(t, "events per publisher")
		buffer := rapid.IntRange(1, 64).Draw(t, "buffer")
		policy := rapid.SampledFrom([]eventbus.Overflow{eventbus.DropOldest, eventbus.DropNewest}).Draw(t, "policy")
		b, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithLogger(nil), eventbus.WithStallBudget(time.Millisecond))
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		stalled, err := b.Subscribe(t.Context(), "p.*", eventbus.WithBuffer(buffer), eventbus.WithOverflow(policy))
		require.NoError(t, err)
		publishAll(b, publishers, perPub)
		total := publishers * perPub
		st := stalled.Stats()
		require.Equal(t, min(total, buffer), st.Pending)
		require.Equal(t, uint64(total-min(total, buffer)), st.Dropped)
		switch policy {
		case eventbus.DropOldest:
			require.Equal(t, uint64(total), st.Delivered)
		case eventbus.DropNewest:
			require.Equal(t, uint64(min(total, buffer)), st.Delivered)
		}
	})
}

// publishAll publishes perPub events on "p.<n>" from each of publishers
// goroutines, acknowledged and async alternately, and flushes.
func publishAll(b *eventbus.Bus, publishers, perPub int) {
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			publish := b.PublishAsync
			if p%2 == 1 {
				publish = b.Publish
			}
			for i := range perPub {
				if err := publish(context.Background(), evp(fmt.Sprintf("p.%d", p), i)); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	if err := b.Flush(context.Background()); err != nil {
		panic(err)
	}
}
