package otelbus_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/eventbustest"
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
	prod := otelbus.NewProducer()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(prod))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(noop.NewTracerProvider()),
		otelbus.WithProducer(prod))
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
		assert.Equal(t, metricdata.CumulativeTemporality, h.Temporality)
		// One series per subscription, channel and handler alike, counted
		// as the bus counts its own latency statistics.
		byName := map[string]metricdata.HistogramDataPoint[float64]{}
		for _, dp := range h.DataPoints {
			name, _ := dp.Attributes.Value(otelbus.SubscriptionKey)
			byName[name.AsString()] = dp
		}
		require.Len(t, byName, 2)
		for _, in := range bus.Subscriptions() {
			dp, ok := byName[in.Name]
			require.True(t, ok, in.Name)
			want := subAttrs(in.Name, strings.Join(in.Patterns, " "))
			assert.True(t, dp.Attributes.Equals(&want), dp.Attributes.ToSlice())
			assert.Equal(t, in.Stats.Delivered, dp.Count, in.Name)
			assert.Equal(t, in.Stats.Latency.Count(), dp.Count, in.Name)
			assert.InDelta(t, in.Stats.Latency.Sum.Seconds(), dp.Sum, 1e-9, in.Name)
			assert.Equal(t, in.Created, dp.StartTime, in.Name)
			var n uint64
			for _, c := range dp.BucketCounts {
				n += c
			}
			assert.Equal(t, dp.Count, n, in.Name)
			assert.Len(t, dp.BucketCounts, len(dp.Bounds)+1)
			maxv, ok := dp.Max.Value()
			assert.True(t, ok, in.Name)
			assert.InDelta(t, in.Stats.Latency.Max.Seconds(), maxv, 1e-9, in.Name)
		}
	})
	t.Run("close unregisters", func(t *testing.T) {
		require.NoError(t, inst.Close())
		require.NoError(t, inst.Close())
		after := collect(t, reader)
		assert.NotContains(t, after, "eventbus.published")
		assert.NotContains(t, after, "eventbus.delivery.latency")
	})
}

// TestLatencyBuckets checks where the exported histogram puts latencies
// the bus counted, against the bus's own power-of-two buckets.
func TestLatencyBuckets(t *testing.T) {
	bus := newBus(t)
	prod := otelbus.NewProducer()
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()),
		otelbus.WithTracerProvider(noop.NewTracerProvider()), otelbus.WithProducer(prod))
	require.NoError(t, err)
	defer inst.Close()
	// Two subscriptions with the same name and pattern are one series.
	var subs []*eventbus.Subscription
	for range 2 {
		s, err := bus.Subscribe(t.Context(), "a.*", eventbus.WithName("twin"), eventbus.WithBuffer(64))
		require.NoError(t, err)
		subs = append(subs, s)
	}
	for range 50 {
		require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: "x", Topic: "a.b"}))
	}
	sms, err := prod.Produce(t.Context())
	require.NoError(t, err)
	require.Len(t, sms, 1)
	assert.Equal(t, otelbus.ScopeName, sms[0].Scope.Name)
	require.Len(t, sms[0].Metrics, 1)
	h := sms[0].Metrics[0].Data.(metricdata.Histogram[float64])
	require.Len(t, h.DataPoints, 1)
	dp := h.DataPoints[0]
	assert.Equal(t, uint64(100), dp.Count)

	want := make([]uint64, len(dp.Bounds)+1)
	var sum float64
	for _, s := range subs {
		st := s.Stats().Latency
		sum += st.Sum.Seconds()
		for i, c := range st.Buckets {
			// Bucket i holds latencies up to HistogramBound(i); find the
			// exported bucket whose upper bound is the first at or above it.
			k := len(dp.Bounds)
			for j, b := range dp.Bounds {
				if eventbus.HistogramBound(i).Seconds() <= b {
					k = j
					break
				}
			}
			want[k] += c
		}
	}
	assert.Equal(t, want, dp.BucketCounts)
	assert.InDelta(t, sum, dp.Sum, 1e-9)
	assert.InDelta(t, 1.023e-6, dp.Bounds[0], 1e-12, "the first bound is 2^10-1 ns")
	for i := 1; i < len(dp.Bounds); i++ {
		assert.InDelta(t, 2*dp.Bounds[i-1]+1e-9, dp.Bounds[i], 1e-12, "power-of-two bounds")
	}

	t.Run("nothing without subscriptions", func(t *testing.T) {
		for _, s := range subs {
			require.NoError(t, s.Close())
		}
		sms, err := prod.Produce(t.Context())
		require.NoError(t, err)
		assert.Empty(t, sms)
	})
}

