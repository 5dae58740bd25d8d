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

// Instrument a bus, publish, and read the counter and the trace context
// the event carries.
func ExampleInstrument() {
	ctx := context.Background()
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(tp),
		otelbus.WithPropagator(propagation.TraceContext{}))
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
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "eventbus.published" {
			fmt.Println(m.Name, m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
		}
	}
	// Output:
	// traceparent: true
	// eventbus.published 1
}
