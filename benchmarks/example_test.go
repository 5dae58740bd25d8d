package main

import "fmt"

// The workloads and the deliveries a lossless implementation makes for
// 1,000 events each.
func Example_workloads() {
	for _, w := range workloads() {
		var total int64
		for _, n := range w.expected(1000) {
			total += n
		}
		fmt.Printf("%s: %d topics, %d subscribers, %d deliveries\n", w.name, len(w.topics), len(w.subs), total)
	}
	// Output:
	// W1: 1 topics, 1 subscribers, 1000 deliveries
	// W2: 1 topics, 100 subscribers, 100000 deliveries
	// W3: 1000 topics, 100 subscribers, 5050 deliveries
}
