// Busload puts a sustained load on an eventbus.Bus and reports what it
// sustained: throughput, end-to-end latency percentiles, deliveries against
// the count a lossless bus would make, drops per overflow policy, and heap
// in use.
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
// Busload exits non-zero if the bus or a subscription cannot be set up, or
// if the drain after publishing does not finish within 30 s.
package main
