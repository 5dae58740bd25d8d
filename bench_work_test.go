package eventbus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/choiros/eventbus"
)

// work is the per-event job of the worker-pool benchmarks: a little CPU.
func work(e eventbus.Event) uint64 {
	h := e.Seq
	for i := range 2000 {
		h = h*31 + uint64(i)
	}
	return h
}

var workSink atomic.Uint64

// BenchmarkQueueGroup compares a queue group of 8 Handle members with a
// hand-written pool of 8 goroutines reading one channel, doing the same
// work per event.
func BenchmarkQueueGroup(b *testing.B) {
	const workers = 8
	b.Run("bus/members=8", func(b *testing.B) {
		bus := newBus(b, eventbus.WithStore(nil))
		var done sync.WaitGroup
		for range workers {
			_, err := bus.Handle(context.Background(), "jobs", func(_ context.Context, e eventbus.Event) error {
				workSink.Add(work(e))
				done.Done()
				return nil
			}, eventbus.WithQueueGroup("pool"), eventbus.WithOverflow(eventbus.Block))
			if err != nil {
				b.Fatal(err)
			}
		}
		e := benchEvent("jobs")
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		done.Add(b.N)
		for range b.N {
			if err := bus.PublishAsync(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		done.Wait()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("chan-pool/workers=8", func(b *testing.B) {
		ch := make(chan eventbus.Event, eventbus.DefaultBufferSize)
		var done, stopped sync.WaitGroup
		for range workers {
			stopped.Go(func() {
				for e := range ch {
					workSink.Add(work(e))
					done.Done()
				}
			})
		}
		e := benchEvent("jobs")
		b.ReportAllocs()
		b.ResetTimer()
		done.Add(b.N)
		for i := range b.N {
			e.Seq = uint64(i + 1)
			ch <- e
		}
		done.Wait()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		close(ch)
		stopped.Wait()
	})
}

// BenchmarkHandleRetry is one Handle subscription whose handler never
// fails, with and without WithRetry and WithDeadLetter: the retry path
// costs nothing until a handler fails.
func BenchmarkHandleRetry(b *testing.B) {
	for _, tt := range []struct {
		name string
		opts []eventbus.SubscribeOption
	}{
		{name: "plain"},
		{name: "retry", opts: []eventbus.SubscribeOption{eventbus.WithRetry(eventbus.Retry{Max: 5, Backoff: time.Millisecond}), eventbus.WithDeadLetter("dead")}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			bus := newBus(b, eventbus.WithStore(nil))
			done := make(chan struct{}, 1)
			_, err := bus.Handle(context.Background(), "job", func(context.Context, eventbus.Event) error {
				done <- struct{}{}
				return nil
			}, tt.opts...)
			if err != nil {
				b.Fatal(err)
			}
			e := benchEvent("job")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := bus.Publish(ctx, e); err != nil {
					b.Fatal(err)
				}
				<-done
			}
		})
	}
}
