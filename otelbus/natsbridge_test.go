package otelbus_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
	"github.com/choiros/eventbus/otelbus"
)

// TestAcrossNATS follows one trace from a publisher on one bus, through
// natsbridge and an embedded NATS server, to a handler on another bus.
func TestAcrossNATS(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(5*time.Second))

	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	node := func(name string) *eventbus.Bus {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
		require.NoError(t, err)
		bus, err := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		inst, err := otelbus.Instrument(bus, otelbus.WithTracerProvider(tp), otelbus.WithPropagator(propagation.TraceContext{}),
			otelbus.WithMeterProvider(sdkmetric.NewMeterProvider()))
		require.NoError(t, err)
		br, err := natsbridge.New(bus, nc, natsbridge.WithPatterns("jobs.*"), natsbridge.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		t.Cleanup(func() {
			assert.NoError(t, br.Close())
			assert.NoError(t, inst.Close())
			assert.NoError(t, bus.Close())
			nc.Close()
		})
		return bus
	}
	a, b := node("a"), node("b")
	got := make(chan trace.SpanContext, 1)
	_, err = b.Handle(t.Context(), "jobs.*", func(ctx context.Context, e eventbus.Event) error {
		select {
		case got <- trace.SpanContextFromContext(ctx):
		default: // a later event of the loop below
		}
		return nil
	})
	require.NoError(t, err)

	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	defer parent.End()
	require.Eventually(t, func() bool {
		// Until b's import subscription is in place, what a publishes
		// does not reach b; publish until one does.
		require.NoError(t, a.Publish(ctx, eventbus.Event{Type: "job", Topic: "jobs.run"}))
		select {
		case sc := <-got:
			assert.True(t, sc.IsValid())
			assert.Equal(t, parent.SpanContext().TraceID(), sc.TraceID(), "one trace across the bridge")
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
}
