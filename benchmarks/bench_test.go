package main

import (
	"testing"
	"time"
)

// BenchmarkDeliveries runs each workload × implementation with b.N events
// (setup and teardown are not timed) and reports deliveries/s. Run it with
//
//	cd benchmarks && go test -run '^$' -bench . -benchtime 100000x
//
// (a fixed event count: -benchtime=1s would make b.N grow until watermill
// and NATS take long). ns/op is per published event.
func BenchmarkDeliveries(b *testing.B) {
	lim := limits{stall: 5 * time.Second, deadline: 2 * time.Minute}
	for _, w := range workloads() {
		for _, im := range implementations() {
			if !im.runs(w) {
				continue
			}
			b.Run(w.name+"/"+im.name, func(b *testing.B) {
				b.StopTimer()
				res := measure(im, w, b.N, lim, b.StartTimer, b.StopTimer)
				if res.err != nil {
					b.Fatal(res.err)
				}
				if res.lossy {
					b.Fatalf("lossy: %d of %d delivered", res.received, res.expected)
				}
				b.ReportMetric(res.rate(), "deliveries/s")
			})
		}
	}
}
