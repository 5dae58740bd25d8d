package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/otelbus"
)

// metrics is the bus's OpenTelemetry instrumentation (otelbus) exported
// through the OpenTelemetry Prometheus exporter on a registry of its own,
// served at /metrics: eventbus_published_total, eventbus_delivered_total,
// eventbus_dropped_total, eventbus_pending and
// eventbus_delivery_latency_seconds, the per-subscription ones labelled
// eventbus_subscription and eventbus_pattern. Tracing is off here (there
// is nowhere to send spans).
type metrics struct {
	handler http.Handler
	inst    *otelbus.Instrumentation
	mp      *sdkmetric.MeterProvider
}

func newMetrics(bus *eventbus.Bus) (*metrics, error) {
	reg := prometheus.NewRegistry()
	// The latency histogram comes from the bus's own histograms through
	// an otelbus.Producer, which the exporter collects with the rest.
	prod := otelbus.NewProducer()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes), otelprom.WithProducer(prod))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	inst, err := otelbus.Instrument(bus, otelbus.WithMeterProvider(mp), otelbus.WithTracerProvider(noop.NewTracerProvider()),
		otelbus.WithProducer(prod))
	if err != nil {
		return nil, errors.Join(err, mp.Shutdown(context.Background()))
	}
	return &metrics{handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), inst: inst, mp: mp}, nil
}

func (m *metrics) close() {
	_ = m.inst.Close()
	_ = m.mp.Shutdown(context.Background())
}
