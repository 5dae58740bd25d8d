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

// BenchmarkFirehose runs F1 (see lossy.go) with b.N events per
// implementation and reports deliveries/s and the share of events lost:
//
//	cd benchmarks && go test -run '^$' -bench Firehose -benchtime 1000000x
func BenchmarkFirehose(b *testing.B) {
	lim := limits{stall: 2 * time.Second, deadline: 2 * time.Minute}
	w := firehoseWorkload()
	for _, im := range firehoseImpls() {
		b.Run(im.name, func(b *testing.B) {
			b.StopTimer()
			res := measureLossy(im, w, b.N, -1, 0, lim, b.StartTimer, b.StopTimer)
			if res.err != nil {
				b.Fatal(res.err)
			}
			b.ReportMetric(res.rate(), "deliveries/s")
			b.ReportMetric(float64(res.lost())/float64(res.expected), "lost/event")
		})
	}
}

// BenchmarkSleeper runs S1 (see lossy.go) with b.N events: 10
// subscribers, the last sleeping 1 ms per event, and reports the fast
// ones' lost share and finishing time, and the sleeper's missed events
// and counted drops (equal when the implementation counts exactly):
//
//	cd benchmarks && go test -run '^$' -bench Sleeper -benchtime 50000x
func BenchmarkSleeper(b *testing.B) {
	lim := limits{stall: 2 * time.Second, deadline: 2 * time.Minute}
	w := sleeperWorkload(10)
	for _, im := range sleeperImpls() {
		b.Run(im.name, func(b *testing.B) {
			b.StopTimer()
			res := measureLossy(im, w, b.N, 9, time.Millisecond, lim, b.StartTimer, b.StopTimer)
			if res.err != nil {
				b.Fatal(res.err)
			}
			b.ReportMetric(float64(res.lost())/float64(res.expected), "fast-lost/event")
			b.ReportMetric(float64(res.finish.Nanoseconds()), "fast-finish-ns")
			b.ReportMetric(float64(res.sleeper.missed), "sleeper-missed")
			if res.sleeper.droppedKnown {
				b.ReportMetric(float64(res.sleeper.dropped), "sleeper-dropped")
			}
		})
	}
}
