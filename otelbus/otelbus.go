package otelbus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choiros/eventbus"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/choiros/eventbus/otelbus"

// Attribute keys of per-subscription series and spans.
const (
	SubscriptionKey = attribute.Key("eventbus.subscription")
	PatternKey      = attribute.Key("eventbus.pattern")
)

// ErrInvalidOption reports a nil bus or an unusable option.
var ErrInvalidOption = errors.New("otelbus: invalid option")

// Option configures Instrument.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
	prod *Producer
}

// WithMeterProvider sets where the metrics go. Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithTracerProvider sets where the spans go; a noop.TracerProvider turns
// tracing off. Default: otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithPropagator sets how trace context is written to and read from an
// event's Metadata, such as propagation.TraceContext{} for W3C
// traceparent. Default: otel.GetTextMapPropagator().
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithProducer makes p export the bus's delivery latency histogram
// (eventbus.delivery.latency) from the histograms the bus keeps: for every
// subscription, at no cost per event; p must be given to the reader too
// (see Producer). Without it, the histogram is an OpenTelemetry
// instrument recorded at each handler call (Handle subscriptions only).
func WithProducer(p *Producer) Option {
	return optionFunc(func(c *config) { c.prod = p })
}

// Instrumentation is a bus's instrumentation; Close removes it.
type Instrumentation struct {
	bus    *eventbus.Bus
	attrs  *attrCache
	reg    metric.Registration
	prod   *Producer
	remove func()
	once   sync.Once
}

// Instrument registers the counters and the gauge with the meter, adds
// the bus to the Producer of the latency histogram, and, unless tracing
// is off, adds a publish hook and a handler middleware to bus
// (eventbus.Bus.AddHooks); handlers pick up the middleware before their
// next event. Errors wrap ErrInvalidOption, or come from the meter.
func Instrument(bus *eventbus.Bus, opts ...Option) (*Instrumentation, error) {
	if bus == nil {
		return nil, errors.Join(ErrInvalidOption, errors.New("otelbus: nil bus"))
	}
	cfg := config{}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.prop == nil {
		cfg.prop = otel.GetTextMapPropagator()
	}
	meter := cfg.mp.Meter(ScopeName)
	published, err := meter.Int64ObservableCounter("eventbus.published", metric.WithUnit("{event}"),
		metric.WithDescription("Events the bus accepted."))
	if err != nil {
		return nil, err
	}
	delivered, err := meter.Int64ObservableCounter("eventbus.delivered", metric.WithUnit("{event}"),
		metric.WithDescription("Events put into a subscription's mailbox."))
	if err != nil {
		return nil, err
	}
	dropped, err := meter.Int64ObservableCounter("eventbus.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Events a subscription lost to its overflow policy."))
	if err != nil {
		return nil, err
	}
	pending, err := meter.Int64ObservableGauge("eventbus.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events waiting in a subscription's mailbox."))
	if err != nil {
		return nil, err
	}
	var latency metric.Float64Histogram // recorded per handler call, without a Producer
	if cfg.prod == nil {
		latency, err = meter.Float64Histogram("eventbus.delivery.latency", metric.WithUnit("s"),
			metric.WithDescription("Time from an event's Timestamp to its handler starting (Handle subscriptions)."),
			metric.WithExplicitBucketBoundaries(latencyBounds...))
		if err != nil {
			return nil, err
		}
	}
	inst := &Instrumentation{bus: bus, attrs: &attrCache{m: make(map[string]attrEntry)}, prod: cfg.prod, remove: func() {}}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(published, int64(bus.Stats().Published))
		for _, in := range inst.subscriptions() {
			set := metric.WithAttributeSet(inst.attrs.get(in.ID, in.Name, in.Patterns))
			o.ObserveInt64(delivered, int64(in.Stats.Delivered), set)
			o.ObserveInt64(dropped, int64(in.Stats.Dropped), set)
			o.ObserveInt64(pending, int64(in.Stats.Pending), set)
		}
		return nil
	}, published, delivered, dropped, pending)
	if err != nil {
		return nil, err
	}
	inst.reg = reg
	var tracer trace.Tracer
	if _, off := cfg.tp.(noop.TracerProvider); !off {
		tracer = cfg.tp.Tracer(ScopeName)
	}
	var h eventbus.Hooks
	if tracer != nil {
		h.PublishStart = publishStart(tracer, cfg.prop)
	}
	if tracer != nil || latency != nil {
		h.Middleware = middleware(tracer, cfg.prop, latency, inst.attrs)
		inst.remove = bus.AddHooks(h)
	}
	if cfg.prod != nil {
		cfg.prod.add(inst)
	}
	return inst, nil
}

