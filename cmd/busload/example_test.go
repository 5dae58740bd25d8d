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
	fmt.Println("published:", rep.Published)
	fmt.Println("expected:", rep.Expected)
	fmt.Println("lossless:", rep.Delivered == rep.Expected)
	fmt.Println("ordered percentiles:", rep.LatencyP50 <= rep.LatencyP99 && rep.LatencyP99 <= rep.LatencyMax)
	// Output:
	// published: 200
	// expected: 1000
	// lossless: true
	// ordered percentiles: true
}
