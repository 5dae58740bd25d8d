package otelbus

import (
	"context"
	"errors"
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

// Instrumentation is a bus's instrumentation; Close removes it.
type Instrumentation struct {
	reg    metric.Registration
	remove func()
	once   sync.Once
}

// Instrument registers the metrics and adds the publish hook and the
// handler middleware (eventbus.Bus.AddHooks) to bus. Handlers pick up the
// middleware before their next event. Errors wrap ErrInvalidOption, or
// come from the meter.
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
	latency, err := meter.Float64Histogram("eventbus.delivery.latency", metric.WithUnit("s"),
		metric.WithDescription("Time from an event's Timestamp to its handler starting."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		return nil, err
	}
	attrs := &attrCache{m: make(map[string]attribute.Set)}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(published, int64(bus.Stats().Published))
		infos := bus.Subscriptions()
		seen := make(map[string]struct{}, len(infos))
		for _, in := range infos {
			seen[in.ID] = struct{}{}
			set := metric.WithAttributeSet(attrs.get(in.ID, in.Name, in.Patterns))
			o.ObserveInt64(delivered, int64(in.Stats.Delivered), set)
			o.ObserveInt64(dropped, int64(in.Stats.Dropped), set)
			o.ObserveInt64(pending, int64(in.Stats.Pending), set)
		}
		attrs.keep(seen)
		return nil
	}, published, delivered, dropped, pending)
	if err != nil {
		return nil, err
	}
	var tracer trace.Tracer
	if _, off := cfg.tp.(noop.TracerProvider); !off {
		tracer = cfg.tp.Tracer(ScopeName)
	}
	h := eventbus.Hooks{Middleware: middleware(tracer, cfg.prop, latency, attrs)}
	if tracer != nil {
		h.Publish = publishHook(tracer, cfg.prop)
	}
	return &Instrumentation{reg: reg, remove: bus.AddHooks(h)}, nil
}

// Close removes the hooks and unregisters the metrics' callback. It is
// safe to call more than once.
func (i *Instrumentation) Close() error {
	var err error
	i.once.Do(func() {
		i.remove()
		err = i.reg.Unregister()
	})
	return err
}

// attrCache keeps each subscription's attribute set, so that collecting
// does not rebuild them.
type attrCache struct {
	mu sync.Mutex
	m  map[string]attribute.Set
}

func (c *attrCache) get(id, name string, patterns []string) attribute.Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[id]; ok {
		return s
	}
	if name == "" {
		name = id
	}
	s := attribute.NewSet(SubscriptionKey.String(name), PatternKey.String(strings.Join(patterns, " ")))
	c.m[id] = s
	return s
}

// keep forgets the subscriptions not in seen.
func (c *attrCache) keep(seen map[string]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if _, ok := seen[id]; !ok {
			delete(c.m, id)
		}
	}
}

// publishHook starts and ends a producer span and writes its context into
// the event's Metadata.
func publishHook(tracer trace.Tracer, prop propagation.TextMapPropagator) func(context.Context, *eventbus.Event) {
	return func(ctx context.Context, e *eventbus.Event) {
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
		defer span.End()
		if e.Metadata == nil {
			e.Metadata = make(map[string]string, 2)
		}
		prop.Inject(ctx, propagation.MapCarrier(e.Metadata))
		if len(e.Metadata) == 0 {
			e.Metadata = nil
		}
	}
}

// middleware records delivery latency and, with a tracer, runs each
// handler call in a consumer span continuing the publisher's trace.
func middleware(tracer trace.Tracer, prop propagation.TextMapPropagator, latency metric.Float64Histogram, attrs *attrCache) func(eventbus.HandlerFunc) eventbus.HandlerFunc {
	return func(next eventbus.HandlerFunc) eventbus.HandlerFunc {
		var rec []metric.RecordOption // this subscription's attributes, set at its first call; a slice so Record does not allocate one
		var set attribute.Set
		return func(ctx context.Context, e eventbus.Event) error {
			start := time.Now()
			if rec == nil {
				if s := eventbus.SubscriptionFrom(ctx); s != nil {
					set = attrs.get(s.ID(), s.Name(), s.Patterns())
				}
				rec = []metric.RecordOption{metric.WithAttributeSet(set)}
			}
			if !e.Timestamp.IsZero() {
				latency.Record(ctx, start.Sub(e.Timestamp).Seconds(), rec...)
			}
			if tracer == nil {
				return next(ctx, e)
			}
			if len(e.Metadata) > 0 {
				ctx = prop.Extract(ctx, propagation.MapCarrier(e.Metadata))
			}
			ctx, span := tracer.Start(ctx, "eventbus handle", trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(append(set.ToSlice(),
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
