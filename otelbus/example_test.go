package otelbus_test

import (
	"context"
	"fmt"
	"log"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/otelbus"
)

// Instrument a bus, publish, and read the trace context the event
// carries, the counter and the latency histogram.
func ExampleInstrument() {
	ctx := context.Background()
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	// The reader collects the latency histogram from the Producer.
	prod := otelbus.NewProducer()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(prod))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(tp),
		otelbus.WithPropagator(propagation.TraceContext{}), otelbus.WithProducer(prod))
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close()

	sub, err := bus.Subscribe(ctx, "orders.*")
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.Publish(ctx, eventbus.Event{Type: "order_created", Topic: "orders.new"}); err != nil {
		log.Fatal(err)
	}
	e := <-sub.C()
	fmt.Println("traceparent:", len(e.Metadata["traceparent"]) == 55)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "eventbus.published" {
					fmt.Println(m.Name, d.DataPoints[0].Value)
				}
			case metricdata.Histogram[float64]:
				fmt.Println(m.Name, "count", d.DataPoints[0].Count)
			}
		}
	}
	// Output:
	// traceparent: true
	// eventbus.published 1
	// eventbus.delivery.latency count 1
}
