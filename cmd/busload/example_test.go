package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/choiros/eventbus"
)

// A short lossless run: 5 subscribers with the Block policy receive every
// event published, so delivered equals expected.
func Example_run() {
	cfg := defaultConfig()
	cfg.Rate = 1000
	cfg.Subs = 5
	cfg.Duration = 200 * time.Millisecond
	cfg.Overflow = []eventbus.Overflow{eventbus.Block}
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	// 1,000 events/s for 200 ms is 200 events, unless a loaded machine
	// holds the publisher up: the shortfall shows in the count.
	fmt.Println("published at most:", max(rep.Published, 200))
	fmt.Println("five deliveries each:", rep.Expected == 5*rep.Published)
	fmt.Println("lossless:", rep.Delivered == rep.Expected)
	fmt.Println("ordered percentiles:", rep.LatencyP50 <= rep.LatencyP99 && rep.LatencyP99 <= rep.LatencyMax)
	// Output:
	// published at most: 200
	// five deliveries each: true
	// lossless: true
	// ordered percentiles: true
}
