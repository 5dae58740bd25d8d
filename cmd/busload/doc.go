// Busload puts a sustained load on an eventbus.Bus and reports what it
// sustained: throughput, end-to-end latency percentiles, deliveries against
// the count a lossless bus would make, drops per overflow policy, and heap
// in use. Three more modes measure the bus at scale (many idle
// subscriptions), under a firehose, and beside a sleeping subscriber (see
// Modes).
//
// Usage:
//
//	go run ./cmd/busload [flags]
//
// The flags are:
//
//	-rate N          events published per second (default 10000; 0: as fast as possible)
//	-subs N          subscribers (default 100)
//	-patterns LIST   comma-separated patterns, given to the subscribers round-robin (default "load.*")
//	-topics N        distinct topics, published round-robin (default 1)
//	-prefix P        topics are P.0, P.1, … (default "load")
//	-duration D      how long to publish (default 10s)
//	-payload N       payload size in bytes (default 100)
//	-buffer N        subscriber mailbox size (default 1024)
//	-store S         none, memory (the bus default) or sqlite:PATH (default none)
//	-overflow LIST   drop-oldest, drop-newest, block, disconnect or catch-up; a comma
//	                 list is given to the subscribers round-robin (default drop-oldest)
//	-async           publish with PublishAsync instead of Publish
//	-baseline        after the bus run, run the same load through plain channels and compare
//	-json            print the final report as one JSON object
//	-cpuprofile F    write a CPU profile to F
//	-mode M          load (the default, described first below), scale, firehose or sleeper
//	-churn N|max     scale: churn pairs per second while publish latency is measured (default 0)
//	-churn-by B      scale: a churn pair is a Subscribe and Close (subscription, the default) or an
//	                 Add and Remove of a pattern on one subscription (pattern)
//	-events N        scale: publishes of each kind per latency measurement, at -rate (default 10000);
//	                 firehose: events (default 1000000); sleeper: events (default 50000)
//	-sleep D         sleeper: how long the slow subscriber sleeps per event (default 1ms)
//
// # Measurements
//
// One publisher goroutine publishes at the given rate: a ticker fires every
// millisecond (or every 1/rate when that is longer) and each tick publishes
// the events owed since the start, so the pace holds without a sleep per
// event. A publisher that falls behind (a slow store, the Block policy)
// catches up in larger batches, and stops at the end of -duration all the
// same (with 100 ms of grace for the last batch): the shortfall shows in the
// achieved rate. Every subscriber has a goroutine that reads its mailbox.
//
// Latency runs from just before Publish (or PublishAsync) to the receipt by
// the subscriber goroutine, on the monotonic clock of one shared epoch. The
// publish time travels in the event's ID: its first six bytes are the usual
// ULID millisecond time, the next eight the nanoseconds since the epoch, the
// last two a counter, so IDs stay unique and the bus carries the events
// unchanged. Each subscriber records into its own fixed histogram
// (log-linear, 1.6 % bucket width), so measuring allocates nothing per
// event. As in most load generators, latency is measured from the actual
// publish, not the scheduled one: when the publisher is held up (the Block
// policy, a full bus mailbox), the delay shows in the achieved rate rather
// than in the percentiles.
//
// Every payload is the same read-only JSON string of the given size; each
// topic's event is built once and copied per publish.
//
// # Report
//
// A progress line goes to standard error every second: the publish and
// delivery rates of that second, p99 latency so far, drops, and heap in use.
// At the end of -duration publishing stops, the bus is shut down (which
// delivers everything accepted and closes the mailboxes), and the final
// report goes to standard output: events published and their rate,
// deliveries and deliveries per second against the expected count (every
// subscriber whose pattern matches the topic of every published event),
// latency p50/p95/p99/max, drops and disconnections per overflow policy, and
// the heap in use (and live heap after the last GC) at 10 s and when
// publishing ended, so a long run shows whether the heap stays flat, and the
// heap allocations per published event and GC cycles while publishing
// (busload itself allocates nothing per event, so they are the bus's).
//
// # Baseline
//
// With -baseline, after the bus has shut down, the same workload runs again
// without a bus: per subscriber a Go channel of -buffer events and a reader
// goroutine, and the publisher sends each event (the same Event value) to
// the channel of every subscriber whose pattern matches its topic, from
// routes computed beforehand, blocking while a channel is full, so nothing
// is lost. The pacing, the time stamp (taken just before the first send,
// where the bus run takes it just before Publish), the readers, the
// histograms and the figures are the bus run's own code, on a fresh clock
// and fresh histograms, so the two runs differ only in what carries the
// events. -overflow, -store and -async have no counterpart and do not
// apply. The report adds the baseline's published, delivered and latency
// lines and the bus's p50, p99 and deliveries per second divided by the
// baseline's (in JSON: "baseline" and "bus_over_baseline"). Its progress
// lines start with "busload: baseline".
//
// With -baseline the load runs through the channels twice more: once
// carrying the Event by value, as above (144 bytes, what the bus's
// `<-chan Event` carries), and once carrying an 8-byte message, the publish
// time itself, which is the pointer-size limit users compare a bus with.
// Its lines start with "baseline-ptr" and "bus/ptr" (in JSON: "baseline_ptr"
// and "bus_over_baseline_ptr").
//
// # Modes
//
// -mode scale (the scale issue's measurements): on one bus (store per
// -store, mailboxes of the bus's default bound unless -buffer is given) it
// times -events synchronous Publishes to topics never seen before
// (fresh.<phase>.<i>) and as many to 100 topics published before
// (hot.<i%100>), alternately, -rate publishes per second in all (0: back to
// back), with no subscription; then creates -subs (default
// 10,000) idle subscriptions of mixed shapes — 40 % exact topics
// (ent.17.state), 30 % prefix.* (sess17.*), 29 % globs with a literal
// prefix and suffix (g17.*.x17?), 1 % residual globs (*.r17.*); none
// matches a published topic — timing each Subscribe (average, first 1,000,
// last 1,000) and measuring what they hold after a GC (runtime.MemStats
// HeapInuse and StackInuse, and goroutines, per subscription); times the
// same publishes again while a goroutine subscribes and closes a fresh
// mixed-shape pattern -churn times per second (or as fast as it can with
// -churn max), or, with -churn-by pattern, adds such a pattern to one
// subscription of its own and removes it again (a client changing its
// filter); and finally closes the subscriptions, timing each Close
// (average, and the first 1,000, made while all the others are present).
// The report gives p50/p99/max/mean of each publish kind with and without
// the subscriptions and their ratios, and the churn achieved. Progress
// lines show the creation.
//
// -mode firehose (the firehose issue): a loop of PublishAsync of -events
// events (default 1,000,000) to one subscriber reading as fast as it can,
// on a bus in the default configuration (DropOldest, the MemoryStore it
// owns, mailboxes of 1,000) unless -store, -overflow (its first policy) or
// -buffer say otherwise; then the same under Block; then as many
// pointer-size messages (a *Event) through one buffered channel of the
// same size with blocking sends. For each: delivered, lost (published −
// delivered), the subscription's Stats().Dropped, deliveries per second
// from the first publish to the last receipt, and the reader's own rate
// (deliveries over first to last receipt). The ratios compare the bus with
// the channel, and the reader's rate under the policy with its rate under
// Block (a reader on a full DropOldest mailbox against one under Block).
//
// -mode sleeper (the firehose issue): -subs subscribers (default 10) of
// one topic, the last of which sleeps -sleep (default 1 ms) per event, and
// a loop of PublishAsync of -events events (default 50,000), on the
// default configuration as for the firehose (-overflow catch-up to try
// CatchUp); then the same without the sleeper. Once publishing is over it
// flushes the bus and waits (up to 30 s) until every fast subscription has
// received or dropped every event; their finishing time runs from the
// first publish to the last of their receipts. Then the sleeper stops
// sleeping, is waited for the same way, and the bus is shut down. The
// report gives the fast ones' losses and finishing time with and without
// the sleeper, and the sleeper's missed events beside its Stats().Dropped,
// which should be equal.
//
// All modes print one JSON object with -json, with a "mode" field.
//
// Busload exits non-zero if the bus or a subscription cannot be set up, or
// if the drain after publishing does not finish within 30 s.
package main
