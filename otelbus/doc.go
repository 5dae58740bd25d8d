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
//	eventbus.delivery.latency  histogram (s)    from the event's Timestamp to its handler starting (Handle subscriptions)
//
// Per-subscription series carry the attributes eventbus.subscription (its
// name, or its ID when it has none) and eventbus.pattern (its patterns,
// space-separated, as they were when it was first seen).
//
// The counters and the gauge are observed at collection time from the
// bus's own counters (eventbus.Bus.Stats and Bus.Subscriptions), so they
// cost the publish and delivery paths nothing; a subscription's series
// ends with it. The latency histogram is recorded by a handler middleware
// at each handler call. Its start is the event's Timestamp, which the bus
// sets when it accepts an event that has none (an event made by NewEvent
// carries the time it was made).
//
// # Traces
//
// A publish hook starts a producer span "eventbus publish" on the
// publisher's ctx and puts its W3C trace context into the event's
// Metadata ("traceparent", and "tracestate" when there is one) through the
// propagator; a handler middleware extracts it and runs each handler call
// in a consumer span "eventbus handle", the current span in the handler's
// ctx, so one trace follows an event from publisher to handler, and across
// natsbridge, which carries Metadata as NATS headers: a publish whose ctx
// has no span but whose event carries trace context (an import) continues
// that trace. The publish hook
// runs at the start of the publish and cannot see its end, so the publish
// span marks the moment of publishing (it is ended at once); it does not
// cover the wait for delivery.
//
// With a no-op TracerProvider (go.opentelemetry.io/otel/trace/noop)
// there is no publish hook, and the middleware only records latency.
package otelbus
