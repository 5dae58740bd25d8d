// Command benchmarks compares eventbus with a hand-written channel fan-out
// and with other Go pub/sub libraries on three lossless workloads and two
// where a publisher outruns its subscribers, and prints Markdown tables.
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
// -workloads (default W1,W2,W3,F1,S1), -firehose (events in F1, default
// 1,000,000), -sleeper (events in S1, default 50,000), -sleeper-subs
// (default 10), -sleep (default 1ms), -stall, -deadline, -cpuprofile.
// Progress goes to standard error, the tables to standard output. The
// testing.B form is
//
//	cd benchmarks && go test -run '^$' -bench Deliveries -benchtime 100000x
//
// and BenchmarkFirehose and BenchmarkSleeper for F1 and S1 (b.N is the
// event count: -benchtime 1000000x and 50000x).
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
//   - F1, firehose: a loop of publishes (1,000,000 by default) to one
//     subscriber reading as fast as it can. eventbus runs in its default
//     configuration (DropOldest, MemoryStore), with CatchUp, and lossless
//     (Block). The table gives what was delivered, lost and counted as
//     dropped, and deliveries/s against the *Event channel baseline.
//   - S1, sleeper: ten subscribers of one topic, the last of which sleeps
//     1 ms per event, and a loop of 50,000 publishes; then the same with
//     only the nine fast ones. The table gives the fast ones' losses and
//     finishing time with and without the sleeper, and what the sleeper
//     received, missed and had counted as dropped (which should equal what
//     it missed). Only implementations that do not make everyone wait for
//     the sleeper take part (eventbus default and CatchUp, NATS): a
//     blocking fan-out or a synchronous callback takes events × 1 ms by
//     construction.
//
// # Measuring
//
// Each implementation is set up (not timed), then the publisher publishes
// all events and the clock stops when every subscriber has received exactly
// its expected count; deliveries/s is the total over that time. (F1 and
// S1 run once each, and end when every fast subscriber has received or,
// as the implementation counts, dropped each of its events, or when their
// deliveries stop for -stall; their time runs to the last delivery to a
// fast subscriber. Then S1's sleeper stops sleeping and is waited for the
// same way.) Queueing
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
//     same eventbus.Event value to each channel the topic reaches.
//     "channel baseline, *Event" sends a pointer to it instead: a
//     pointer-size message, the limit users compare a bus with. The table
//     has a ratio column for each; the difference between the two is what
//     copying the 144-byte Event into every mailbox costs. "channel
//     baseline, 40-byte message" sends a 40-byte struct, the message size
//     of the harness the firehose issue's first figures came from (no
//     ratio column: divide by its row).
//   - eventbus: PublishAsync, Block policy, no store; in W1 also a
//     synchronous Publish and PublishAsync with the default MemoryStore;
//     in F1 and S1 also the default configuration and CatchUp (mailboxes
//     of 1,000), with Stats().Dropped as the counted drops.
//   - github.com/cskr/pubsub: exact topics; a pattern subscriber's channel
//     is subscribed to each covered topic.
//   - github.com/asaskevich/EventBus: exact topics, synchronous callbacks on
//     the publisher's goroutine.
//   - watermill gochannel, with BlockPublishUntilSubscriberAck: exact
//     topics; a pattern subscriber subscribes to each covered topic.
//   - mochi-mqtt/server/v2 inline client: MQTT filters (t/<g>/+),
//     synchronous callbacks on the publisher's goroutine.
//   - NATS: nats-server embedded in the process on 127.0.0.1 and nats.go
//     over loopback TCP, a connection per subscriber; in F1 and S1 the
//     subscription's Dropped() are the counted drops.
//
// The semantics column of the table says what each one guarantees; a
// callback implementation has no mailbox, so its deliveries/s is the cost
// of a function call per subscriber, not of a hand-off between goroutines.
package main
