package otelbus

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/choiros/eventbus"
)

// Producer exports the delivery latency histogram,
// eventbus.delivery.latency, of every bus instrumented with it
// (WithProducer), at collection time, from the histograms the bus keeps
// per subscription (eventbus.SubscriptionStats.Latency): recording it
// costs the delivery path no OpenTelemetry call. The OpenTelemetry metric
// API has no asynchronous histogram, so the histogram reaches the SDK as
// an external producer: give the Producer to the reader that should
// export it, with sdkmetric.WithProducer (or the Prometheus exporter's
// WithProducer). The histogram is cumulative whatever the reader's
// temporality. A Producer is safe for concurrent use.
type Producer struct {
	mu    sync.Mutex
	insts []*Instrumentation
}

var _ sdkmetric.Producer = (*Producer)(nil)

// NewProducer returns a Producer with no bus.
func NewProducer() *Producer { return new(Producer) }

func (p *Producer) add(i *Instrumentation) {
	p.mu.Lock()
	p.insts = append(p.insts, i)
	p.mu.Unlock()
}

func (p *Producer) remove(i *Instrumentation) {
	p.mu.Lock()
	p.insts = slices.DeleteFunc(p.insts, func(j *Instrumentation) bool { return j == i })
	p.mu.Unlock()
}

// latencyFirst is the first of the bus's histogram buckets that the
// exported histogram keeps apart: the buckets below it, latencies up to
// about a microsecond, are added to it.
const latencyFirst = 10

// latencyBounds are the exported histogram's bucket bounds in seconds:
// the bus's power-of-two bounds from latencyFirst (1.023 µs) to
// 2^38-1 ns (about 4.6 minutes).
var latencyBounds = func() []float64 {
	var b []float64
	for i := latencyFirst; i < eventbus.HistogramBuckets-1; i++ {
		b = append(b, eventbus.HistogramBound(i).Seconds())
	}
	return b
}()

// Produce returns the latency histogram of each live subscription of each
// bus instrumented with p, a data point per set of attributes (series
// whose subscriptions share a name and patterns are added together). It
// returns nothing when there is no subscription.
func (p *Producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	insts := slices.Clone(p.insts)
	p.mu.Unlock()
	now := time.Now()
	var dps []metricdata.HistogramDataPoint[float64]
	index := make(map[attribute.Distinct]int)
	for _, inst := range insts {
		for _, in := range inst.subscriptions() {
			set := inst.attrs.get(in.ID, in.Name, in.Patterns)
			j, ok := index[set.Equivalent()]
			if !ok {
				j = len(dps)
				index[set.Equivalent()] = j
				dps = append(dps, metricdata.HistogramDataPoint[float64]{
					Attributes:   set,
					StartTime:    in.Created,
					Time:         now,
					Bounds:       latencyBounds,
					BucketCounts: make([]uint64, len(latencyBounds)+1),
				})
			}
			addLatency(&dps[j], in.Created, &in.Stats.Latency)
		}
	}
	if len(dps) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName},
		Metrics: []metricdata.Metrics{{
			Name:        "eventbus.delivery.latency",
			Description: "Time from the bus taking an event to its entering a subscription's mailbox (Subscribe) or its handler starting (Handle).",
			Unit:        "s",
			Data:        metricdata.Histogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality},
		}},
	}}, nil
}

// addLatency adds a subscription made at created, with latency histogram
// h, to dp.
func addLatency(dp *metricdata.HistogramDataPoint[float64], created time.Time, h *eventbus.Histogram) {
	if created.Before(dp.StartTime) {
		dp.StartTime = created
	}
	for i, c := range h.Buckets {
		dp.BucketCounts[max(i-latencyFirst, 0)] += c
		dp.Count += c
	}
	dp.Sum += h.Sum.Seconds()
	if h.Buckets != [eventbus.HistogramBuckets]uint64{} {
		m := h.Max.Seconds()
		if old, ok := dp.Max.Value(); !ok || m > old {
			dp.Max = metricdata.NewExtrema(m)
		}
	}
}