// Close removes the hooks, unregisters the metrics' callback and takes the
// bus out of its Producer. It is safe to call more than once.
func (i *Instrumentation) Close() error {
	var err error
	i.once.Do(func() {
		i.remove()
		if i.prod != nil {
			i.prod.remove(i)
		}
		err = i.reg.Unregister()
	})
	return err
}

// subscriptions returns the bus's subscriptions, and forgets the
// attributes of those that have ended.
func (i *Instrumentation) subscriptions() []eventbus.SubscriberInfo {
	asOf := time.Now()
	infos := i.bus.Subscriptions()
	i.attrs.keep(infos, asOf)
	return infos
}

// attrCache keeps each subscription's attribute set, so that collecting
// does not rebuild them and a subscription's series keep the attributes
// it had when first seen.
type attrCache struct {
	mu sync.Mutex
	m  map[string]attrEntry // by subscription ID
}

type attrEntry struct {
	set   attribute.Set
	added time.Time // the subscription was live then
}

func (c *attrCache) get(id, name string, patterns []string) attribute.Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.m[id]; ok {
		return a.set
	}
	if name == "" {
		name = id
	}
	s := attribute.NewSet(SubscriptionKey.String(name), PatternKey.String(strings.Join(patterns, " ")))
	c.m[id] = attrEntry{set: s, added: time.Now()}
	return s
}

// keep forgets the subscriptions not in infos, a list of the live ones
// taken after asOf, that it had before asOf: those have ended (one added
// later may be missing because it was made after the list was taken).
func (c *attrCache) keep(infos []eventbus.SubscriberInfo, asOf time.Time) {
	live := make(map[string]struct{}, len(infos))
	for _, in := range infos {
		live[in.ID] = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, a := range c.m {
		if _, ok := live[id]; !ok && a.added.Before(asOf) {
			delete(c.m, id)
		}
	}
}

// publishStart starts a producer span, writes its context into the
// event's Metadata, and returns the end of the span, which the bus calls
// when the publish returns.
func publishStart(tracer trace.Tracer, prop propagation.TextMapPropagator) func(context.Context, *eventbus.Event) func(error) {
	return func(ctx context.Context, e *eventbus.Event) func(error) {
		if len(e.Metadata) > 0 && !trace.SpanContextFromContext(ctx).IsValid() {
			// An event that arrives with trace context (natsbridge
			// importing it, say) continues its trace.
			ctx = prop.Extract(ctx, propagation.MapCarrier(e.Metadata))
		}
		ctx, span := tracer.Start(ctx, "eventbus publish", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "eventbus"),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", e.Topic),
				attribute.String("eventbus.event_type", string(e.Type)),
			))
		if e.Metadata == nil {
			e.Metadata = make(map[string]string, 2)
		}
		prop.Inject(ctx, propagation.MapCarrier(e.Metadata))
		if len(e.Metadata) == 0 {
			e.Metadata = nil
		}
		return func(err error) {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
}

// middleware records, with latency, the time from the event's Timestamp
// to the handler call, and, with a tracer, runs each handler call in a
// consumer span continuing the publisher's trace.
func middleware(tracer trace.Tracer, prop propagation.TextMapPropagator, latency metric.Float64Histogram, attrs *attrCache) func(eventbus.HandlerFunc) eventbus.HandlerFunc {
	return func(next eventbus.HandlerFunc) eventbus.HandlerFunc {
		var sub []attribute.KeyValue // this subscription's attributes, set at its first call
		var rec []metric.RecordOption
		ready := false
		return func(ctx context.Context, e eventbus.Event) error {
			if !ready {
				var set attribute.Set
				if s := eventbus.SubscriptionFrom(ctx); s != nil {
					set = attrs.get(s.ID(), s.Name(), s.Patterns())
				}
				sub = slices.Clip(set.ToSlice())
				rec = []metric.RecordOption{metric.WithAttributeSet(set)} // a slice, so Record does not allocate one
				ready = true
			}
			if latency != nil && !e.Timestamp.IsZero() {
				latency.Record(ctx, time.Since(e.Timestamp).Seconds(), rec...)
			}
			if tracer == nil {
				return next(ctx, e)
			}
			if len(e.Metadata) > 0 {
				ctx = prop.Extract(ctx, propagation.MapCarrier(e.Metadata))
			}
			ctx, span := tracer.Start(ctx, "eventbus handle", trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(append(sub,
					attribute.String("messaging.system", "eventbus"),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", e.Topic),
					attribute.String("messaging.message.id", e.ID.String()),
					attribute.String("eventbus.event_type", string(e.Type)),
				)...))
			defer span.End()
			err := next(ctx, e)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}
