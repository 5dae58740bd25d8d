package eventbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// The benchmarks compare the bus with a plain channel fan-out doing the same
// work in the same run: one buffered channel (1024) and one reader goroutine
// per subscriber, the publisher sending the event to each channel its topic
// reaches. That is the physical limit; report both and their ratio. Each
// baseline comes twice: "channel" sends the 144-byte Event by value (what
// the bus's C() carries), "chan-ptr" a pointer to one shared Event, the
// pointer-size message that is the limit users compare a bus with.
//
//	go test -run '^$' -bench . -benchmem

const benchBuffer = 1024

var benchPayload = []byte(`{"worker":"w-17","task":"index","pct":42,"note":"a payload of about one hundred bytes......"}`)

func benchEvent(topic string) eventbus.Event {
	return eventbus.Event{Type: eventbus.WorkerProgress, Topic: topic, Payload: benchPayload, Source: "bench"}
}

// benchSubs subscribes n readers that count what they get; wait returns
// once every reader has received want events.
func benchSubs(b *testing.B, bus *eventbus.Bus, patterns []string) (wait func(want []int)) {
	b.Helper()
	counts := make([]chan int, len(patterns))
	subs := make([]*eventbus.Subscription, len(patterns))
	for i, p := range patterns {
		sub, err := bus.Subscribe(context.Background(), p, eventbus.WithBuffer(benchBuffer), eventbus.WithOverflow(eventbus.Block))
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = sub
		counts[i] = make(chan int)
		go func() {
			n := 0
			for range sub.C() {
				n++
			}
			counts[i] <- n
		}()
	}
	return func(want []int) {
		if err := bus.Close(); err != nil {
			b.Fatal(err)
		}
		for i := range subs {
			if got := <-counts[i]; got != want[i] {
				b.Fatalf("subscriber %d got %d events, want %d", i, got, want[i])
			}
		}
	}
}

// chanFanout is the baseline: route maps a topic to the channels it
// reaches. M is what a channel carries: the Event by value (144 bytes, as
// the bus's C() does) or a pointer to a shared Event (the pointer-size
// message users compare a bus with: "chan-ptr").
type chanFanout[M any] struct {
	route map[string][]chan M
	all   []chan M
	wg    sync.WaitGroup
	got   []int
}

func newChanFanout[M any](n int) *chanFanout[M] {
	f := &chanFanout[M]{route: map[string][]chan M{}, got: make([]int, n)}
	for i := range n {
		ch := make(chan M, benchBuffer)
		f.all = append(f.all, ch)
		f.wg.Go(func() {
			// Count locally: the readers' counters side by side in got
			// would share cache lines, and every receive would pay for
			// the others' writes (false sharing), which a user's
			// channel fan-out does not.
			n := 0
			for range ch {
				n++
			}
			f.got[i] = n
		})
	}
	return f
}

func (f *chanFanout[M]) publish(topic string, m M) {
	for _, ch := range f.route[topic] {
		ch <- m
	}
}

func (f *chanFanout[M]) close() []int {
	for _, ch := range f.all {
		close(ch)
	}
	f.wg.Wait()
	return f.got
}

// benchChannelOneTopic is the baseline for n subscribers of one topic,
// sending msg.
func benchChannelOneTopic[M any](b *testing.B, n int, topic string, msg M) {
	f := newChanFanout[M](n)
	f.route[topic] = f.all
	b.ReportAllocs()
	for b.Loop() {
		f.publish(topic, msg)
	}
	f.close()
	reportDeliveries(b, b.N*n)
}

// benchChannels runs the by-value ("channel") and pointer ("chan-ptr")
// baselines for n subscribers of one topic.
func benchChannels(b *testing.B, n int, topic, suffix string) {
	e := benchEvent(topic)
	b.Run("channel"+suffix, func(b *testing.B) { benchChannelOneTopic(b, n, topic, e) })
	b.Run("chan-ptr"+suffix, func(b *testing.B) { benchChannelOneTopic(b, n, topic, &e) })
}

// reportDeliveries reports events/s (one event per b.N), deliveries/s and
// ns/delivery.
func reportDeliveries(b *testing.B, deliveries int) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")
}

