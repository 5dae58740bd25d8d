package natsbridge_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

// benchReceiver counts the events arriving on one receiving bus and records
// their latency from creation on the sending bus to the handler starting.
type benchReceiver struct {
	got  atomic.Int64
	lat  []int64
	kick chan<- struct{}
}

func (r *benchReceiver) handle(_ context.Context, e eventbus.Event) error {
	i := r.got.Add(1) - 1
	if i < int64(len(r.lat)) {
		r.lat[i] = time.Since(e.Timestamp).Nanoseconds()
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil
}

// BenchmarkCrossBus measures events crossing from one bus to 1 or 3 others
// through an embedded nats-server over loopback (core NATS, one connection
// per bus). The publisher keeps at most inflight events on their way (1:
// one at a time, pure latency; 512: a pipeline, throughput). Latency is from
// NewEvent on the sending bus to the handler starting on a receiving bus;
// allocs/op count the whole process (both buses, both bridges, nats.go and
// the server) per event sent.
func BenchmarkCrossBus(b *testing.B) {
	for _, to := range []int{1, 3} {
		for _, inflight := range []int{1, 512} {
			b.Run(fmt.Sprintf("to=%d/inflight=%d", to, inflight), func(b *testing.B) {
				benchCrossBus(b, to, inflight)
			})
		}
	}
}

func benchCrossBus(b *testing.B, to, inflight int) {
	srv := startServer(b, "")
	src := startBenchBus(b, connect(b, srv.url(), nil), natsbridge.WithExport("bench.*"))
	kick := make(chan struct{}, 1)
	recv := make([]*benchReceiver, to)
	for i := range recv {
		bus := startBenchBus(b, connect(b, srv.url(), nil), natsbridge.WithImport("bench.*"))
		recv[i] = &benchReceiver{lat: make([]int64, b.N), kick: kick}
		_, err := bus.Handle(context.Background(), "bench.*", recv[i].handle,
			eventbus.WithBuffer(4096), eventbus.WithOverflow(eventbus.Block))
		require.NoError(b, err)
	}
	slowest := func() int64 {
		least := recv[0].got.Load()
		for _, r := range recv[1:] {
			least = min(least, r.got.Load())
		}
		return least
	}
	waitFor := func(n int64) {
		if slowest() >= n {
			return
		}
		deadline := time.After(waitLimit)
		for slowest() < n {
			select {
			case <-kick:
			case <-deadline:
				b.Fatalf("only %d of %d events arrived", slowest(), n)
			}
		}
	}
	ctx := context.Background()
	payload := []byte(`{"worker":7,"progress":0.5}`)

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		waitFor(int64(i + 1 - inflight))
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, "bench.worker.progress", payload, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := src.PublishAsync(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(int64(b.N))
	b.StopTimer()

	var all []int64
	for _, r := range recv {
		all = append(all, r.lat...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(all[len(all)/2]), "p50-ns")
	b.ReportMetric(float64(all[len(all)*99/100]), "p99-ns")
}

// startBenchBus starts a bus with a bridge on nc; the benchmark closes them.
func startBenchBus(b *testing.B, nc *nats.Conn, opts ...natsbridge.Option) *eventbus.Bus {
	b.Helper()
	bus, err := eventbus.New(eventbus.WithLogger(nil))
	require.NoError(b, err)
	br, err := natsbridge.New(bus, nc, append(opts, natsbridge.WithLogger(nil))...)
	require.NoError(b, err)
	b.Cleanup(func() {
		require.NoError(b, br.Close())
		require.NoError(b, bus.Close())
	})
	return bus
}
