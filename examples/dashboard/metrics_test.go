package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// TestMetricsScrape scrapes /metrics and parses it as Prometheus does.
func TestMetricsScrape(t *testing.T) {
	a := startApp(t, testConfig())
	handled := make(chan struct{}, 4)
	_, err := a.bus.Handle(t.Context(), "test.*", func(context.Context, eventbus.Event) error {
		handled <- struct{}{}
		return nil
	}, eventbus.WithName("scrape-test"))
	require.NoError(t, err)
	for range 3 {
		emit(t, a, "test.metrics")
	}
	for range 3 {
		<-handled
	}

	status, h, body := get(t, "http://"+a.addr+"/metrics")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, h.Get("Content-Type"), "text/plain")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "%s", body)

	label := func(name string, labels map[string]string) *float64 {
		f, ok := fams[name]
		if !ok {
			return nil
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				return &v
			case m.Gauge != nil:
				v := m.GetGauge().GetValue()
				return &v
			case m.Histogram != nil:
				v := float64(m.GetHistogram().GetSampleCount())
				return &v
			}
		}
		return nil
	}
	sub := map[string]string{"eventbus_subscription": "scrape-test", "eventbus_pattern": "test.*"}
	tests := []struct {
		name    string
		labels  map[string]string
		atLeast float64
	}{
		{"eventbus_published_total", nil, 3},
		{"eventbus_delivered_total", sub, 3},
		{"eventbus_dropped_total", sub, 0},
		{"eventbus_pending", sub, 0},
		{"eventbus_delivery_latency_seconds", sub, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := label(tt.name, tt.labels)
			require.NotNil(t, v, "%s%v not in the scrape:\n%s", tt.name, tt.labels, body)
			assert.GreaterOrEqual(t, *v, tt.atLeast)
		})
	}
}
