// Package otelbus instruments an eventbus.Bus with OpenTelemetry metrics
// and traces.
//
//	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(tp))
//	defer inst.Close()
//
// # Metrics
//
// Under the meter "github.com/choiros/eventbus/otelbus":
//
//	eventbus.published         int64 counter    events the bus accepted
//	eventbus.delivered         int64 counter    events put into a subscription's mailbox, per subscription
//	eventbus.dropped           int64 counter    events a subscription lost to its overflow policy, per subscription
//	eventbus.pending           int64 gauge      events waiting in a subscription's mailbox
//
// and, through a Producer (below):
//
//	eventbus.delivery.latency  histogram (s)    from the bus taking an event to its entering the mailbox
//	                                            (Subscribe) or its handler starting (Handle), per subscription
//
// Per-subscription series carry the attributes eventbus.subscription (its
// name, or its ID when it has none) and eventbus.pattern (its patterns,
// space-separated, as they were when it was first seen).
//
// Every metric is read at collection time from what the bus counts anyway
// (eventbus.Bus.Stats and Bus.Subscriptions), so it costs the publish and
// delivery paths nothing; a subscription's series ends with it. The
// counters and the gauge are observable instruments. The latency
// histogram is the one the bus keeps per subscription
// (eventbus.SubscriptionStats.Latency, power-of-two buckets, here from
// about 1 µs to 4.6 minutes), and the same latency: it starts when the
// bus goroutine takes the event, not at the event's Timestamp. As the
// OpenTelemetry metric API has no asynchronous histogram, it reaches the
// SDK as an external producer, which the reader must be given:
//
//	prod := otelbus.NewProducer()
//	reader := sdkmetric.NewPeriodicReader(exporter, sdkmetric.WithProducer(prod))
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
//	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithProducer(prod))
//
// Without WithProducer, the histogram is instead an ordinary
// OpenTelemetry histogram (the same buckets) that a handler middleware
// records at each handler call, from the event's Timestamp (which the bus
// sets when it accepts the event, unless the publisher set it): it works
// with any MeterProvider, but covers Handle subscriptions only and costs
// an SDK call per event (about half again the cost of a trivial handler
// call in BenchmarkPublish/handler); the Producer is the way to have it for
// every subscription for nothing.
//
// # Traces
//
// A publish hook (eventbus.Hooks.PublishStart) starts a producer span
// "eventbus publish" on the publisher's ctx, puts its W3C trace context
// into the event's Metadata ("traceparent", and "tracestate" when there
// is one) through the propagator, and ends the span when the publish
// returns, with its error: Publish's once the event is persisted and in
// its subscriptions' mailboxes, PublishAsync's once it is accepted. A
// handler middleware extracts the trace context and runs each handler
// call in a consumer span "eventbus handle", the current span in the
// handler's ctx, so one trace follows an event from publisher to handler,
// and across natsbridge, which carries Metadata as NATS headers: a
// publish whose ctx has no span but whose event carries trace context (an
// import) continues that trace.
//
// With a no-op TracerProvider (go.opentelemetry.io/otel/trace/noop) and
// a Producer there is neither hook nor middleware: metrics alone add
// nothing to a publish or a handler call.
package otelbus
