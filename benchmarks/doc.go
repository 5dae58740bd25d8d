// Command benchmarks compares eventbus with a hand-written channel fan-out
// and with other Go pub/sub libraries on three workloads, and prints a
// Markdown table.
//
// It is a separate module (with a replace directive pointing at the
// repository root), so none of the peers enters the library's dependencies.
// Run it from this directory:
//
//	cd benchmarks && go run . -events 200000
//
// (`go run ./benchmarks` from the root does not work: it is another module.)
// Flags: -events (events in W1; W2 publishes events/10 to 100 subscribers,
// W3 events/2), -rounds (default 5, after one warm-up round that is not
// counted; the table shows the best and the median), -mintime (default
// 300ms: a run shorter than that gets proportionally more events in the
// next round, at most 50× -events, so fast implementations are not timed
// over a few milliseconds), -only (a substring of implementation names),
// -workloads (W1,W2,W3), -stall, -deadline, -cpuprofile. Progress goes to standard
// error, the table to standard output. The testing.B form is
//
//	cd benchmarks && go test -run '^$' -bench . -benchtime 100000x
//
// # Workloads
//
// Every event is published by one goroutine, round-robin over the
// workload's topics; the ~100-byte JSON payload and, per topic, the event
// value are built once.
//
//   - W1: 1 publisher → 1 subscriber on an exact topic.
//   - W2: 1 → 100 subscribers on one topic.
//   - W3: 1,000 topics t.<g>.<i> (10 groups × 100); 50 subscribers on exact
//     topics (every 20th) and 50 on t.<g>.* (5 per group), 5.05 deliveries
//     per event.
//
// # Measuring
//
// Each implementation is set up (not timed), then the publisher publishes
// all events and the clock stops when every subscriber has received exactly
// its expected count; deliveries/s is the total over that time. Queueing
// implementations get mailboxes of 1024 and one goroutine per subscriber
// that counts what it reads; callback implementations count in the
// callback. If deliveries stop for -stall after publishing, the run is
// reported as lossy with the count received, not waited on; -deadline
// bounds a run in any case. Runs are interleaved across rounds so
// background load spreads over all of them.
//
// # Implementations
//
//   - channel baseline: a buffered channel (1024) and a goroutine per
//     subscriber, a precomputed topic → []chan table; the publisher sends the
//     same eventbus.Event value to each channel the topic reaches. The ratio
//     column is against it. "channel baseline, *Event" sends a pointer
//     instead, for reference: it shows what copying the 136-byte Event into
//     every mailbox costs, which eventbus's `<-chan Event` implies.
//   - eventbus: PublishAsync, Block policy, no store; in W1 also a
//     synchronous Publish and PublishAsync with the default MemoryStore.
//   - github.com/cskr/pubsub: exact topics; a pattern subscriber's channel
//     is subscribed to each covered topic.
//   - github.com/asaskevich/EventBus: exact topics, synchronous callbacks on
//     the publisher's goroutine.
//   - watermill gochannel, with BlockPublishUntilSubscriberAck: exact
//     topics; a pattern subscriber subscribes to each covered topic.
//   - mochi-mqtt/server/v2 inline client: MQTT filters (t/<g>/+),
//     synchronous callbacks on the publisher's goroutine.
//   - NATS: nats-server embedded in the process on 127.0.0.1 and nats.go
//     over loopback TCP, a connection per subscriber.
//
// The semantics column of the table says what each one guarantees; a
// callback implementation has no mailbox, so its deliveries/s is the cost
// of a function call per subscriber, not of a hand-off between goroutines.
package main
