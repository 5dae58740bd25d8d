package otelbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/otelbus"
)

// BenchmarkPublish measures an acknowledged publish to one subscriber and
// to 100, and a publish handled by a Handle subscription, without
// instrumentation, with otelbus metrics only (no-op tracer), with a
// Producer for the latency histogram or without (an SDK histogram
// recorded per handler call), and with metrics and traces (SDK tracer,
// always sampled, nothing exported).
func BenchmarkPublish(b *testing.B) {
	metrics := func(opts ...otelbus.Option) []otelbus.Option {
		prod := otelbus.NewProducer()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(prod))))
		return append(opts, otelbus.WithMeterProvider(mp), otelbus.WithProducer(prod))
	}
	modes := []struct {
		name string
		opts func() []otelbus.Option
	}{
		{"otel=off", nil},
		{"otel=metrics", func() []otelbus.Option {
			return metrics(otelbus.WithTracerProvider(noop.NewTracerProvider()))
		}},
		{"otel=metrics-no-producer", func() []otelbus.Option {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			return []otelbus.Option{otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(noop.NewTracerProvider())}
		}},
		{"otel=metrics+traces", func() []otelbus.Option {
			return metrics(otelbus.WithTracerProvider(sdktrace.NewTracerProvider()), otelbus.WithPropagator(propagation.TraceContext{}))
		}},
	}
	for _, shape := range []string{"subs=1", "subs=100", "handler"} {
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/%s", shape, mode.name), func(b *testing.B) {
				bus, err := eventbus.New(eventbus.WithStore(nil), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
				if err != nil {
					b.Fatal(err)
				}
				defer bus.Close()
				if mode.opts != nil {
					inst, err := otelbus.Instrument(bus, mode.opts()...)
					if err != nil {
						b.Fatal(err)
					}
					defer inst.Close()
				}
				ctx := context.Background()
				var subs []*eventbus.Subscription
				done := make(chan struct{}, 1)
				switch shape {
				case "subs=1", "subs=100":
					n := 1
					if shape == "subs=100" {
						n = 100
					}
					for range n {
						s, err := bus.Subscribe(ctx, "bench.topic", eventbus.WithBuffer(16))
						if err != nil {
							b.Fatal(err)
						}
						subs = append(subs, s)
					}
				case "handler":
					if _, err := bus.Handle(ctx, "bench.topic", func(context.Context, eventbus.Event) error {
						done <- struct{}{}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
				}
				e := eventbus.Event{Type: "bench", Topic: "bench.topic", Payload: []byte(`{"n":1}`)}
				b.ReportAllocs()
				for b.Loop() {
					if err := bus.Publish(ctx, e); err != nil {
						b.Fatal(err)
					}
					for _, s := range subs {
						<-s.C()
					}
					if shape == "handler" {
						<-done
					}
				}
			})
		}
	}
}