// TestLatencyWithoutProducer: without WithProducer, the latency
// histogram is an instrument of the MeterProvider, recorded at each
// handler call.
func TestLatencyWithoutProducer(t *testing.T) {
	bus := newBus(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(noop.NewTracerProvider()))
	require.NoError(t, err)
	defer inst.Close()
	ctx := t.Context()
	handled := make(chan struct{}, 2)
	_, err = bus.Handle(ctx, "a", func(context.Context, eventbus.Event) error { handled <- struct{}{}; return nil }, eventbus.WithName("worker"))
	require.NoError(t, err)
	_, err = bus.Subscribe(ctx, "a", eventbus.WithName("reader"))
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "x", Topic: "a"}))
	}
	for range 2 {
		<-handled
	}

	lat := collect(t, reader)["eventbus.delivery.latency"]
	assert.Equal(t, "s", lat.Unit)
	h, ok := lat.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%T", lat.Data)
	require.Len(t, h.DataPoints, 1, "a series for the Handle subscription only")
	dp := h.DataPoints[0]
	assert.True(t, dp.Attributes.Equals(ptr(subAttrs("worker", "a"))), "%v", dp.Attributes.ToSlice())
	assert.Equal(t, uint64(2), dp.Count)
	assert.Positive(t, dp.Sum)
}

func ptr[T any](v T) *T { return &v }

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

// TestPublishSpan: the publish span lasts as long as the Publish call and
// records its error; for PublishAsync it ends at acceptance.
func TestPublishSpan(t *testing.T) {
	inAuth, release := make(chan struct{}), make(chan error)
	auth := eventbus.AuthorizerFunc(func(_ context.Context, a eventbus.Access) error {
		if a.Action != eventbus.ActionPublish || a.Topic != "held" {
			return nil
		}
		inAuth <- struct{}{}
		return <-release
	})
	b, err := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)), eventbus.WithAuthorizer(auth))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	inst, err := otelbus.Instrument(b, otelbus.WithTracerProvider(tp), otelbus.WithPropagator(propagation.TraceContext{}),
		otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()), otelbus.WithProducer(otelbus.NewProducer()))
	require.NoError(t, err)
	defer inst.Close()
	producers := func(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.SpanKind() == trace.SpanKindProducer {
				out = append(out, s)
			}
		}
		return out
	}

	tests := []struct {
		name    string
		publish func(context.Context, eventbus.Event, ...eventbus.PublishOption) error
		deny    error
	}{
		{"publish", b.Publish, nil},
		{"publish denied", b.Publish, errors.New("not today")},
		{"async", b.PublishAsync, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(producers(rec.Ended()))
			done := make(chan error, 1)
			go func() { done <- tt.publish(t.Context(), eventbus.Event{Type: "x", Topic: "held"}) }()
			<-inAuth // the publish is in progress: past its hooks, not returned
			assert.Len(t, producers(rec.Ended()), before, "the span is still open")
			release <- tt.deny
			err := <-done
			ended := producers(rec.Ended())
			require.Len(t, ended, before+1, "the span ends when the publish returns")
			span := ended[len(ended)-1]
			assert.Equal(t, "eventbus publish", span.Name())
			if tt.deny == nil {
				require.NoError(t, err)
				assert.Equal(t, codes.Unset, span.Status().Code)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrForbidden)
			assert.Equal(t, codes.Error, span.Status().Code)
			assert.Equal(t, err.Error(), span.Status().Description)
			require.Len(t, span.Events(), 1)
			assert.Equal(t, "exception", span.Events()[0].Name)
		})
	}
}

func TestNoopTracer(t *testing.T) {
	bus := newBus(t)
	inst, err := otelbus.Instrument(bus, otelbus.WithTracerProvider(noop.NewTracerProvider()),
		otelbus.WithPropagator(propagation.TraceContext{}), otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()))
	require.NoError(t, err)
	defer inst.Close()
	rec := eventbustest.Record(t, bus, "a")
	require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: "x", Topic: "a"}))
	eventbustest.ExpectExactly(t, rec, eventbustest.Func("no trace context", func(e eventbus.Event) bool { return e.Metadata == nil }))
}

func TestInstrumentNilBus(t *testing.T) {
	_, err := otelbus.Instrument(nil)
	require.ErrorIs(t, err, otelbus.ErrInvalidOption)
}