func repeat(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestPublishAllocs holds the allocation budget: an acknowledged Publish of
// an Event literal to one subscriber allocates nothing on the bus's path,
// and neither does PublishAsync (at most 1 is the budget).
func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	for _, store := range []eventbus.Store{nil, eventbus.NewMemoryStore()} {
		bus := newBus(t, eventbus.WithStore(store))
		sub, err := bus.Subscribe(t.Context(), "worker.task", eventbus.WithBuffer(16))
		if err != nil {
			t.Fatal(err)
		}
		e := benchEvent("worker.task")
		ctx := context.Background()
		for name, publish := range map[string]func(context.Context, eventbus.Event, ...eventbus.PublishOption) error{
			"sync": bus.Publish, "async": bus.PublishAsync,
		} {
			allocs := testing.AllocsPerRun(1000, func() {
				if err := publish(ctx, e); err != nil {
					t.Fatal(err)
				}
				<-sub.C()
			})
			if allocs > 1 {
				t.Errorf("%s publish (store %v): %.1f allocations per event, budget 1", name, store != nil, allocs)
			}
		}
		if store != nil {
			require.NoError(t, bus.Close())
			require.NoError(t, store.Close())
		}
	}
}

// BenchmarkPublish is one publisher to one subscriber on an exact topic.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	benchChannels(b, 1, "worker.task", "")
	for _, mode := range []struct {
		name  string
		store eventbus.Store
		sync  bool
	}{
		{"sync", nil, true},
		{"async", nil, false},
		{"sync/store=memory", eventbus.NewMemoryStore(), true},
		{"async/store=memory", eventbus.NewMemoryStore(), false},
	} {
		b.Run(mode.name, func(b *testing.B) {
			bus, err := eventbus.New(eventbus.WithStore(mode.store))
			if err != nil {
				b.Fatal(err)
			}
			wait := benchSubs(b, bus, []string{"worker.task"})
			e := benchEvent("worker.task")
			publish := bus.PublishAsync
			if mode.sync {
				publish = bus.Publish
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := publish(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			wait([]int{b.N})
			reportDeliveries(b, b.N)
		})
	}
}

// BenchmarkFanout is one publisher to 100 subscribers of one topic.
func BenchmarkFanout(b *testing.B) {
	const n = 100
	ctx := context.Background()
	benchChannels(b, n, "chat.room1", fmt.Sprintf("/subs=%d", n))
	for _, stalled := range []bool{false, true} {
		name := fmt.Sprintf("bus/subs=%d", n)
		if stalled {
			// The same, beside one more subscriber that never reads, under
			// the default policy: the 100 should not notice it
			// (deliveries/s counts theirs only).
			name += "+1-stalled"
		}
		b.Run(name, func(b *testing.B) {
			// A stalled subscriber's overflow is reported once per
			// episode; keep it off the log.
			bus, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithErrorHandler(func(error) {}), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			var idle *eventbus.Subscription
			if stalled {
				if idle, err = bus.Subscribe(ctx, "chat.room1", eventbus.WithBuffer(benchBuffer)); err != nil {
					b.Fatal(err)
				}
			}
			patterns := make([]string, n)
			for i := range patterns {
				patterns[i] = "chat.room1"
			}
			wait := benchSubs(b, bus, patterns)
			e := benchEvent("chat.room1")
			b.ReportAllocs()
			for b.Loop() {
				if err := bus.PublishAsync(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			wait(repeat(n, b.N))
			reportDeliveries(b, b.N*n)
			if idle != nil && b.N > benchBuffer && idle.Stats().Dropped == 0 {
				b.Fatalf("the stalled subscriber dropped nothing: %+v", idle.Stats())
			}
		})
	}
}

// BenchmarkWildcard routes over 1,000 topics (t.<g>.<i>, 10 groups of 100)
// to 100 subscribers: 50 on exact topics, 50 on "t.<g>.*".
func BenchmarkWildcard(b *testing.B) {
	ctx := context.Background()
	var topicsList []string
	for g := range 10 {
		for i := range 100 {
			topicsList = append(topicsList, fmt.Sprintf("t.%d.%d", g, i))
		}
	}
	patterns := make([]string, 100)
	for i := range 50 {
		patterns[i] = topicsList[i*20]
		patterns[50+i] = fmt.Sprintf("t.%d.*", i%10)
	}
	// reach[k] lists the subscribers an event on topicsList[k] reaches.
	reach := make([][]int, len(topicsList))
	for k, topic := range topicsList {
		for i, p := range patterns {
			if eventbus.Match(p, topic) {
				reach[k] = append(reach[k], i)
			}
		}
	}
	events := make([]eventbus.Event, len(topicsList))
	for i, topic := range topicsList {
		events[i] = benchEvent(topic)
	}
	// counted turns b.N events (round-robin over the topics) into the
	// expected per-subscriber counts and the total deliveries.
	counted := func(bn int) ([]int, int) {
		want := make([]int, len(patterns))
		total := 0
		for k := range bn {
			for _, i := range reach[k%len(topicsList)] {
				want[i]++
				total++
			}
		}
		return want, total
	}
	b.Run("channel", func(b *testing.B) {
		benchChannelWildcard(b, topicsList, reach, len(patterns), events, counted, func(e *eventbus.Event) eventbus.Event { return *e })
	})
	b.Run("chan-ptr", func(b *testing.B) {
		benchChannelWildcard(b, topicsList, reach, len(patterns), events, counted, func(e *eventbus.Event) *eventbus.Event { return e })
	})
	b.Run("bus", func(b *testing.B) {
		bus, err := eventbus.New(eventbus.WithStore(nil))
		if err != nil {
			b.Fatal(err)
		}
		wait := benchSubs(b, bus, patterns)
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			if err := bus.PublishAsync(ctx, events[k%len(events)]); err != nil {
				b.Fatal(err)
			}
			k++
		}
		want, total := counted(b.N)
		wait(want)
		reportDeliveries(b, total)
	})
}

// benchChannelWildcard is BenchmarkWildcard's baseline: the same routes,
// precomputed, sending msg(event) to every channel its topic reaches.
func benchChannelWildcard[M any](b *testing.B, topics []string, reach [][]int, subs int, events []eventbus.Event,
	counted func(int) ([]int, int), msg func(*eventbus.Event) M) {
	f := newChanFanout[M](subs)
	for k, topic := range topics {
		for _, i := range reach[k] {
			f.route[topic] = append(f.route[topic], f.all[i])
		}
	}
	msgs := make([]M, len(events))
	for i := range events {
		msgs[i] = msg(&events[i])
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		i := k % len(events)
		f.publish(events[i].Topic, msgs[i])
		k++
	}
	got := f.close()
	want, total := counted(b.N)
	if !slices.Equal(got, want) {
		b.Fatalf("baseline delivered %v, want %v", got, want)
	}
	reportDeliveries(b, total)
}

// BenchmarkLatency measures end-to-end latency, from just before Publish to
// receipt by the subscriber, one event at a time, beside the same through a
// plain channel.
func BenchmarkLatency(b *testing.B) {
	ctx := context.Background()
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
		b.ReportMetric(pct(0.50), "p50-ns")
		b.ReportMetric(pct(0.95), "p95-ns")
		b.ReportMetric(pct(0.99), "p99-ns")
	}
	e := benchEvent("lat")
	b.Run("channel", func(b *testing.B) { report(b, benchChannelLatency(b, e)) })
	b.Run("chan-ptr", func(b *testing.B) { report(b, benchChannelLatency(b, &e)) })
	for _, mode := range []struct {
		name    string
		publish func(*eventbus.Bus) func(context.Context, eventbus.Event, ...eventbus.PublishOption) error
	}{
		{"bus/async", func(bus *eventbus.Bus) func(context.Context, eventbus.Event, ...eventbus.PublishOption) error {
			return bus.PublishAsync
		}},
		{"bus/sync", func(bus *eventbus.Bus) func(context.Context, eventbus.Event, ...eventbus.PublishOption) error {
			return bus.Publish
		}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			bus, err := eventbus.New(eventbus.WithStore(nil))
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			sub, err := bus.Subscribe(ctx, "lat", eventbus.WithBuffer(benchBuffer))
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan time.Time)
			go func() {
				for range sub.C() {
					done <- time.Now()
				}
			}()
			publish := mode.publish(bus)
			e := benchEvent("lat")
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if err := publish(ctx, e); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-done).Sub(start))
			}
			report(b, lat)
		})
	}
}

