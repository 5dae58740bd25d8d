// Package eventbus provides an in-process publish/subscribe event bus for Go
// services, built from goroutine actors: workers reporting progress, chat,
// file changes, user input and system health move between the parts of one
// process with topic wildcards, strict ordering, bounded mailboxes that keep
// one slow consumer from hurting the rest, and persistence with replay.
//
// A [Bus] owns one goroutine, the loop, which takes what publishers queue,
// assigns each event its Seq, appends the batch to the [Store], and hands
// every event to the mailbox of each matching [Subscription], in order.
// One lock stands for the loop's work: a synchronous [Bus.Publish] that
// finds it free does that work itself, for its own event and any queued
// before it, so an acknowledged publish on a quiet bus costs no goroutine
// hand-off. It never waits for a subscriber there: at a Block mailbox with
// no room it hands the rest of the batch back to the loop.
//
//	bus, _ := eventbus.New()
//	defer bus.Close()
//	sub, _ := bus.Subscribe(ctx, "worker.*")
//	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkerSpawned, Topic: "worker.spawned"})
//	e := <-sub.C()
//
// # Events and event types
//
// An [Event] carries a type, a topic, a JSON payload, a source and headers
// ([Event.Metadata]). The type vocabulary is open: any name of 1–64 bytes
// of [a-z0-9_.:-] starting with a letter is a valid [EventType]
// ("order_created", "billing.invoice_paid"); the seed's types are
// constants, and [Custom] still makes "custom:" types. A payload given as
// a json.RawMessage or []byte keeps its bytes exactly, through the bus and
// the stores, so signatures and hashes over it survive.
//
// # Topics and patterns
//
// A topic is 1–255 bytes of dot-separated, non-empty segments ("worker.task.
// complete"). A pattern is a topic that may hold wildcards, with one rule
// for all of them: '*' matches any run of characters, dots included, and
// '?' exactly one character. So "*" matches every topic, "worker.*" every
// topic strictly below "worker" at any depth, and "worker.*.complete",
// "*.failed" and "chat.room?" are globs. Readers used to NATS or MQTT should
// note that '*' here is not one level: it crosses dots. A segment that is
// exactly ">" or "#" (their multi-level wildcards) is refused with a hint
// to write "orders.*". See [Match].
//
// Routing costs one map lookup for exact topics, one lookup per parent
// prefix for "prefix.*" patterns, and one bounded glob match per other
// pattern, memoised per topic in a cache of at most 4,096 topics that is
// dropped whenever a subscription changes. Publishing never scans every
// subscription in the steady state.
//
// # Publishing
//
// [Bus.Publish] returns once the event is persisted (when it is to be) and
// in the mailbox of every subscription that existed before the call (or
// counted as dropped by its policy). [Bus.PublishAsync] returns once the
// event is queued; [Bus.Flush] waits for what was queued before it. Events
// from one goroutine keep that goroutine's order; every subscription sees
// events in Seq order. An event matching several patterns of one
// subscription reaches it once. [Bus.Publisher] stamps a source and a
// correlation ID on what it emits.
//
// Whether an event is stored: the bus has a store, persistence is on by
// default ([WithPersistDefault]), the publish did not say [WithoutPersist],
// and no [WithNoPersistTopics] pattern matches its topic.
//
// # Backpressure
//
// Each subscription has a bounded mailbox ([WithBuffer], default 1000).
// When it is full, its [Overflow] policy decides:
//
//	DropOldest (default)  the oldest waiting event is discarded       nobody waits
//	DropNewest            the new event is discarded                  nobody waits
//	Block                 the bus waits, up to WithBlockTimeout       every publisher
//	Disconnect            the subscription ends with ErrSlowConsumer  nobody waits
//	CatchUp               refill from the store, then rejoin live     nobody waits
//
// Dropped events are counted in [Subscription.Stats] and [Bus.Stats], and a
// slow consumer is reported to the error handler once per episode. Only
// Block lets one subscriber slow the others: use it for consumers that
// always keep up, or with a timeout. Publishing from inside a handler or a
// subscriber loop never deadlocks under the other policies.
//
// # Replay and catch-up
//
// [FromSeq] and [Since] make a new subscription read the stored events that
// match it first, then continue with live ones, with no gap and no
// duplicate. [CatchUp] uses the same machinery for a subscriber that falls
// behind: it stops taking live events, a goroutine of its own refills its
// mailbox from the store after the last event it got, and the loop takes it
// back live once it has caught up, handing over the few events in between
// from a ring of recent events it keeps. Only events published without
// persistence while it lags are lost, and they are counted. Events the
// store's retention removes before a lagging subscription reads them cannot
// be replayed: the loop keeps an account of what it skipped, and at the
// hand-over counts the difference as dropped and reports it.
//
// # Handlers
//
// [Bus.Handle] and [HandleFunc] run a callback on a goroutine owned by the
// bus, one event at a time, in order. Errors and panics are recovered and
// reported to the error handler ([WithErrorHandler]) and the logger, with
// the event's ID and topic, as an [*EventError]; the handler goes on.
//
// # Access control
//
// [WithAuthorizer] asks an [Authorizer] about each publish and each
// subscription pattern, with the principal from [WithPrincipal].
// [PatternWithin] decides whether a pattern can only match topics that
// allowed patterns match, so "*", "s?cret.*" and "*ecret*" are not mistaken
// for something narrower, and [AuthorizeWithin] builds an Authorizer on it.
//
// # Shutdown
//
// [Bus.Shutdown] works like http.Server.Shutdown: new publishes get
// [ErrClosed]; everything already accepted is persisted and delivered;
// handlers finish the events in their mailboxes; subscription channels
// close (events already in them stay readable); a store the bus opened is
// closed. If its ctx ends first, handler contexts are cancelled with cause
// ErrClosed and Shutdown returns ctx.Err(). A subscription that is
// catching up from the store at Shutdown stops there: what it had not read
// yet stays in the store.
//
// # Goroutines
//
// Every goroutine has an owner and stops by Shutdown: the loop (one per
// Bus), a runner per Handle subscription, a catch-up reader while a
// subscription replays or catches up, one reporter that calls the error
// handler, and, during Shutdown, the goroutine that runs its steps. Nothing
// else runs in the background. User code — handlers, the error handler, the
// Authorizer — never runs on the loop or under a bus lock.
//
// # Costs
//
// Publishing an Event literal allocates nothing on the bus's own path: IDs
// come from a monotonic ULID source without allocation, payloads are checked
// by a JSON validator that does not allocate, and acknowledgements use
// pooled waiters. Counters and the per-subscription latency histograms are
// atomics in fixed arrays. The loop batches: one wake-up, one clock read
// and one store append per batch of queued events; publishers read no
// clock (the loop stamps ID and Timestamp as it assigns Seq).
package eventbus
