package otelbus_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/otelbus"
)

func newBus(t *testing.T) *eventbus.Bus {
	t.Helper()
	b, err := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// collect returns the metrics by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(t.Context(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func subAttrs(name, pattern string) attribute.Set {
	return attribute.NewSet(otelbus.SubscriptionKey.String(name), otelbus.PatternKey.String(pattern))
}

func sumOf(t *testing.T, m metricdata.Metrics, set attribute.Set) int64 {
	t.Helper()
	var dps []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		dps = d.DataPoints
	case metricdata.Gauge[int64]:
		dps = d.DataPoints
	default:
		t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
	}
	for _, dp := range dps {
		if dp.Attributes.Equals(&set) {
			return dp.Value
		}
	}
	t.Fatalf("%s: no data point with %v", m.Name, set.ToSlice())
	return 0
}

func TestMetrics(t *testing.T) {
	bus := newBus(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(noop.NewTracerProvider()))
	require.NoError(t, err)
	defer inst.Close()

	ctx := t.Context()
	_, err = bus.Subscribe(ctx, "orders.*", eventbus.WithName("reader"), eventbus.WithBuffer(2), eventbus.WithOverflow(eventbus.DropNewest))
	require.NoError(t, err)
	handled := make(chan struct{}, 8)
	_, err = bus.Handle(ctx, "orders.*", func(context.Context, eventbus.Event) error { handled <- struct{}{}; return nil },
		eventbus.WithName("worker"), eventbus.WithPatterns("refunds.*"))
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "order_created", Topic: "orders.new"}))
	}
	for range 3 {
		<-handled
	}

	m := collect(t, reader)
	tests := []struct {
		metric string
		set    attribute.Set
		want   int64
	}{
		{"eventbus.published", *attribute.EmptySet(), 3},
		{"eventbus.delivered", subAttrs("reader", "orders.*"), 2},
		{"eventbus.dropped", subAttrs("reader", "orders.*"), 1},
		{"eventbus.pending", subAttrs("reader", "orders.*"), 2},
		{"eventbus.delivered", subAttrs("worker", "orders.* refunds.*"), 3},
		{"eventbus.dropped", subAttrs("worker", "orders.* refunds.*"), 0},
		{"eventbus.pending", subAttrs("worker", "orders.* refunds.*"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.metric+" "+tt.set.Encoded(attribute.DefaultEncoder()), func(t *testing.T) {
			require.Contains(t, m, tt.metric)
			assert.Equal(t, tt.want, sumOf(t, m[tt.metric], tt.set))
		})
	}
	t.Run("latency", func(t *testing.T) {
		lat := m["eventbus.delivery.latency"]
		assert.Equal(t, "s", lat.Unit)
		h, ok := lat.Data.(metricdata.Histogram[float64])
		require.True(t, ok)
		require.Len(t, h.DataPoints, 1)
		dp := h.DataPoints[0]
		want := subAttrs("worker", "orders.* refunds.*")
		assert.True(t, dp.Attributes.Equals(&want), dp.Attributes.ToSlice())
		assert.Equal(t, uint64(3), dp.Count)
		assert.Less(t, dp.Sum, 10.0)
	})
	t.Run("close unregisters", func(t *testing.T) {
		require.NoError(t, inst.Close())
		require.NoError(t, inst.Close())
		after := collect(t, reader)
		assert.NotContains(t, after, "eventbus.published")
	})
}

func TestTraces(t *testing.T) {
	bus := newBus(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	inst, err := otelbus.Instrument(bus, otelbus.WithTracerProvider(tp), otelbus.WithPropagator(propagation.TraceContext{}),
		otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()))
	require.NoError(t, err)
	defer inst.Close()

	type seen struct {
		span trace.SpanContext
		meta map[string]string
	}
	got := make(chan seen, 4)
	_, err = bus.Handle(t.Context(), "jobs.*", func(ctx context.Context, e eventbus.Event) error {
		got <- seen{trace.SpanContextFromContext(ctx), e.Metadata}
		if e.Topic == "jobs.bad" {
			return errors.New("bad job")
		}
		return nil
	}, eventbus.WithName("runner"))
	require.NoError(t, err)

	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	caller := map[string]string{"k": "v"}
	require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "job", Topic: "jobs.ok", Metadata: caller}))
	require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "job", Topic: "jobs.bad"}))
	parent.End()
	first, second := <-got, <-got
	assert.Equal(t, map[string]string{"k": "v"}, caller, "the caller's map is not changed")

	tests := []struct {
		name  string
		s     seen
		topic string
		err   bool
	}{{"ok", first, "jobs.ok", false}, {"error", second, "jobs.bad", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Contains(t, tt.s.meta, "traceparent")
			assert.True(t, tt.s.span.IsValid())
			assert.Equal(t, parent.SpanContext().TraceID(), tt.s.span.TraceID(), "one trace from publisher to handler")
		})
	}
	require.Eventually(t, func() bool { return len(rec.Ended()) == 5 }, 5*time.Second, time.Millisecond)
	byKind := map[trace.SpanKind][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byKind[s.SpanKind()] = append(byKind[s.SpanKind()], s)
	}
	require.Len(t, byKind[trace.SpanKindProducer], 2)
	require.Len(t, byKind[trace.SpanKindConsumer], 2)
	for i, c := range byKind[trace.SpanKindConsumer] {
		p := byKind[trace.SpanKindProducer][i]
		assert.Equal(t, "eventbus handle", c.Name())
		assert.Equal(t, p.SpanContext().SpanID(), c.Parent().SpanID(), "the handler span is the publish span's child")
		assert.Equal(t, parent.SpanContext().SpanID(), p.Parent().SpanID())
		assert.Contains(t, c.Attributes(), otelbus.SubscriptionKey.String("runner"))
	}
	assert.Equal(t, "bad job", byKind[trace.SpanKindConsumer][1].Status().Description)

	t.Run("no hook after Close", func(t *testing.T) {
		require.NoError(t, inst.Close())
		require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: "job", Topic: "jobs.late"}))
		assert.NotContains(t, (<-got).meta, "traceparent")
	})
}

func TestNoopTracer(t *testing.T) {
	bus := newBus(t)
	inst, err := otelbus.Instrument(bus, otelbus.WithTracerProvider(noop.NewTracerProvider()),
		otelbus.WithPropagator(propagation.TraceContext{}), otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()))
	require.NoError(t, err)
	defer inst.Close()
	sub, err := bus.Subscribe(t.Context(), "a")
	require.NoError(t, err)
	require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: "x", Topic: "a"}))
	assert.Nil(t, (<-sub.C()).Metadata)
}

func TestInstrumentNilBus(t *testing.T) {
	_, err := otelbus.Instrument(nil)
	require.ErrorIs(t, err, otelbus.ErrInvalidOption)
}
