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
// hand-off. It never waits for a subscriber there: at a mailbox it would
// have to wait for, it leaves the rest of the batch to the loop. (It does
// so only with no store or a [MemoryStore]; with another store the loop
// does the work, so Publish returns at its ctx whatever the store does.)
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
// prefix for "prefix.*" patterns, and for other globs a walk of the
// topic's bytes through indexes of the globs' literal prefixes and
// suffixes, so a topic meets only the globs that can match it; each glob
// match costs at most len(pattern)×len(topic) steps. The result is cached
// per topic from its second publish on (at most 4,096 topics); subscribing and unsubscribing update
// only the cached topics the pattern can affect. None of these costs grows
// with the number of subscriptions.
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
// Its memory follows its backlog, not its bound: the first 12 waiting
// events sit in the channel [Subscription.C] returns, the rest in a ring
// behind it that a goroutine of the mailbox moves in as the reader
// receives (it runs only while a backlog exists). An idle subscription
// costs a few KiB. A [Block] subscription, which the loop waits for
// anyway, keeps its whole bound (up to 1,024) in the channel instead, made
// with it, and the loop sends to it as to a plain channel.
//
// A publisher that outruns a subscriber is paced, not served by dropping:
// when a mailbox is full, the loop waits for its reader to make room, up
// to the stall budget ([WithStallBudget], default 5ms). A reader that
// keeps up makes room well within it and loses nothing, however fast the
// publisher. One that does not is slow: its policy applies to it alone,
// and it is not waited for again until it has drained to half its bound,
// so a sleeping subscriber costs the others at most one budget per slow
// episode. When a mailbox is full and its reader is slow, its [Overflow]
// policy decides:
//
//	DropOldest (default)  the oldest waiting event is discarded       publishers, one budget per episode
//	DropNewest            the new event is discarded                  publishers, one budget per episode
//	Block                 the bus waits, up to WithBlockTimeout       every publisher
//	Disconnect            the subscription ends with ErrSlowConsumer  publishers, one budget per episode
//	CatchUp               refill from the store, then rejoin live     publishers, one budget per episode
//
// Dropped events are counted in [Subscription.Stats] and [Bus.Stats], and a
// slow consumer is reported to the error handler once per episode. Only
// Block lets one subscriber hold the others up for longer: use it for
// consumers that always keep up, or with a timeout. Publishing from inside
// a handler or a subscriber loop never deadlocks under the other policies.
//
// # Replay and catch-up
//
// [FromSeq] and [Since] make a new subscription read the stored events that
// match it first, then continue with live ones, with no gap and no
// duplicate. [CatchUp] uses the same machinery for a subscriber that falls
// behind: it stops taking live events, a goroutine of its own refills its
// mailbox from the store after the last event it got, and the loop takes it
// back live once it has caught up (the rejoin), handing it the few events
// in between from the tail, a ring of recent stored events it keeps. Only events published without
// persistence while it lags are lost, and they are counted. Events the
// store's retention removes before a lagging subscription reads them cannot
// be replayed: the loop keeps an account of what it skipped, and at the
// rejoin counts the difference as dropped and reports it.
//
// # Handlers
//
// [Bus.Handle] and [HandleFunc] run a callback on a goroutine owned by the
// bus, one event at a time, in order. Errors and panics are recovered and
// reported to the error handler ([WithErrorHandler]) and the logger, with
// the event's ID and topic, as an [*EventError]; the handler goes on.
//
// # Observability
//
// Every subscription records where it was made, the caller of Subscribe,
// Handle or HandleFunc as "file.go:123" ([Subscription.Site], and Site in
// [SubscriberInfo] and [SubscriptionStats]); [Bus.Subscriptions] lists
// them all. A handler that runs one event for longer than the stall
// timeout ([WithStallTimeout], default 10s) is reported once as a
// [*StallError] naming the subscription, its site, the event and how
// long, and again when it returns. A handler of a Block subscription
// that, with its own ctx, publishes into its own full mailbox gets
// [ErrDeadlock] from Publish instead of waiting for itself. [WithMiddleware] wraps handler calls
// (the bus's outermost, then the subscription's) and [WithPublishHook]
// runs on the publisher's goroutine before validation, with a Metadata
// map of its own; [Bus.AddHooks] adds both to a running bus, and a
// [Hooks.PublishStart] hook that is also told when the publish returns,
// which is how the otelbus package adds OpenTelemetry traces. Each
// subscription keeps a latency [Histogram] ([SubscriptionStats].Latency),
// which otelbus exports as it is. The monitor package serves a live page
// of every subscription. Without hooks or middleware, publishing and
// delivery pay one atomic load for them.
//
// # Access control
//
// [WithAuthorizer] asks an [Authorizer] about each publish and each
// subscription pattern, with the principal from [WithPrincipal].
// [PatternWithin] decides whether a pattern can only match topics that
// allowed patterns match, so "*", "s?cret.*" and "*ecret*" are not mistaken
// for something narrower, and [AuthorizeWithin] builds an Authorizer on it.
//
// # Work distribution
//
// [WithQueueGroup] makes subscriptions competing consumers: per event, the
// loop reduces the matching members of each queue group to one — the one
// with the most free room, ties in turn — while it routes the run, with
// scratch of its own, so ungrouped subscriptions pay one nil check. A
// member that lags is chosen only when all do, and its catch-up reader
// delivers only the events it was chosen for. [WithRetry] retries a failed
// event on the handler's own goroutine (later events wait), and
// [WithDeadLetter] publishes what fails for the last time. [Durable]
// keeps a consumer's position in a [CursorStore]: each event given to a
// durable subscription is recorded before it enters the mailbox, and the
// cursor is the highest Seq below every one not yet acknowledged (and
// below what the loop has not fanned out, or the resuming member not yet
// replayed). The acknowledging goroutine writes it every 64
// acknowledgements (at most every 10ms) or 100ms; Shutdown writes it after
// the handlers finish.
// A durable queue group resumes as a group replay: its members lag
// together, one catch-up reader gives each stored event they are owed to
// the member with the most room, and at the rejoin the loop takes them
// all live at once. A catch-up reader reads the store only as far as the
// loop has fanned out, since whether a group chose a member for an event
// is known only once the loop has routed it.
//
// # Shutdown
//
// [Bus.Shutdown] works like http.Server.Shutdown: new publishes get
// [ErrClosed]; everything already accepted is persisted and delivered;
// handlers finish the events in their mailboxes; subscription channels
// close once what waits in them has been received (see [Subscription.C]);
// a store the bus opened is closed. If its ctx ends first, handler contexts are cancelled with cause
// ErrClosed and Shutdown returns ctx.Err(). A subscription that is
// catching up from the store at Shutdown stops there: what it had not read
// yet stays in the store.
//
// # Goroutines
//
// Every goroutine has an owner and a way to stop: the loop (one per Bus,
// stopped by Shutdown), a runner per Handle subscription (stops when its
// mailbox ends and is drained), a catch-up reader while a subscription
// replays or catches up (stops at the rejoin or the end), a pump per
// Subscribe mailbox while a backlog waits behind C (stops when the
// backlog is received, or 200ms after its reader stops receiving once the
// subscription has ended; Shutdown does not wait for it, so C can be
// drained after Shutdown), one reporter that calls the error handler,
// a group replay's reader while a durable queue group resumes (stops at
// its rejoin, or when every member has ended), one watchdog looking for
// stalled handlers when a stall timeout is set
// (it ticks every quarter of the timeout, at most every second, and
// stops at Shutdown after the runners), and,
// during Shutdown, the goroutine that runs its steps. Nothing else runs in
// the background. User code — handlers, the error handler, the
// Authorizer — never runs on the loop or under a bus lock.
//
// # Ownership
//
// Each piece of state has one owner. The intake (the bus's queue of
// accepted events) is guarded by its mutex. The loop type owns delivery:
// Seq, the store appends, each subscription's delivery state (live or
// lagging, its last Seq, whether it is slow) and the tail; whoever holds
// the loop's lock is the owner for that time. The registry owns the live
// subscriptions and the route index, under its own mutex, which the loop
// takes briefly to route a run of events. A mailbox has one sender at a
// time (the loop while its subscription is live; its catch-up reader, or
// its group replay's reader, while it lags) and one consumer (its pump and
// reader, or its runner).
//
// # Glossary
//
//	intake      the bus's queue of accepted events and control requests
//	loop        the owner of delivery, and the goroutine that does its work
//	turn        doing the loop's work: the loop goroutine's, or an acknowledged publisher's
//	batch       what the loop takes from the intake at once; a run is a stretch of it without control requests
//	gather      group commit: the loop yielding once before a store transaction that several acknowledged publishers lately shared, so those about to publish again join it
//	route index the map from topics to subscriptions (internal/route), with its route cache
//	registry    the live subscriptions and the route index
//	mailbox     a subscription's bounded queue: the channel C, and behind it a ring fed to C by a pump (Block: C alone, up to 1,024)
//	pacing      the loop waiting, up to the stall budget, for a full mailbox's reader
//	slow        a subscription whose reader did not make room within the budget; its policy applies
//	lagging     a subscription fed from the store by its catch-up reader instead of by the loop
//	rejoin      a lagging subscription going live again, with the events in between from the tail
//	tail        the loop's ring of recent stored events, for rejoins
//	reporter    the goroutine that calls the error handler
//	site        where a subscription was made, "file.go:123"
//	stall       a handler running one event longer than the stall timeout; the watchdog reports it
//	hooks       publish hooks and handler middleware (WithPublishHook, WithMiddleware, Bus.AddHooks)
//	latency     from the bus goroutine taking an event to its entering a mailbox (Subscribe) or its handler starting (Handle)
//	queue group competing consumers: one member of each gets an event (WithQueueGroup)
//	durable     a consumer whose cursor the store keeps (Durable); its subscriptions share it
//	cursor      the highest Seq up to which a durable consumer has acknowledged all it matches
//	owed        events a lagging subscription's catch-up reader is to deliver
//	group replay
//	            a resuming durable queue group's catch-up: one reader spreads it over the members
//
// # Costs
//
// Publishing an Event literal allocates nothing on the bus's own path: IDs
// come from a monotonic ULID source without allocation, payloads are checked
// by a JSON validator that does not allocate, and acknowledgements use
// pooled waiters (a publisher that ran its own batch reads its result
// with no channel operation). Counters and the per-subscription latency
// histograms are atomics in fixed arrays, added to once per run of
// events. The loop batches: one wake-up, one clock read (monotonic; the
// wall clock is read once a second) and one store append per batch of
// queued events, and at most one lock of a mailbox per run of events it
// gets, none while C has room (and, with a store other than the
// memory store, one transaction for the acknowledged publishes that
// gather brings together); publishers read no clock (the loop
// stamps ID and Timestamp as it assigns Seq). Reports for the error
// handler are bounded (1,024 waiting); what is dropped is counted and said
// ([ErrReportsDropped]). A store that panics costs the events of that
// batch ([ErrPersist]), not the bus.
package eventbus