// benchChannelLatency is BenchmarkLatency's baseline: one buffered channel
// carrying msg and a reader, one message at a time; it returns the
// latencies.
func benchChannelLatency[M any](b *testing.B, msg M) []time.Duration {
	ch := make(chan M, benchBuffer)
	done := make(chan time.Time)
	go func() {
		for range ch {
			done <- time.Now()
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		ch <- msg
		lat = append(lat, (<-done).Sub(start))
	}
	close(ch)
	return lat
}

// mixedPattern returns the i-th pattern of a population of mixed shapes, as
// many services hold them (one per WebSocket client, session or entity):
// 40 % exact topics, 30 % "prefix.*", 29 % globs with a literal prefix and
// suffix ("g17.*.x17?") and 1 % residual globs with no literal prefix or
// suffix ("*.r17.*"). No two are the same, and none matches the topics the
// benchmarks publish to.
func mixedPattern(i int) string {
	switch r := i % 100; {
	case r < 40:
		return fmt.Sprintf("ent.%d.state", i)
	case r < 70:
		return fmt.Sprintf("sess%d.*", i)
	case r < 99:
		return fmt.Sprintf("g%d.*.x%d?", i, i)
	default:
		return fmt.Sprintf("*.r%d.*", i)
	}
}

// subscribeMixed subscribes n idle subscriptions of mixedPattern(0…n-1)
// with the bus's default bound and policy.
func subscribeMixed(b *testing.B, bus *eventbus.Bus, n int) []*eventbus.Subscription {
	b.Helper()
	subs := make([]*eventbus.Subscription, n)
	for i := range subs {
		s, err := bus.Subscribe(context.Background(), mixedPattern(i))
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
	}
	return subs
}

// BenchmarkSubscribe measures one Subscribe and Close (ns/op is the pair)
// of a subscription of mixed shape beside subs idle subscriptions of mixed
// shapes (see mixedPattern) already present: the cost of a WebSocket client
// connecting and leaving while thousands are connected. Setting up 100,000
// subscriptions takes a while; run one size with -bench 'Subscribe/subs=1000$'.
func BenchmarkSubscribe(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 20_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			bus, err := eventbus.New(eventbus.WithStore(nil))
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			subscribeMixed(b, bus, n)
			b.ReportAllocs()
			i := n
			for b.Loop() {
				s, err := bus.Subscribe(ctx, mixedPattern(i))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkIdleSubscription measures what an idle subscription with the
// default bound (1,000) costs: each op creates subs subscriptions of mixed
// shapes (see mixedPattern) on a fresh bus, and the memory they hold after
// a GC is reported per subscription from runtime.MemStats: "heap-B/sub"
// (HeapInuse), "stack-B/sub" (StackInuse: the goroutines a subscription
// may start), their sum "B/sub", and "goroutines/sub". ns/op is the time to
// create them all. Run it with -benchtime=3x or so; each op holds every
// subscription at once.
func BenchmarkIdleSubscription(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var heap, stack, gor float64
			ops := 0
			for b.Loop() {
				b.StopTimer()
				bus, err := eventbus.New(eventbus.WithStore(nil))
				if err != nil {
					b.Fatal(err)
				}
				before, g0 := memNow()
				b.StartTimer()
				subs := subscribeMixed(b, bus, n)
				b.StopTimer()
				after, g1 := memNow()
				heap += (float64(after.HeapInuse) - float64(before.HeapInuse)) / float64(n)
				stack += (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)
				gor += float64(g1-g0) / float64(n)
				ops++
				for _, s := range subs {
					_ = s.Close()
				}
				if err := bus.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(heap/float64(ops), "heap-B/sub")
			b.ReportMetric(stack/float64(ops), "stack-B/sub")
			b.ReportMetric((heap+stack)/float64(ops), "B/sub")
			b.ReportMetric(gor/float64(ops), "goroutines/sub")
		})
	}
}

// memNow collects garbage and returns the memory statistics and the
// number of goroutines. It collects twice: what a sync.Pool holds (and
// whatever the pool's owner, such as a closed Bus, holds) lives on until
// the second collection after it was last used.
func memNow() (runtime.MemStats, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m, runtime.NumGoroutine()
}

// BenchmarkMemoryStoreAppend appends batches of 64 events to a full
// MemoryStore (the default 10,000), as the loop does under load: ns/op is
// per event.
func BenchmarkMemoryStoreAppend(b *testing.B) {
	ctx := context.Background()
	store := eventbus.NewMemoryStore()
	defer store.Close()
	batch := make([]eventbus.Event, 64)
	for i := range batch {
		batch[i] = benchEvent("worker.task")
	}
	var seq uint64
	fill := func() {
		for i := range batch {
			seq++
			batch[i].Seq = seq
		}
		if err := store.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for range eventbus.DefaultMemoryEvents / len(batch) {
		fill()
	}
	b.ReportAllocs()
	for b.Loop() {
		fill()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
}
